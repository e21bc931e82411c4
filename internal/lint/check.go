package lint

import (
	"fmt"
	"strings"
)

func familyName4(ipv6 bool) string {
	if ipv6 {
		return "ipv6"
	}
	return "ipv4"
}

// checkIPTables pairs each iptables rule with its ip6tables twin (and back):
// a rule left without one is a finding, sharper for owner matches. Final
// drops and ICMP rules are left to checkDrops and checkND.
func checkIPTables(sets []*ipRuleset) []Finding {
	var findings []Finding
	for _, v6 := range []bool{false, true} {
		twins := map[string]int{}
		hasOther := false
		for _, rs := range sets {
			if rs.IPv6 != v6 {
				hasOther = true
				for _, c := range rs.Chains {
					for _, r := range c.Rules {
						twins[r.Signature()]++
					}
				}
			}
		}
		for _, rs := range sets {
			if rs.IPv6 != v6 {
				continue
			}
			for _, c := range rs.Chains {
				for _, r := range c.Rules {
					sig := r.Signature()
					if twins[sig] > 0 {
						twins[sig]--
						continue
					}
					if r.Unconditional() && isBlocking(r.Target()) || isICMPRule(r) || familyNative(r.Args, v6) {
						continue
					}
					f := oneFamily(rs.File, r.Line, familyName4(v6), r.Owner(), r.Text(), ipTwinFix(r, !v6, hasOther))
					if r.Target() == "ACCEPT" {
						f = oneFamilyAccept(f)
					}
					findings = append(findings, f)
				}
			}
		}
	}
	return findings
}

func isICMPRule(r ipRule) bool {
	p, _ := r.value("-p", "--protocol")
	return icmpNeutral[p] == "ICMP"
}

func ipTwinFix(r ipRule, toIPv6 bool, hasOther bool) string {
	tool := map[bool]string{true: "ip6tables", false: "iptables"}[toIPv6]
	where := fmt.Sprintf("add its twin to the %s ruleset (%s-restore input, *%s table)", title(familyName4(toIPv6)), tool, r.Table)
	if !hasOther {
		where = fmt.Sprintf("there is no %s ruleset at all: load these rules with %s-restore too (as ipt46 does), this one as", title(familyName4(toIPv6)), tool)
	}
	return where + ": " + r.Twin(toIPv6)
}

func oneFamily(file string, line int, family string, owner bool, rule, fix string) Finding {
	other := map[string]string{"ipv4": "IPv6", "ipv6": "IPv4"}[family]
	f := Finding{File: file, Line: line, Check: OneFamily, Family: family, Rule: rule, Fix: fix,
		Msg: fmt.Sprintf("this rule is in the %s ruleset only: %s traffic is not matched by it", title(family), other)}
	if owner {
		f.Check = OwnerOneFamily
		f.Msg = fmt.Sprintf("this owner match is in the %s ruleset only: the same users' %s traffic is not matched by it", title(family), other)
	}
	return f
}

// oneFamilyAccept rewrites the finding for a one-family rule that accepts:
// its twin would widen the other family, which is at least as strict (its
// packets go on to the rules after, which at most accept them too). Both sides are named, and the fix never widens.
func oneFamilyAccept(f Finding) Finding {
	fam := title(f.Family)
	other := map[string]string{"ipv4": "IPv6", "ipv6": "IPv4"}[f.Family]
	f.Msg = fmt.Sprintf("%s: %s accepts this traffic here, %s has no such rule and leaves it to the rules after, so %s is at least as strict",
		f.Msg, fam, other, other)
	f.Fix = fmt.Sprintf("if %s traffic should not pass here, delete or narrow this rule (the %s behaviour is then that of both); "+
		"add its twin to %s only if that traffic is meant to pass there too, after checking why it does not today", fam, other, other)
	return f
}

