package value

import (
	"fmt"
	"net/netip"
)

// ParseAddr accepts an address the lab can serve and a probe can dial on its
// own: no zone, no IPv4-mapped form (an IPv4 address is probed over IPv4).
func ParseAddr(s string) (netip.Addr, error) {
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

// ParseLabPrefix accepts one of the host's own uplink addresses, written with
// its prefix length; the prefix must leave room for the uplink's gateway.
func ParseLabPrefix(s string) (netip.Prefix, error) {
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
	case a.Is4() && a == LastAddr(net):
		return p, fmt.Errorf("lab address %s is the broadcast address: want a host address in the prefix", p)
	}
	return p, nil
}

// ParseNetworkPrefix accepts the host's address on a network with its
// prefix length, leaving room for at least one client.
func ParseNetworkPrefix(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return p, fmt.Errorf("bad network address %q: want the host's address with prefix length, such as 172.17.0.1/16", s)
	}
	a, net := p.Addr(), p.Masked()
	maxBits := 127
	if a.Is4() {
		maxBits = 30
	}
	switch {
	case a.Is4In6():
		return p, fmt.Errorf("network address %q is IPv4-mapped: write it as IPv4", s)
	case a.IsLoopback(), a.IsUnspecified(), a.IsMulticast(), a.IsLinkLocalUnicast():
		return p, fmt.Errorf("network address %s cannot be routed for: want a unicast address such as 172.17.0.1/16", p)
	case p.Bits() > maxBits:
		return p, fmt.Errorf("network address %s leaves no room for a client: want a prefix of /%d or shorter", p, maxBits)
	case a == net.Addr():
		return p, fmt.Errorf("network address %s is the network's own address: want the host's address in it, such as %s/%d", p, net.Addr().Next(), p.Bits())
	case a.Is4() && a == LastAddr(net):
		return p, fmt.Errorf("network address %s is the broadcast address: want a host address in the prefix", p)
	}
	return p, nil
}

// ParseSelectPrefix accepts what an expectation's addresses select: one
// address, or a prefix without host bits.
func ParseSelectPrefix(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" || a.Is4In6() {
			return netip.Prefix{}, fmt.Errorf("bad address %q: want an address without zone, IPv4 written as IPv4", s)
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil || p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("bad address %q: want an address such as 2001:db8::25 or a prefix such as 2000::/3", s)
	}
	if p != p.Masked() {
		return netip.Prefix{}, fmt.Errorf("prefix %s has host bits set: write %s", p, p.Masked())
	}
	return p, nil
}

// LastAddr is the highest address of an IPv4 prefix.
func LastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().As4()
	for i := p.Bits(); i < 32; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	return netip.AddrFrom4(b)
}
