package policy

import (
	"net/netip"
	"regexp"
)

// A policy's own values; the checks on single values are package value's.

// policyName is what a policy's `name` may be.
var policyName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

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
