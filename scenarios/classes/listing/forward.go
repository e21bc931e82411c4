package listing

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// Forwarded traffic: a client behind one of the lab host's networks sends
// packets the host never opened a socket for. They cross prerouting, forward
// and postrouting, never output; they come in on the network's bridge and
// leave by the uplink (the answer the other way). A rule's interface matches
// say which networks' clients it can meet; a match on the socket's owner
// never holds for a packet without a socket (xt_owner's negated match does).

// outward says the packets go towards the far end: the probe's destination
// is their destination.
func (d direction) outward() bool { return d == dirOut || d == dirFwd }

// ifaceMatch is a rule's match on an interface name: iptables' '+' and nft's
// '*' at the end match any rest.
type ifaceMatch struct {
	in      bool // the input interface (-i, iifname), else the output's
	pattern string
	negate  bool
}

func (m ifaceMatch) matches(name string) bool {
	p := m.pattern
	ok := false
	switch {
	case strings.HasSuffix(p, "+"):
		ok = strings.HasPrefix(name, strings.TrimSuffix(p, "+"))
	default:
		ok, _ = path.Match(p, name)
	}
	return ok != m.negate
}

// noSocket reads an owner match of a forwarded packet, which has no socket:
// nft's skuid and skgid never match it, nor does xt_owner unless negated.
func (b *ruleBuilder) noSocket(negate bool, what string) {
	if negate && b.rule.Ref.Tool != "nft" {
		return
	}
	b.never(what + " (a forwarded packet has no socket)")
}

// ifaceName is a match on an interface's name: a note for the host's own
// packets, a network's or the uplink's for a forwarded one.
func (b *ruleBuilder) ifaceName(in bool, name string, negate bool, what string) {
	if b.dir&dirForwarded == 0 {
		b.iface(what)
		return
	}
	b.rule.ifaces = append(b.rule.ifaces, ifaceMatch{in: in, pattern: name, negate: negate})
}

// nftIface is ifaceName for nft's meta iifname/oifname: a name or an
// anonymous set of names.
func (b *ruleBuilder) nftIface(in bool, right any, negate bool, what string) {
	if b.dir&dirForwarded == 0 {
		b.iface(what)
		return
	}
	switch v := right.(type) {
	case string:
		if !strings.HasPrefix(v, "@") {
			b.ifaceName(in, v, negate, what)
			return
		}
	case map[string]any:
		if !negate {
			// one rule per name would be a disjunction a Rule cannot hold:
			// the names' union is kept as a pattern list
			var names []string
			for _, el := range asSlice(v["set"]) {
				names = append(names, fmt.Sprint(el))
			}
			b.rule.ifaces = append(b.rule.ifaces, ifaceMatch{in: in, pattern: "{" + strings.Join(names, ",") + "}"})
			return
		}
	}
	b.unsplit(what)
}

// MeetsNetwork says whether a forwarded rule can meet the packets of a
// network's clients: the client's packet comes in on the network's bridge
// and leaves by the uplink, the answer the other way.
func (r *Rule) MeetsNetwork(network, uplink string) bool {
	for _, m := range r.ifaces {
		name := uplink
		if m.in != r.answer {
			name = network
		}
		if strings.HasPrefix(m.pattern, "{") {
			names := strings.Split(strings.Trim(m.pattern, "{}"), ",")
			if !slices.ContainsFunc(names, func(p string) bool { return ifaceMatch{pattern: p}.matches(name) }) {
				return false
			}
			continue
		}
		if !m.matches(name) {
			return false
		}
	}
	return true
}
