package listing

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/egresslab/egresslab/scenarios/classes/space"
)

// Reading `nft -j list ruleset`: every table nft can see (nft's own and
// iptables-nft's; legacy tables are invisible to it).

type nftObject struct {
	Table *struct {
		Family, Name string
	} `json:"table"`
	Chain *struct {
		Family, Table, Name, Hook string
	} `json:"chain"`
	Set *struct {
		Family, Table, Name string
		Type                any   `json:"type"`
		Elem                []any `json:"elem"`
	} `json:"set"`
	Map  json.RawMessage `json:"map"`
	Rule *struct {
		Family, Table, Chain string
		Handle               int
		Expr                 []map[string]any `json:"expr"`
	} `json:"rule"`
}

type nftListing struct {
	Nftables []nftObject `json:"nftables"`
}

type tableKey struct{ family, name string }

func tableFamilies(family string) (space.Family, bool) {
	switch family {
	case "ip":
		return space.IPv4, true
	case "ip6":
		return space.IPv6, true
	case "inet":
		return space.IPv4 | space.IPv6, true
	}
	return 0, false
}

// hookDirection is the ways of a base chain's packets: forward sees none of
// the lab's own, prerouting and postrouting see forwarded ones too.
func hookDirection(hook string) (direction, bool) {
	switch hook {
	case "output":
		return dirOut, true
	case "input":
		return dirIn, true
	case "postrouting":
		return dirOut | dirForwarded, true
	case "prerouting":
		return dirIn | dirForwarded, true
	}
	return dirForwarded, hook == "forward"
}

// readNFT adds the rules of every table in listing except those skip names.
func (rs *Ruleset) readNFT(listing []byte, skip map[tableKey]bool) error {
	var l nftListing
	if err := json.Unmarshal(listing, &l); err != nil {
		return fmt.Errorf("read nft -j list ruleset: %w", err)
	}
	sets := map[[3]string][]any{}
	setTypes := map[[3]string]string{}
	chains := map[[3]string]direction{}
	base := map[[3]string]bool{}
	jumps := map[[3]string][][3]string{}
	for _, o := range l.Nftables {
		switch {
		case o.Set != nil:
			k := [3]string{o.Set.Family, o.Set.Table, o.Set.Name}
			sets[k] = o.Set.Elem
			if t, ok := o.Set.Type.(string); ok {
				setTypes[k] = t
			} else {
				setTypes[k] = "concat"
			}
		case o.Chain != nil:
			k := [3]string{o.Chain.Family, o.Chain.Table, o.Chain.Name}
			if o.Chain.Hook != "" {
				base[k] = true
				d, _ := hookDirection(o.Chain.Hook)
				chains[k] = d
			}
		case o.Rule != nil:
			for _, e := range o.Rule.Expr {
				for _, verb := range []string{"jump", "goto"} {
					if j, ok := e[verb].(map[string]any); ok {
						from := [3]string{o.Rule.Family, o.Rule.Table, o.Rule.Chain}
						jumps[from] = append(jumps[from], [3]string{o.Rule.Family, o.Rule.Table, str(j["target"])})
					}
				}
			}
		}
	}
	dirs := chainDirections(chains, base, jumps)
	for _, o := range l.Nftables {
		r := o.Rule
		if r == nil || skip[tableKey{r.Family, r.Table}] {
			continue
		}
		fams, ok := tableFamilies(r.Family)
		if !ok {
			continue // arp, bridge, netdev: not on a socket's path
		}
		ck := [3]string{r.Family, r.Table, r.Chain}
		ref := RuleRef{Tool: "nft", Family: r.Family, Table: r.Table, Chain: r.Chain, Handle: r.Handle, Text: exprText(r.Expr)}
		for _, d := range directions {
			if dirs[ck]&d == 0 {
				continue
			}
			b := newRuleBuilder(ref, fams, d)
			for _, e := range r.Expr {
				b.nftExpr(e, func(name string) ([]any, string, bool) {
					k := [3]string{r.Family, r.Table, name}
					el, ok := sets[k]
					return el, setTypes[k], ok
				})
			}
			rs.add(b)
		}
	}
	return nil
}

// chainDirections gives each chain the ways of the base chains that reach
// it; a chain nothing reaches (yet) is read both ways, to be safe.
func chainDirections(dirs map[[3]string]direction, base map[[3]string]bool, jumps map[[3]string][][3]string) map[[3]string]direction {
	reached := map[[3]string]bool{}
	var walk func(k [3]string, d direction)
	walk = func(k [3]string, d direction) {
		if reached[k] && dirs[k]&d == d {
			return
		}
		reached[k] = true
		dirs[k] |= d
		for _, to := range jumps[k] {
			walk(to, dirs[k])
		}
	}
	for k := range base {
		walk(k, dirs[k])
	}
	for k := range jumps {
		if !reached[k] {
			walk(k, dirOut|dirIn|dirForwarded)
		}
	}
	return dirs
}

func str(v any) string { s, _ := v.(string); return s }

func exprText(expr []map[string]any) string {
	var parts []string
	for _, e := range expr {
		if _, ok := e["counter"]; ok {
			continue
		}
		b, _ := json.Marshal(e)
		parts = append(parts, string(b))
	}
	return strings.Join(parts, " ")
}

