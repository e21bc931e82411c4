package lint

import (
	"net/netip"
	"strconv"
	"strings"
)

// Some rules exist in one family by nature: the traffic they match has no
// twin in the other (DHCPv6 and DHCP, link-local and multicast prefixes,
// ICMPv6's neighbour discovery and MLD, which isICMPRule and ICMP() already
// leave out). Such a rule is no gap.

var nativePrefixes = map[bool][]netip.Prefix{
	true: {netip.MustParsePrefix("fe80::/10"), netip.MustParsePrefix("ff00::/8")},
	false: {netip.MustParsePrefix("169.254.0.0/16"), netip.MustParsePrefix("224.0.0.0/4"),
		netip.MustParsePrefix("255.255.255.255/32")},
}

// nativePorts: DHCPv6 client and server, DHCP server and client.
var nativePorts = map[bool]map[int]bool{true: {546: true, 547: true}, false: {67: true, 68: true}}

var portWords = map[string]bool{"--dport": true, "--dports": true, "--destination-port": true, "--destination-ports": true,
	"--sport": true, "--sports": true, "--source-port": true, "--source-ports": true, "dport": true, "sport": true}

var addrWords = map[string]bool{"-d": true, "--destination": true, "-s": true, "--source": true, "daddr": true, "saddr": true}

// familyNative reports whether a rule, as words the tool printed back, only
// makes sense in its own family: an address in one of the family's own
// prefixes, or ports that are all its DHCP ports.
func familyNative(words []string, ipv6 bool) bool {
	for i := 0; i+1 < len(words); i++ {
		next := strings.Trim(words[i+1], "{},")
		switch {
		case addrWords[words[i]]:
			for _, a := range strings.Split(next, ",") {
				if inNative(a, ipv6) {
					return true
				}
			}
		case portWords[words[i]]:
			if allNativePorts(words[i+1:], ipv6) {
				return true
			}
		}
	}
	return false
}

// metadata is the cloud metadata address: link-local, yet reachable over
// IPv6 too (NAT64's 64:ff9b::a9fe:a9fe, EC2's fd00:ec2::254), so a rule for
// it needs its twin.
var metadata = netip.MustParseAddr("169.254.169.254")

func inNative(s string, ipv6 bool) bool {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		a, aerr := netip.ParseAddr(s)
		if aerr != nil {
			return false
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if p.Addr() == metadata {
		return false
	}
	for _, n := range nativePrefixes[ipv6] {
		if n.Bits() <= p.Bits() && n.Contains(p.Addr()) {
			return true
		}
	}
	return false
}

// allNativePorts reads a port list (iptables' "546,547", nft's "546" or
// "{ 546, 547 }") and reports whether every port in it is a DHCP port.
func allNativePorts(rest []string, ipv6 bool) bool {
	var ports []string
	if strings.HasPrefix(rest[0], "{") {
		for _, w := range rest {
			for _, p := range strings.Split(strings.Trim(w, "{},"), ",") {
				if p != "" {
					ports = append(ports, p)
				}
			}
			if strings.HasSuffix(w, "}") {
				break
			}
		}
	} else {
		ports = strings.Split(rest[0], ",")
	}
	if len(ports) == 0 {
		return false
	}
	for _, p := range ports {
		n, err := strconv.Atoi(p)
		if err != nil || !nativePorts[ipv6][n] {
			return false
		}
	}
	return true
}
