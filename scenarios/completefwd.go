package scenarios

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/egresslab/egresslab/netns"
	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios/classes"
	"github.com/egresslab/egresslab/scenarios/policy"
)

// verify --complete on a host that routes for networks: its clients'
// forwarded traffic is split too (classes.SplitForward), and a class no
// policy client stands in is probed by a synthetic client of its network,
// from an address of the class. Each network of a --complete lab gets one
// more client namespace for that, with no address until the classes are
// known (placeSources gives it theirs).

// classClient is the lab client that probes a network's synthetic sources.
// A policy's client names are its own words; this one cannot clash with
// them as the lab builds it after them (withClassClients checks).
func classClient(network string) string { return "(classes)@" + network }

// withClassClients adds each network's class client to the lab's networks.
func withClassClients(nets []netns.Network) []netns.Network {
	out := slices.Clone(nets)
	for i, n := range out {
		name := classClient(n.Name)
		if slices.ContainsFunc(n.Clients, func(c netns.Client) bool { return c.Name == name }) {
			continue // a policy's own client of that name stands in
		}
		out[i].Clients = append(slices.Clone(n.Clients), netns.Client{Name: name})
	}
	return out
}

// splitForward is the classes of the policy's networks' forwarded traffic,
// represented at h's addresses and ports where they hold one, and the
// matches on that path the lab could not split.
func splitForward(rs *classes.Ruleset, p *Policy, h classes.Hints) ([]classes.Class, []classes.Unsplit, error) {
	if len(p.Networks) == 0 {
		return nil, nil, nil
	}
	var nets []classes.Network
	for _, n := range p.Networks {
		cn := classes.Network{Name: n.Name, Prefixes: n.Addresses}
		for _, c := range n.Clients {
			cn.Clients = append(cn.Clients, classes.Client{Name: c.Name, Addrs: c.Addresses})
		}
		nets = append(nets, cn)
	}
	cs, err := classes.SplitForward(rs, nets, p.Lab.Uplink, classes.Hints{Addrs: h.Addrs, Ports: h.Ports})
	return cs, rs.ForwardUnsplit, err
}

// placeSources gives each network's class client the source addresses of
// the classes it probes, with a default route via the network's gateway of
// each family: with ip, in the client's namespace.
func (cp *classPlan) placeSources(ctx context.Context, lab *LabBench, p *Policy) error {
	lines := map[string][]string{}
	seen := map[netip.Addr]bool{}
	for _, c := range cp.classes {
		r := c.Representative
		if c.Network == "" || r.PolicyClient || !r.Src.IsValid() || seen[r.Src] {
			continue
		}
		seen[r.Src] = true
		i := slices.IndexFunc(p.Networks, func(n policy.Network) bool { return n.Name == c.Network })
		if i < 0 {
			continue
		}
		n := p.Networks[i]
		fam := "ipv4"
		if r.Src.Is6() {
			fam = "ipv6"
		}
		gw, ok := n.Gateway(fam)
		if !ok {
			continue // SplitForward splits only the families the network has
		}
		name := classClient(n.Name)
		if len(lines[name]) == 0 || !slices.ContainsFunc(lines[name], func(l string) bool { return strings.Contains(l, "via "+gw.Addr().String()) }) {
			lines[name] = append(lines[name], fmt.Sprintf("route replace default via %s dev eth0", gw.Addr()))
		}
		add := fmt.Sprintf("address add %s dev eth0", netip.PrefixFrom(r.Src, gw.Bits()))
		if r.Src.Is6() {
			add += " nodad" // bound at once, never tentative
		}
		// the address before the route that needs it
		lines[name] = append([]string{add}, lines[name]...)
	}
	for name, batch := range lines {
		cmd, err := lab.ClientCommand(ctx, name, "ip", "-batch", "-")
		if err != nil {
			return err
		}
		cmd.Stdin = strings.NewReader(strings.Join(batch, "\n") + "\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("--complete: give %s its classes' source addresses: %v: %s", name, err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// clientLab is the prober on as client c: a client of the lab's, or a
// synthetic one (a class's, named by its address), which the class client
// of its network speaks as, bound to that address.
func (b *LabBench) clientLab(on probe.Lab, c *policy.Client) probe.ForwardLab {
	if _, ok := b.Lab.ClientNetNSFD(c.Name); ok || len(c.Addresses) != 1 {
		return b.clientOf(on, c.Name)
	}
	return fromSource{b.clientOf(on, classClient(c.Network)), c.Addresses[0]}
}

// fromSource is a client whose probe sockets are bound to one of its
// addresses: the class client speaking as a synthetic client.
type fromSource struct {
	asClient
	src netip.Addr
}

func (c fromSource) Socket(id netns.Identity, family, sotype int) (int, error) {
	fd, err := c.asClient.Socket(id, family, sotype)
	if err != nil {
		return fd, err
	}
	var sa unix.Sockaddr
	if c.src.Is4() {
		sa = &unix.SockaddrInet4{Addr: c.src.As4()}
	} else {
		sa = &unix.SockaddrInet6{Addr: c.src.As16()}
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("bind a probe socket to the class's source %s: %w", c.src, err)
	}
	return fd, nil
}