// checkNFT pairs rules of ip tables with rules of ip6 tables, by chain name.
func checkNFT(sets []*nftRuleset) []Finding {
	var findings []Finding
	for _, fam := range []string{"ip", "ip6"} {
		other := map[string]string{"ip": "ip6", "ip6": "ip"}[fam]
		twins := map[string]int{}
		hasOther := false
		for _, rs := range sets {
			for _, c := range rs.Chains {
				if c.Family == other {
					hasOther = true
					for _, r := range c.Rules {
						twins[r.Signature(c.Name)]++
					}
				}
			}
		}
		for _, rs := range sets {
			for _, c := range rs.Chains {
				if c.Family != fam {
					continue
				}
				for _, r := range c.Rules {
					sig := r.Signature(c.Name)
					if twins[sig] > 0 {
						twins[sig]--
						continue
					}
					if r.Unconditional() && isNFTBlocking(r.Verdict()) || r.ICMP() || familyNative(strings.Fields(r.Text), fam == "ip6") {
						continue
					}
					fix := fmt.Sprintf("write it once in an inet table, which covers both families, or add its twin to a table %s: %s", other, r.Twin(fam == "ip"))
					if !hasOther {
						fix = fmt.Sprintf("there is no %s table at all: use an inet table for both families, or add to a table %s: %s", other, other, r.Twin(fam == "ip"))
					}
					f := oneFamily(rs.File, r.Line, nftFamily(fam), r.Owner(), r.Text, fix)
					if r.Verdict() == "accept" {
						f = oneFamilyAccept(f)
					}
					findings = append(findings, f)
				}
			}
		}
	}
	return findings
}

// checkInet pairs, inside each inet chain, rules limited to IPv4 with rules
// limited to IPv6: a family-limited rule without its twin is a finding, since
// the table looks as if it covered both.
func checkInet(sets []*nftRuleset) []Finding {
	var findings []Finding
	for _, rs := range sets {
		scoped := familyScoped(rs.Chains)
		for _, c := range rs.Chains {
			if c.Family == "inet" {
				findings = append(findings, checkInetChain(rs.File, c, scoped[c.Table+" "+c.Name])...)
			}
		}
	}
	return findings
}

func nftFamily(f string) string { return map[string]string{"ip": "ipv4", "ip6": "ipv6"}[f] }

func isNFTBlocking(v string) bool { return v == "drop" || v == "reject" }

// familyScoped names the inet chains that only one family reaches: a chain
// (no hook of its own) that every jump or goto to it comes from a rule limited
// to that family, as netavark's per-subnet chains are. A rule of that family
// there leaves nothing of the other family behind: the other never arrives.
func familyScoped(chains []*nftChain) map[string]string {
	callers := map[string]map[string]bool{} // table+chain -> the families its callers are limited to ("" = both)
	for _, c := range chains {
		if c.Family != "inet" {
			continue
		}
		for _, r := range c.Rules {
			if t := r.jumpTarget(); t != "" {
				key := c.Table + " " + t
				if callers[key] == nil {
					callers[key] = map[string]bool{}
				}
				fam, _ := r.Restriction()
				callers[key][fam] = true
			}
		}
	}
	scoped := map[string]string{}
	for _, c := range chains {
		key := c.Table + " " + c.Name
		if c.Family != "inet" || c.Hook != "" || len(callers[key]) != 1 {
			continue
		}
		for fam := range callers[key] {
			if fam != "" {
				scoped[key] = fam
			}
		}
	}
	return scoped
}

func checkInetChain(file string, c *nftChain, onlyFamily string) []Finding {
	var findings []Finding
	twins := map[string]int{}
	for _, r := range c.Rules {
		if fam, _ := r.Restriction(); fam != "" {
			twins[fam+" "+r.Signature(c.Name)]++
		}
	}
	for _, r := range c.Rules {
		fam, what := r.Restriction()
		if fam == "" || fam == onlyFamily || r.ICMP() || familyNative(strings.Fields(r.Text), fam == "ipv6") {
			continue
		}
		other := map[string]string{"ipv4": "ipv6", "ipv6": "ipv4"}[fam]
		if twins[other+" "+r.Signature(c.Name)] > 0 {
			twins[other+" "+r.Signature(c.Name)]--
			continue
		}
		fix := "add its twin for the other family: " + r.Twin(fam == "ipv4")
		switch {
		case what == "ip protocol" || what == "ip6 nexthdr":
			fix = fmt.Sprintf("write `meta l4proto` instead of `%s`: it matches both families", what)
		case strings.HasPrefix(what, "reject with"):
			fix = fmt.Sprintf("`%s` in an inet table also limits the rule to %s (nft adds `meta nfproto %s` and lists it without): write plain `reject` (icmpx), which answers both families", what, title(fam), fam)
		case strings.HasPrefix(what, "meta nfproto"):
			fix = fmt.Sprintf("drop `%s` if the rule is meant for both families, or add its twin: %s", what, r.Twin(fam == "ipv4"))
		}
		f := Finding{File: file, Line: r.Line, Check: InetFamilyMatch, Family: "inet", Rule: r.Text, Fix: fix,
			Msg: fmt.Sprintf("`%s` in inet table %s limits this rule to %s: %s packets pass it by", what, c.Table,
				title(fam), title(other))}
		findings = append(findings, f)
	}
	return findings
}
