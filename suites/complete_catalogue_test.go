package suites_test

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/egresslab/egresslab/internal/catalogue"
	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios"
	"github.com/egresslab/egresslab/scenarios/classes"
	"github.com/egresslab/egresslab/scenarios/policy/value"
)

// cannotHold are the bypass cells ("entry/variant: cell") whose
// reduced policy does not show the bypass under --complete, each with why
// and the load error that stops it ("" when it runs and shows nothing).
var cannotHold = map[string]struct{ reason, loadError string }{
	// the seed's rules name postfix (--uid-owner postfix), an account the lab
	// makes only for a policy user: a policy of www-data alone cannot load
	// them. The same variant's postfix -> relay.localhost cell holds.
	"telnet-surprise/ipv4-only: www-data -> mx.example.test over ipv6": {
		"the ruleset names postfix by name, which a policy of www-data alone does not list",
		`Bad value for "--uid-owner" option: "postfix"`},
	"telnet-surprise/ipv4-only: www-data -> relay.localhost over ipv6": {
		"the ruleset names postfix by name, which a policy of www-data alone does not list",
		`Bad value for "--uid-owner" option: "postfix"`},
}

// bypassCell is one documented bypass, located: the host user, or the client
// behind the host and its address of the cell's family, the host's address
// of the cell's family and the port it connects on.
type bypassCell struct {
	entry, variant string
	cell           catalogue.Cell
	policy         *scenarios.Policy
	user           scenarios.User
	client         *scenarios.Client
	clientAddr     netip.Addr
	host           scenarios.Host
	addr           netip.Addr
	port           scenarios.Port
}

func (b bypassCell) name() string { return fmt.Sprintf("%s/%s: %s", b.entry, b.variant, b.cell) }

// locate finds the cell's user, address and port in the variant's policy: a
// cell without a port connects on every port of its host, so the host's
// first port stands for them.
func locate(entry string, v catalogue.Variant, c catalogue.Cell) (bypassCell, error) {
	b := bypassCell{entry: entry, variant: v.Name, cell: c, policy: v.Policy}
	if c.Client != "" {
		cl, ok := v.Policy.Client(c.Client)
		if !ok {
			return b, fmt.Errorf("no client %q", c.Client)
		}
		b.client = &cl
		k := slices.IndexFunc(cl.Addresses, func(a netip.Addr) bool { return familyOf(a) == c.Family })
		if k < 0 {
			return b, fmt.Errorf("client %q has no %s address", c.Client, c.Family)
		}
		b.clientAddr = cl.Addresses[k]
	} else if u, ok := v.Policy.User(c.User); ok {
		b.user = u
	} else {
		return b, fmt.Errorf("no user %q", c.User)
	}
	i := slices.IndexFunc(v.Policy.Hosts, func(h scenarios.Host) bool { return h.Name == c.Host })
	if i < 0 {
		return b, fmt.Errorf("no host %q", c.Host)
	}
	b.host = v.Policy.Hosts[i]
	j := slices.IndexFunc(b.host.Addresses, func(a netip.Addr) bool { return familyOf(a) == c.Family })
	if j < 0 {
		return b, fmt.Errorf("host %q has no %s address", c.Host, c.Family)
	}
	b.addr = b.host.Addresses[j]
	if c.Port != "" {
		r, err := value.ParsePorts(c.Port)
		if err != nil {
			return b, err
		}
		b.port = scenarios.Port{Number: r.First, Proto: r.Proto}
	} else if len(b.host.Ports) > 0 {
		b.port = scenarios.Port{Number: b.host.Ports[0].First, Proto: b.host.Ports[0].Proto}
	} else {
		return b, fmt.Errorf("host %q serves no port", c.Host)
	}
	return b, nil
}

func familyOf(a netip.Addr) string {
	if a.Is6() && !a.Is4In6() {
		return "ipv6"
	}
	return "ipv4"
}

// reduced is the variant's policy cut down to the cell: its ruleset, its one
// user (or one client, and no user: its networks keep no other client) and
// one host, and an expect that says what the variant's own entry
// covering the cell says, for that port on every family and host (its host
// and family restrictions would hide the other family and the addresses no
// host names), then allows the rest.
func (b bypassCell) reduced() (*scenarios.Policy, error) {
	i, ok := b.policy.Match(b.user.Name, b.host.Name, b.addr, b.port)
	if b.client != nil {
		i, ok = b.policy.MatchClient(b.client.Name, b.host.Name, b.addr, b.port)
	}
	if !ok {
		return nil, fmt.Errorf("no expectation covers %s", b.name())
	}
	intent := b.policy.Expect[i]
	if intent.Verb == scenarios.Allow {
		return nil, fmt.Errorf("the expectation at line %d allows %s: not a bypass", intent.Line, b.name())
	}
	intent.Hosts, intent.Family = nil, ""
	if intent.Ports == nil {
		intent.Ports = []scenarios.PortRange{{First: b.port.Number, Last: b.port.Number, Proto: b.port.Proto}}
	}
	q := *b.policy
	q.Users = []scenarios.User{b.user}
	if b.client != nil {
		q.Users = nil
		q.Networks = slices.Clone(q.Networks)
		for k, n := range q.Networks {
			q.Networks[k].Clients = nil
			if n.Name == b.client.Network {
				q.Networks[k].Clients = []scenarios.Client{*b.client}
			}
		}
	}
	q.Hosts = []scenarios.Host{b.host}
	q.MX, q.Warnings = nil, nil
	q.Expect = []scenarios.Expectation{intent, {Verb: scenarios.Allow, Line: intent.Line}}
	return &q, nil
}

