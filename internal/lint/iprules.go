package lint

import (
	"strings"
)

// What a saved iptables rule means for the checks: read from the words
// iptables-save printed, never from the source text.

func (r ipRule) value(opts ...string) (string, bool) {
	for i, w := range r.Args {
		for _, o := range opts {
			if w == o && i+1 < len(r.Args) {
				return r.Args[i+1], true
			}
		}
	}
	return "", false
}

// Target is the -j target ("" when the rule has none).
func (r ipRule) Target() string {
	t, _ := r.value("-j", "--jump")
	if t == "" {
		t, _ = r.value("-g", "--goto")
	}
	return t
}

// Owner reports whether the rule matches on the socket's owner.
func (r ipRule) Owner() bool {
	for _, w := range r.Args {
		if w == "--uid-owner" || w == "--gid-owner" || w == "--socket-exists" {
			return true
		}
	}
	return false
}

// Unconditional reports whether the rule matches every packet: it is only a
// target, perhaps with a comment.
func (r ipRule) Unconditional() bool {
	rest := withoutComment(r.Args)
	return len(rest) >= 2 && (rest[0] == "-j" || rest[0] == "-g") && (len(rest) == 2 || strings.HasPrefix(rest[2], "--"))
}

func withoutComment(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		if args[i] == "-m" && i+1 < len(args) && args[i+1] == "comment" {
			i++
			continue
		}
		if args[i] == "--comment" {
			i++
			continue
		}
		out = append(out, args[i])
	}
	return out
}

func isBlocking(target string) bool { return target == "DROP" || target == "REJECT" }

// Family-neutral forms: what an IPv4 word would be in the IPv6 twin.
var (
	icmpNeutral = map[string]string{
		"icmp": "ICMP", "ipv6-icmp": "ICMP", "icmpv6": "ICMP", "1": "ICMP", "58": "ICMP",
		"icmp6": "ICMP",
	}
	// ICMP types by their meaning (iptables-save prints numbers or names).
	icmpTypeNeutral = map[string]string{
		"8": "echo-request", "128": "echo-request", "echo-request": "echo-request",
		"0": "echo-reply", "129": "echo-reply", "echo-reply": "echo-reply",
		"3": "unreachable", "1": "unreachable", "destination-unreachable": "unreachable",
		"11": "time-exceeded", "time-exceeded": "time-exceeded",
	}
	rejectNeutral = map[string]string{
		"icmp-port-unreachable": "port", "icmp6-port-unreachable": "port",
		"icmp-host-prohibited": "prohibited", "icmp-admin-prohibited": "prohibited", "icmp-net-prohibited": "prohibited",
		"icmp6-adm-prohibited": "prohibited",
		"icmp-net-unreachable": "no-route", "icmp-host-unreachable": "no-route", "icmp6-no-route": "no-route",
		"icmp6-addr-unreachable": "no-route",
		"tcp-reset":              "tcp-reset",
	}
	addressOptions = map[string]bool{"-s": true, "-d": true, "--source": true, "--destination": true,
		"--src-range": true, "--dst-range": true, "--to-destination": true, "--to-source": true}
)

// Signature is the rule with everything family-specific made neutral:
// addresses, ICMP and ICMPv6, reject types. Twins in the two families have
// the same signature.
func (r ipRule) Signature() string {
	out := []string{r.Table, r.Chain}
	for i := 0; i < len(r.Args); i++ {
		w := r.Args[i]
		next := ""
		if i+1 < len(r.Args) {
			next = r.Args[i+1]
		}
		switch {
		case addressOptions[w]:
			out = append(out, w, "ADDR")
			i++
		case w == "-p" || w == "--protocol":
			if n, ok := icmpNeutral[next]; ok {
				next = n
			}
			out = append(out, "-p", next)
			i++
		case w == "-m" && (next == "icmp" || next == "icmp6"):
			out = append(out, "-m", "ICMP")
			i++
		case w == "--icmp-type" || w == "--icmpv6-type":
			t := next
			if n, ok := icmpTypeNeutral[strings.SplitN(next, "/", 2)[0]]; ok {
				t = n
			}
			out = append(out, "--ICMP-type", t)
			i++
		case w == "--reject-with":
			if n, ok := rejectNeutral[next]; ok {
				next = n
			}
			out = append(out, w, next)
			i++
		default:
			out = append(out, w)
		}
	}
	return strings.Join(out, " ")
}

