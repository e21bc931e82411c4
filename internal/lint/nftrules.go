package lint

import (
	"encoding/json"
	"net/netip"
	"regexp"
	"slices"
	"strings"
)

// What an nft rule means for the checks, read from nft's JSON expressions.

// Verdict is the rule's final verdict statement ("accept", "drop", "reject",
// "jump", "goto", "return", or "" when it has none).
func (r *nftRule) Verdict() string {
	v := ""
	for _, e := range r.Expr {
		m, _ := e.(map[string]any)
		for k := range m {
			switch k {
			case "accept", "drop", "reject", "jump", "goto", "return", "queue":
				v = k
			}
		}
	}
	return v
}

// matches returns the rule's match expressions (left and right).
func (r *nftRule) matches() []map[string]any {
	var out []map[string]any
	for _, e := range r.Expr {
		m, _ := e.(map[string]any)
		if mm, ok := m["match"].(map[string]any); ok {
			out = append(out, mm)
		}
	}
	return out
}

// key names what a match looks at: "meta skuid", "payload ip daddr".
func matchKey(m map[string]any) string {
	left, _ := m["left"].(map[string]any)
	if meta, ok := left["meta"].(map[string]any); ok {
		return "meta " + str(meta["key"])
	}
	if p, ok := left["payload"].(map[string]any); ok {
		return "payload " + str(p["protocol"]) + " " + str(p["field"])
	}
	for k := range left {
		return k
	}
	return ""
}

func str(v any) string { s, _ := v.(string); return s }

// Owner reports whether the rule matches on the socket's owner.
func (r *nftRule) Owner() bool {
	for _, m := range r.matches() {
		switch matchKey(m) {
		case "meta skuid", "meta skgid":
			return true
		}
	}
	return false
}

// Unconditional reports whether every packet meets the rule.
func (r *nftRule) Unconditional() bool { return len(r.matches()) == 0 }

// Restriction says which family a match in an inet table limits the rule to,
// and the words nft prints for it: "ip protocol", "ip daddr", "meta nfproto
// ipv4". ICMP-only rules are left out: ICMP and ICMPv6 are different
// protocols, and a rule for one needs no twin for the other.
func (r *nftRule) Restriction() (family, what string) {
	for _, m := range r.matches() {
		k := matchKey(m)
		switch {
		case strings.HasPrefix(k, "payload ip "):
			return "ipv4", "ip " + strings.TrimPrefix(k, "payload ip ")
		case strings.HasPrefix(k, "payload ip6 "):
			return "ipv6", "ip6 " + strings.TrimPrefix(k, "payload ip6 ")
		case k == "meta nfproto":
			if v := str(m["right"]); v == "ipv4" || v == "ipv6" {
				return v, "meta nfproto " + v
			}
		}
	}
	// In an inet table, `reject with icmp` carries a hidden `meta nfproto
	// ipv4` (nft lists it without), and `reject with icmpv6` one for ipv6.
	for _, e := range r.Expr {
		m, _ := e.(map[string]any)
		rej, _ := m["reject"].(map[string]any)
		switch str(rej["type"]) {
		case "icmp":
			return "ipv4", "reject with icmp"
		case "icmpv6":
			return "ipv6", "reject with icmpv6"
		}
	}
	return "", ""
}

// ICMP reports whether the rule is about ICMP or ICMPv6 only.
func (r *nftRule) ICMP() bool {
	for _, m := range r.matches() {
		k := matchKey(m)
		if strings.HasPrefix(k, "payload icmp") {
			return true
		}
		if k == "meta l4proto" || k == "payload ip protocol" || k == "payload ip6 nexthdr" {
			if v := str(m["right"]); v == "icmp" || v == "ipv6-icmp" {
				return true
			}
		}
	}
	return false
}

// Signature is the rule with family-specific parts made neutral (payload
// headers ip and ip6, addresses, nfproto, ICMP flavours, reject types); twins
// in the two families have the same one.
func (r *nftRule) Signature(chain string) string {
	b, _ := json.Marshal(neutral(r.Expr))
	return chain + " " + string(b)
}

