package policy

import (
	"fmt"
	"github.com/egresslab/egresslab/scenarios/policy/yamlnode"
	"net/netip"
	"regexp"
	"strings"
)

// The checks on single values of a policy file. Their errors carry no
// position; the decoder adds it.

var (
	// Debian's rule for system account names (adduser's NAME_REGEX, with '.').
	accountName = regexp.MustCompile(`^[a-z_][a-z0-9_.-]{0,31}$`)
	dnsLabel    = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	policyName  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)
)

func checkAccount(kind, name string) error {
	if !accountName.MatchString(name) {
		return fmt.Errorf("invalid %s name %q: want lowercase letters, digits, '_', '-' or '.', starting with a letter or '_', at most 32 characters", kind, name)
	}
	return nil
}

// checkDNSName accepts lowercase DNS names. Lowercase only, because the lab's
// DNS ignores case and two spellings of one name would be two hosts here.
func checkDNSName(kind, name string) error {
	if _, err := netip.ParseAddr(name); err == nil {
		return fmt.Errorf("%s name %q is an address: want a DNS name such as mx.example.test", kind, name)
	}
	ok := name != "" && len(name) <= 253
	for label := range strings.SplitSeq(name, ".") {
		ok = ok && dnsLabel.MatchString(label)
	}
	if !ok {
		return fmt.Errorf("invalid %s name %q: want a lowercase DNS name such as mx.example.test", kind, name)
	}
	return nil
}

// checkInterface follows the kernel's dev_valid_name; lo is taken by the lab.
func checkInterface(name string) error {
	if name == "lo" {
		return fmt.Errorf("uplink %q is the loopback interface: want another name, such as eth0", name)
	}
	ok := name != "" && len(name) <= 15 && name != "." && name != ".."
	for _, r := range name {
		ok = ok && r > ' ' && r < 0x7f && r != '/' && r != ':'
	}
	if !ok {
		return fmt.Errorf("invalid uplink name %q: want 1 to 15 printable characters without '/', ':' or spaces, such as eth0", name)
	}
	return nil
}

// parseAddr accepts an address the lab can serve and a probe can dial on its
// own: no zone, no IPv4-mapped form (an IPv4 address is probed over IPv4).
func parseAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil:
		return a, fmt.Errorf("bad address %q: want an IPv4 or IPv6 address", s)
	case a.Zone() != "":
		return a, fmt.Errorf("address %q has a zone: want an address without %%zone", s)
	case a.Is4In6():
		return a, fmt.Errorf("address %q is IPv4-mapped: write %s, which is probed over IPv4", s, a.Unmap())
	case a.IsUnspecified(), a.IsMulticast(), a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return a, fmt.Errorf("address %s cannot be served: want a unicast address", a)
	case a.Is6() && a.IsLinkLocalUnicast():
		return a, fmt.Errorf("address %s is link-local and needs a zone to dial: want a global or loopback address", a)
	}
	return a, nil
}

// parseLabPrefix accepts one of the host's own uplink addresses, written with
// its prefix length; the prefix must leave room for the uplink's gateway.
func parseLabPrefix(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return p, fmt.Errorf("bad lab address %q: want an address with prefix length, such as 203.0.113.10/24", s)
	}
	a, net := p.Addr(), p.Masked()
	maxBits := 126
	if a.Is4() {
		maxBits = 30
	}
	switch {
	case a.Is4In6():
		return p, fmt.Errorf("lab address %q is IPv4-mapped: write it as IPv4", s)
	case a.IsLoopback():
		return p, fmt.Errorf("lab address %s is loopback: the uplink needs an address beyond lo", p)
	case a.IsUnspecified(), a.IsMulticast(), a.Is6() && a.IsLinkLocalUnicast():
		return p, fmt.Errorf("lab address %s cannot be an uplink address: want a global unicast address", p)
	case p.Bits() > maxBits:
		return p, fmt.Errorf("lab address %s leaves no room for the uplink's gateway: want a prefix of /%d or shorter", p, maxBits)
	case a == net.Addr():
		return p, fmt.Errorf("lab address %s is the network's own address: want a host address in it, such as %s/%d", p, net.Addr().Next(), p.Bits())
	case a.Is4() && a == lastAddr(net):
		return p, fmt.Errorf("lab address %s is the broadcast address: want a host address in the prefix", p)
	}
	return p, nil
}

// lastAddr is the highest address of an IPv4 prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().As4()
	for i := p.Bits(); i < 32; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	return netip.AddrFrom4(b)
}

// ParsePorts reads N/tcp, N/udp or a bare N (tcp), or a range N-M in any of
// those forms, N and M from 1 to 65535 and N <= M.
func ParsePorts(s string) (PortRange, error) {
	spec, proto, found := strings.Cut(s, "/")
	if !found {
		proto = "tcp"
	}
	if proto != "tcp" && proto != "udp" {
		return PortRange{}, fmt.Errorf("bad protocol in port %q: want tcp or udp", s)
	}
	first, last, isRange := strings.Cut(spec, "-")
	if !isRange {
		last = first
	}
	lo, err1 := yamlnode.Decimal(first, 65535)
	hi, err2 := yamlnode.Decimal(last, 65535)
	switch {
	case isRange && (err1 != nil || err2 != nil || lo == 0 || hi == 0):
		return PortRange{}, fmt.Errorf("bad port range %q: want N-M/tcp or N-M/udp, N and M from 1 to 65535", s)
	case err1 != nil || lo == 0:
		return PortRange{}, fmt.Errorf("bad port %q: want N/tcp, N/udp or N, N from 1 to 65535, or a range N-M/tcp", s)
	case lo > hi:
		return PortRange{}, fmt.Errorf("bad port range %q: %d is above %d: want the lower port first, such as %d-%d/%s", s, lo, hi, hi, lo, proto)
	}
	return PortRange{First: uint16(lo), Last: uint16(hi), Proto: proto}, nil
}

// Defaults for lab.addresses: documentation and shared address space, so a
// host in the policy is unlikely to sit inside them.
var defaultLabAddresses = map[string][]netip.Prefix{
	"ipv4": {
		netip.MustParsePrefix("203.0.113.10/24"),
		netip.MustParsePrefix("198.51.100.10/24"),
		netip.MustParsePrefix("192.0.2.10/24"),
		netip.MustParsePrefix("100.64.0.10/24"),
	},
	"ipv6": {
		netip.MustParsePrefix("2001:db8:1::10/64"),
		netip.MustParsePrefix("2001:db8:2::10/64"),
		netip.MustParsePrefix("2001:db8:ffff::10/64"),
		netip.MustParsePrefix("fd00:e6e5::10/64"),
	},
}

// The lab's own DNS listens here (udp and tcp); no host may serve port 53 on
// these addresses.
var labDNS = []netip.Addr{netip.MustParseAddr("127.0.0.53"), netip.MustParseAddr("::1")}