// Twin writes the rule for the other family, as well as words can: ICMP and
// reject types translate; addresses cannot, and are marked for the admin.
func (r ipRule) Twin(toIPv6 bool) string {
	var out []string
	for i := 0; i < len(r.Args); i++ {
		w := r.Args[i]
		next := ""
		if i+1 < len(r.Args) {
			next = r.Args[i+1]
		}
		switch {
		case addressOptions[w]:
			out = append(out, w, map[bool]string{true: "<IPv6 address>", false: "<IPv4 address>"}[toIPv6])
			i++
		case (w == "-p" || w == "--protocol") && icmpNeutral[next] == "ICMP":
			out = append(out, w, map[bool]string{true: "ipv6-icmp", false: "icmp"}[toIPv6])
			i++
		case w == "-m" && (next == "icmp" || next == "icmp6"):
			out = append(out, w, map[bool]string{true: "icmp6", false: "icmp"}[toIPv6])
			i++
		case w == "--icmp-type" || w == "--icmpv6-type":
			t := icmpTypeNeutral[strings.SplitN(next, "/", 2)[0]]
			if t == "" {
				t = "<type>"
			}
			if t == "unreachable" {
				t = "destination-unreachable"
			}
			out = append(out, map[bool]string{true: "--icmpv6-type", false: "--icmp-type"}[toIPv6], t)
			i++
		case w == "--reject-with":
			out = append(out, w, rejectTwin(next, toIPv6))
			i++
		default:
			out = append(out, w)
		}
	}
	return "-A " + r.Chain + " " + strings.Join(out, " ")
}

func rejectTwin(with string, toIPv6 bool) string {
	v6 := map[string]string{"port": "icmp6-port-unreachable", "prohibited": "icmp6-adm-prohibited", "no-route": "icmp6-no-route", "tcp-reset": "tcp-reset"}
	v4 := map[string]string{"port": "icmp-port-unreachable", "prohibited": "icmp-admin-prohibited", "no-route": "icmp-net-unreachable", "tcp-reset": "tcp-reset"}
	m := v4
	if toIPv6 {
		m = v6
	}
	if t, ok := m[rejectNeutral[with]]; ok {
		return t
	}
	return with
}

// ndCoverage reports which ND messages the rule matches, every one of them:
// only rules that match nothing or nothing but ICMPv6 (and perhaps its type)
// count, since NS and NA have no socket owner, no connection and no port.
func (r ipRule) ndCoverage() (solicit, advert bool) {
	if r.Unconditional() {
		return true, true
	}
	icmp, typ := false, ""
	args := withoutComment(r.Args)
	for i := 0; i < len(args); i++ {
		w := args[i]
		next := ""
		if i+1 < len(args) {
			next = args[i+1]
		}
		switch {
		case w == "-p" && icmpNeutral[next] == "ICMP":
			icmp = true
			i++
		case w == "-m" && (next == "icmp6" || next == "icmp"):
			i++
		case w == "--icmpv6-type":
			typ = next
			i++
		case w == "-j":
			i++
		default:
			return false, false // some other condition: not every NS/NA matches
		}
	}
	if !icmp {
		return false, false
	}
	switch typ {
	case "":
		return true, true
	case "135", "neighbour-solicitation", "neighbor-solicitation":
		return true, false
	case "136", "neighbour-advertisement", "neighbor-advertisement":
		return false, true
	}
	return false, false
}
