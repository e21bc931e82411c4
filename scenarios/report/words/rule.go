package words

import (
	"regexp"
	"strings"

	"github.com/egresslab/egresslab/netns/trace"
	"github.com/egresslab/egresslab/probe"
)

// The report's words for the rule that decided a probe: the trace names the
// rule and the kernel's verdict on the packet; what a reader calls that
// verdict, and what the rule matched that a reader may not expect, are said
// here.

// RuleVerdict is the deciding rule's verdict as a reader names it, from the
// kernel's verdict as the trace reported it and the probe's outcome. The
// kernel reports a reject rule as the drop that follows its answer, so a
// drop the probe saw answered (refused or rejected) was a reject.
func RuleVerdict(traced string, observed probe.Outcome) string {
	if traced == "drop" && (observed == probe.Refused || observed == probe.Rejected) {
		return "reject"
	}
	return traced
}

// DecidedBy names the deciding rule for a reader: the rule, and what it
// matched on that a reader may not expect.
func DecidedBy(r *trace.Rule) string {
	if note := RuleNote(r); note != "" {
		return r.String() + " — " + note
	}
	return r.String()
}

var (
	ipv4Only = regexp.MustCompile(`\bip (saddr|daddr|protocol)\b|meta nfproto ipv4|reject with icmp `)
	ipv6Only = regexp.MustCompile(`\bip6 (saddr|daddr|nexthdr)\b|meta nfproto ipv6|reject with icmpv6 `)
	loopback = regexp.MustCompile(`\b[oi]ifname "lo"|-[oi] lo\b`)
)

// RuleNote says what a rule matched on that a reader may not expect, from
// the rule's text as the kernel listed it (lint says the same of a file's
// rules before any lab runs: docs/lint.md).
func RuleNote(r *trace.Rule) string {
	if r == nil || r.Policy || r.Untraced != "" {
		return ""
	}
	var notes []string
	if strings.Contains(r.Text, "skgid") || strings.Contains(r.Text, "--gid-owner") && !strings.Contains(r.Text, "--suppl-groups") {
		notes = append(notes, "a group owner match sees the socket's primary group only, not supplementary groups")
	}
	if r.Family == "inet" && ipv4Only.MatchString(r.Text) {
		notes = append(notes, "an IPv4-only match in an inet table: IPv6 packets pass this rule by")
	}
	if r.Family == "inet" && ipv6Only.MatchString(r.Text) {
		notes = append(notes, "an IPv6-only match in an inet table: IPv4 packets pass this rule by")
	}
	if loopback.MatchString(r.Text) {
		notes = append(notes, "it matched on the loopback interface")
	}
	return strings.Join(notes, "; ")
}