// nftExpr reads one expression of a rule; sets looks a named set up.
func (b *ruleBuilder) nftExpr(e map[string]any, sets func(string) ([]any, string, bool)) {
	for verb, body := range e {
		switch verb {
		case "match":
			m, _ := body.(map[string]any)
			b.nftMatch(m, sets)
		case "xt":
			x, _ := body.(map[string]any)
			if str(x["type"]) == "match" {
				// iptables-nft's compat expressions: nft shows their name only.
				b.unsplit("xt match " + str(x["name"]) + " (unreadable without iptables-nft-save)")
			}
		case "limit", "quota", "connlimit", "meter", "numgen", "synproxy":
			b.unsplit(verb)
		}
	}
}

func (b *ruleBuilder) nftMatch(m map[string]any, sets func(string) ([]any, string, bool)) {
	op := str(m["op"])
	negate := op == "!="
	left, _ := m["left"].(map[string]any)
	right := m["right"]
	if meta, ok := left["meta"].(map[string]any); ok {
		switch key := str(meta["key"]); key {
		case "skuid", "skgid":
			s, err := nftValues(right, op, space.WholeID(), sets, idValue)
			if err != nil {
				b.unsplit("meta " + key + ": " + err.Error())
				return
			}
			if key == "skuid" {
				b.uids(s, negate)
			} else {
				b.gids(s, negate)
			}
		case "l4proto", "protocol":
			b.nftProtos(right, negate, sets)
		case "nfproto":
			switch fmt.Sprint(right) {
			case "ipv4":
				b.families(space.IPv4)
			case "ipv6":
				b.families(space.IPv6)
			}
		case "oif", "oifname", "iif", "iifname":
			b.nftIface(strings.HasPrefix(key, "i"), right, negate, fmt.Sprintf("meta %s %s %v", key, op, right))
		case "oiftype", "iiftype":
			b.iface(fmt.Sprintf("meta %s %s %v", key, op, right))
		case "pkttype", "secpath", "len":
			b.unsplit("meta " + key)
		default:
			b.unsplit("meta " + key)
		}
		return
	}
	if p, ok := left["payload"].(map[string]any); ok {
		proto, field := str(p["protocol"]), str(p["field"])
		switch {
		case (proto == "ip" || proto == "ip6") && (field == "daddr" || field == "saddr"):
			f := space.IPv4
			if proto == "ip6" {
				f = space.IPv6
			}
			s, err := nftValues(right, op, space.WholeAddr(f), sets, addrValue)
			if err != nil {
				b.unsplit(proto + " " + field + ": " + err.Error())
				return
			}
			b.addrs(f, s, negate, field == "daddr", proto+" "+field)
		case proto == "ip" && field == "protocol", proto == "ip6" && field == "nexthdr":
			if proto == "ip" {
				b.families(space.IPv4)
			} else {
				b.families(space.IPv6)
			}
			b.nftProtos(right, negate, sets)
		case (proto == "tcp" || proto == "udp" || proto == "th") && (field == "dport" || field == "sport"):
			switch proto {
			case "tcp":
				b.protos("tcp", false)
			case "udp":
				b.protos("udp", false)
			}
			s, err := nftValues(right, op, space.Span{First: space.NumPoint(0), Last: space.NumPoint(space.MaxPort)}, sets, portValue)
			if err != nil {
				b.unsplit(proto + " " + field + ": " + err.Error())
				return
			}
			b.port(s, negate, field == "dport", proto+" "+field)
		case proto == "tcp" && field == "flags":
			b.protos("tcp", false) // a probe's SYN: the same for every cell
		case proto == "icmp" || proto == "icmpv6":
			b.protos(proto, false)
		case proto == "tcp" || proto == "udp":
			b.protos(proto, false)
			b.unsplit(proto + " " + field)
		default:
			b.unsplit(proto + " " + field)
		}
		return
	}
	if ct, ok := left["ct"].(map[string]any); ok {
		switch key := str(ct["key"]); key {
		case "state", "status", "direction":
			// the same for every probe's first packet, and for every answer
		default:
			b.unsplit("ct " + key)
		}
		return
	}
	if and, ok := left["&"].([]any); ok && len(and) > 0 {
		if p, ok := and[0].(map[string]any)["payload"].(map[string]any); ok && str(p["protocol"]) == "tcp" && str(p["field"]) == "flags" {
			b.protos("tcp", false)
			return
		}
	}
	for k := range left {
		b.unsplit(k)
		return
	}
	b.unsplit(fmt.Sprint(left))
}

func (b *ruleBuilder) nftProtos(right any, negate bool, sets func(string) ([]any, string, bool)) {
	var names []string
	switch v := right.(type) {
	case string:
		if strings.HasPrefix(v, "@") {
			b.unsplit("protocol set " + v)
			return
		}
		names = []string{v}
	case float64:
		names = []string{strconv.Itoa(int(v))}
	case map[string]any:
		for _, el := range asSlice(v["set"]) {
			names = append(names, fmt.Sprint(el))
		}
	}
	var p space.Proto
	for _, n := range names {
		switch n {
		case "tcp", "6":
			p |= space.TCP
		case "udp", "17":
			p |= space.UDP
		}
	}
	if negate {
		p = (space.TCP | space.UDP) &^ p
	}
	b.rule.Protos &= p
	if b.rule.Protos == 0 {
		b.never("protocol " + strings.Join(names, ",") + " (not probed)")
	}
}
