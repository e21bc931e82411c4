package value

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
)

var (
	// Debian's rule for system account names (adduser's NAME_REGEX, with '.').
	accountName = regexp.MustCompile(`^[a-z_][a-z0-9_.-]{0,31}$`)
	dnsLabel    = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
)

// CheckAccount accepts what Debian accepts as a system account name.
func CheckAccount(kind, name string) error {
	if !accountName.MatchString(name) {
		return fmt.Errorf("invalid %s name %q: want lowercase letters, digits, '_', '-' or '.', starting with a letter or '_', at most 32 characters", kind, name)
	}
	return nil
}

// CheckDNSName accepts lowercase DNS names. Lowercase only, because the lab's
// DNS ignores case and two spellings of one name would be two hosts here.
func CheckDNSName(kind, name string) error {
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

// CheckInterface follows the kernel's dev_valid_name; lo is taken by the lab.
func CheckInterface(name string) error {
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

// CheckNetworkName accepts a Linux interface name (dev_valid_name) that the
// lab does not use itself.
func CheckNetworkName(name string) error {
	ok := name != "" && len(name) <= 15 && name != "." && name != ".."
	for _, r := range name {
		ok = ok && r > ' ' && r < 0x7f && r != '/' && r != ':'
	}
	switch {
	case !ok:
		return fmt.Errorf("invalid network name %q: want the interface name the ruleset sees, 1 to 15 printable characters without '/', ':' or spaces, such as docker0 or br-0123456789ab", name)
	case name == "lo":
		return fmt.Errorf("network %q is the loopback interface: want the bridge's name, such as docker0", name)
	}
	return nil
}