var neutralWords = map[string]string{
	"ip": "IP", "ip6": "IP", "protocol": "L4", "nexthdr": "L4", "ipv4": "NF", "ipv6": "NF",
	"icmp": "ICMP", "icmpv6": "ICMP", "ipv6-icmp": "ICMP", "icmpx": "ICMP",
	"host-prohibited": "prohibited", "admin-prohibited": "prohibited", "net-prohibited": "prohibited",
	"net-unreachable": "no-route", "host-unreachable": "no-route", "no-route": "no-route", "addr-unreachable": "no-route",
}

func neutral(v any) any {
	switch x := v.(type) {
	case map[string]any:
		if _, ok := x["prefix"]; ok {
			return "ADDR"
		}
		out := map[string]any{}
		for k, e := range x {
			switch k {
			case "counter":
				continue // a counter's numbers are no part of the rule's meaning
			case "jump", "goto":
				// Per-family subchains (netavark's nv_*, firewalld's) make a
				// twin jump to another chain: the chain is checked on its own.
				out[k] = "CHAIN"
				continue
			}
			out[k] = neutral(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = neutral(e)
		}
		return out
	case string:
		if n, ok := neutralWords[x]; ok {
			return n
		}
		if _, err := netip.ParseAddr(x); err == nil {
			return "ADDR"
		}
		return x
	}
	return v
}

var (
	ipv4Literal = regexp.MustCompile(`\b\d{1,3}(\.\d{1,3}){3}(/\d+)?\b`)
	ipv6Literal = regexp.MustCompile(`\b[0-9a-fA-F]*:[0-9a-fA-F:]*:[0-9a-fA-F]*(/\d+)?`)
)

// Twin writes the rule for the other family, as well as text can.
func (r *nftRule) Twin(toIPv6 bool) string {
	t := r.Text
	if toIPv6 {
		t = strings.NewReplacer("ip protocol ", "meta l4proto ", "ip saddr ", "ip6 saddr ", "ip daddr ", "ip6 daddr ",
			"meta nfproto ipv4", "meta nfproto ipv6", "icmp type ", "icmpv6 type ", "reject with icmp ", "reject with icmpv6 ").Replace(t)
		return ipv4Literal.ReplaceAllString(t, "<IPv6 address>")
	}
	t = strings.NewReplacer("ip6 nexthdr ", "meta l4proto ", "ip6 saddr ", "ip saddr ", "ip6 daddr ", "ip daddr ",
		"meta nfproto ipv6", "meta nfproto ipv4", "icmpv6 type ", "icmp type ", "reject with icmpv6 ", "reject with icmp ").Replace(t)
	return ipv6Literal.ReplaceAllString(t, "<IPv4 address>")
}

// ndCoverage reports which ND messages the rule matches, every one of them:
// only rules that match nothing or nothing but ICMPv6 (and its type) count.
func (r *nftRule) ndCoverage() (solicit, advert bool) {
	if r.Unconditional() {
		return true, true
	}
	icmp, types := false, []string(nil)
	for _, m := range r.matches() {
		switch k := matchKey(m); {
		case k == "payload icmpv6 type":
			icmp = true
			types = append(types, values(m["right"])...)
		case k == "meta l4proto" || k == "payload ip6 nexthdr":
			if !slices.Contains(values(m["right"]), "ipv6-icmp") {
				return false, false
			}
			icmp = true
		case k == "meta nfproto" && str(m["right"]) == "ipv6":
		default:
			return false, false
		}
	}
	if !icmp {
		return false, false
	}
	if types == nil {
		return true, true
	}
	return slices.Contains(types, "nd-neighbor-solicit"), slices.Contains(types, "nd-neighbor-advert")
}

func values(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case map[string]any:
		if set, ok := x["set"].([]any); ok {
			var out []string
			for _, e := range set {
				out = append(out, str(e))
			}
			return out
		}
	}
	return nil
}

// jumpTarget is the chain a rule jumps or goes to, if it does.
func (r *nftRule) jumpTarget() string {
	for _, e := range r.Expr {
		m, _ := e.(map[string]any)
		for _, k := range []string{"jump", "goto"} {
			if j, ok := m[k].(map[string]any); ok {
				return str(j["target"])
			}
		}
	}
	return ""
}
