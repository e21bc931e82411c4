package listing

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/egresslab/egresslab/scenarios/classes/space"
)

// The values of nft's JSON matches: ids, ports and addresses, as a scalar,
// a range, a prefix, an anonymous or a named set.

func asSlice(v any) []any { s, _ := v.([]any); return s }

// valueOf reads one scalar of a dimension.
type valueOf func(any) (space.Point, error)

func idValue(v any) (space.Point, error) {
	if f, ok := v.(float64); ok && f >= 0 && f <= space.MaxID {
		return space.NumPoint(uint64(f)), nil
	}
	return space.Point{}, fmt.Errorf("id %v: want a number", v)
}

func portValue(v any) (space.Point, error) {
	if f, ok := v.(float64); ok && f >= 0 && f <= space.MaxPort {
		return space.NumPoint(uint64(f)), nil
	}
	return space.Point{}, fmt.Errorf("port %v: want a number", v)
}

func addrValue(v any) (space.Point, error) {
	a, err := netip.ParseAddr(str(v))
	if err != nil {
		return space.Point{}, fmt.Errorf("address %v: %v", v, err)
	}
	return space.AddrPoint(a), nil
}

// nftValues reads the right side of a match into the set it matches: a
// value, a prefix, a range, an anonymous set, a named set or a comparison.
func nftValues(right any, op string, whole space.Span, sets func(string) ([]any, string, bool), val valueOf) (space.Set, error) {
	if name, ok := right.(string); ok && strings.HasPrefix(name, "@") {
		elems, typ, found := sets(name[1:])
		if !found {
			return nil, fmt.Errorf("set %s not in the listing", name)
		}
		if typ == "concat" {
			return nil, fmt.Errorf("set %s of concatenations", name)
		}
		return nftElems(elems, val)
	}
	if m, ok := right.(map[string]any); ok {
		if el, ok := m["set"]; ok {
			return nftElems(asSlice(el), val)
		}
	}
	s, err := nftElems([]any{right}, val)
	if err != nil {
		return nil, err
	}
	switch op {
	case "==", "!=", "in", "":
		return s, nil
	case "<", "<=":
		hi := s[0].First
		if op == "<" {
			if hi == whole.First {
				return space.Set{}, nil
			}
			hi = hi.Prev()
		}
		return space.Set{{First: whole.First, Last: hi}}, nil
	case ">", ">=":
		lo := s[0].Last
		if op == ">" {
			if lo == whole.Last {
				return space.Set{}, nil
			}
			lo = lo.Next()
		}
		return space.Set{{First: lo, Last: whole.Last}}, nil
	}
	return nil, fmt.Errorf("operator %s", op)
}

func nftElems(elems []any, val valueOf) (space.Set, error) {
	var spans []space.Span
	for _, el := range elems {
		if m, ok := el.(map[string]any); ok {
			if inner, ok := m["elem"].(map[string]any); ok {
				el = inner["val"]
			}
		}
		switch v := el.(type) {
		case map[string]any:
			switch {
			case v["prefix"] != nil:
				p, _ := v["prefix"].(map[string]any)
				a, err := netip.ParseAddr(str(p["addr"]))
				n, _ := p["len"].(float64)
				if err != nil {
					return nil, fmt.Errorf("prefix %v: %v", p, err)
				}
				pf, err := a.Prefix(int(n))
				if err != nil {
					return nil, fmt.Errorf("prefix %v: %v", p, err)
				}
				spans = append(spans, space.PrefixSpan(pf))
			case v["range"] != nil:
				r := asSlice(v["range"])
				if len(r) != 2 {
					return nil, fmt.Errorf("range %v", v)
				}
				lo, err := val(r[0])
				if err != nil {
					return nil, err
				}
				hi, err := val(r[1])
				if err != nil {
					return nil, err
				}
				spans = append(spans, space.Span{First: lo, Last: hi})
			default:
				return nil, fmt.Errorf("element %v", v)
			}
		default:
			p, err := val(v)
			if err != nil {
				return nil, err
			}
			spans = append(spans, space.Span{First: p, Last: p})
		}
	}
	return space.Normalize(spans), nil
}