// holdsCell says whether class c holds the cell's family, protocol, address
// and port, and for a client's cell its network and source address.
func (b bypassCell) holdsCell(c classes.Class) bool {
	if b.client == nil && c.Network != "" || b.client != nil && (c.Network != b.client.Network || !holdsSource(c, b.clientAddr)) {
		return false
	}
	fam := classes.IPv4
	if familyOf(b.addr) == "ipv6" {
		fam = classes.IPv6
	}
	if c.Family != fam || c.Proto.String() != b.port.Proto {
		return false
	}
	return slices.ContainsFunc(c.Ports, func(r classes.PortRange) bool { return r.First <= b.port.Number && b.port.Number <= r.Last }) &&
		slices.ContainsFunc(c.Addresses, func(r classes.AddrRange) bool { return r.First.Compare(b.addr) <= 0 && b.addr.Compare(r.Last) <= 0 })
}

// catalogueBypasses is every documented bypass, a host user's or a client's;
// an entry's cell that cannot be located fails the spec that lists them.
func catalogueBypasses() (cells []bypassCell, bad []string) {
	all, err := catalogue.All()
	if err != nil {
		return nil, []string{err.Error()}
	}
	for _, s := range all {
		for _, v := range s.Variants {
			for _, c := range v.Bypass {
				b, err := locate(s.Name, v, c)
				if err != nil {
					bad = append(bad, fmt.Sprintf("%s/%s: %v", s.Name, v.Name, err))
					continue
				}
				cells = append(cells, b)
			}
		}
	}
	return cells, bad
}

var _ = Describe("verify --complete on every catalogue entry", Label("complete"), func() {
	cells, _ := catalogueBypasses()

	It("locates every entry's bypasses, the forwarded entries' clients included", func() {
		all, err := catalogue.All()
		Expect(err).NotTo(HaveOccurred())
		_, bad := catalogueBypasses()
		Expect(bad).To(BeEmpty())
		for _, s := range all {
			if s.Forwarded() {
				Expect(slices.ContainsFunc(cells, func(b bypassCell) bool { return b.entry == s.Name && b.client != nil })).To(BeTrue(),
					"%s forwards but no client's bypass of it is located", s.Name)
			}
		}
		var located []string
		for _, b := range cells {
			located = append(located, b.name())
		}
		for name := range cannotHold {
			Expect(located).To(ContainElement(name), "cannotHold names a cell the catalogue does not document")
		}
	})

	for _, b := range cells {
		if why, ok := cannotHold[b.name()]; ok {
			It(b.name()+": known not to hold: "+why.reason, func(ctx SpecContext) {
				p, err := b.reduced()
				Expect(err).NotTo(HaveOccurred())
				rep, err := scenarios.Run(ctx, p, scenarios.RunOptions{Complete: true})
				if why.loadError != "" {
					Expect(err).To(MatchError(ContainSubstring(why.loadError)), "it loads now: remove it from cannotHold")
					return
				}
				Expect(err).NotTo(HaveOccurred())
				Expect(slices.ContainsFunc(failingClasses(rep), func(c scenarios.ClassResult) bool {
					return b.holdsCell(c.Class) && c.Observed == probe.Connected
				})).To(BeFalse(), "it holds now: remove it from cannotHold")
			})
			continue
		}
		It(b.name()+": a policy of one source and one host shows the bypass", func(ctx SpecContext) {
			p, err := b.reduced()
			Expect(err).NotTo(HaveOccurred())
			rep, err := scenarios.Run(ctx, p, scenarios.RunOptions{Complete: true})
			Expect(err).NotTo(HaveOccurred())
			var seen []string
			for _, c := range rep.Classes {
				mark := " "
				if !c.Pass() {
					mark = "!"
				}
				seen = append(seen, fmt.Sprintf("%s %v %v %s %v %v: %s %s", mark, c.Class.Family, c.Class.Proto, c.SourceString(), c.AddressStrings(), c.PortStrings(), c.Expect, c.Observed))
			}
			Expect(slices.ContainsFunc(failingClasses(rep), func(c scenarios.ClassResult) bool {
				return b.holdsCell(c.Class) && c.Observed == probe.Connected
			})).To(BeTrue(), "no failing class connects %s [%s]:%s; classes:\n%s", b.cell.Client+b.user.Name, b.addr, b.port, strings.Join(seen, "\n"))
		})
	}
})
