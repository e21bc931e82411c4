package report

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios/policy"
)

// ParityCell is one user × host × port whose outcome differs between IPv4
// and IPv6 (verify --parity): the quickest net for the whole class of bugs
// in the catalogue, since the policy need not say anything per family.
// A client's cell names the client and its network as a client's probe does.
type ParityCell struct {
	User    string          `json:"user,omitempty"`
	Client  string          `json:"client,omitempty"`
	Network string          `json:"network,omitempty"`
	Host    string          `json:"host"`
	Port    uint16          `json:"port"`
	Proto   string          `json:"proto"`
	IPv4    []probe.Outcome `json:"ipv4"` // every outcome seen on the host's IPv4 addresses
	IPv6    []probe.Outcome `json:"ipv6"`
	Line    int             `json:"line"` // the policy line of the expectation that covers the cell
}

func (c ParityCell) String() string {
	source := c.User
	if c.Client != "" {
		source = c.Client + "@" + c.Network
	}
	return fmt.Sprintf("%s -> %s %d/%s: ipv4 %s, ipv6 %s", source, c.Host, c.Port, c.Proto, outcomes(c.IPv4), outcomes(c.IPv6))
}

func outcomes(os []probe.Outcome) string {
	s := make([]string, len(os))
	for i, o := range os {
		s[i] = o.String()
	}
	return strings.Join(s, "+")
}

// CheckParity returns the cells of rep whose outcomes differ between the
// families. A cell decided by an expectation that names a family is meant to
// differ and is left out, as is a host with addresses of one family only.
func CheckParity(p *policy.Policy, rep *Report) []ParityCell {
	type key struct {
		user, host string
		port       policy.Port
	}
	cells := map[key]*ParityCell{}
	var order []key
	exempt := map[key]bool{}
	for _, res := range rep.Results {
		k := key{res.SourceName(), res.Host, res.Port}
		c := cells[k]
		if c == nil {
			c = &ParityCell{Host: k.host, Port: k.port.Number, Proto: k.port.Proto, Line: res.Line}
			if res.Client != nil {
				c.Client, c.Network = res.Client.Name, res.Client.Network
			} else {
				c.User = res.User.Name
			}
			cells[k] = c
			order = append(order, k)
		}
		if res.Rule >= 0 && res.Rule < len(p.Expect) && p.Expect[res.Rule].Family != "" {
			exempt[k] = true
		}
		seen := &c.IPv4
		if res.Family() == "ipv6" {
			seen = &c.IPv6
		}
		if !slices.Contains(*seen, res.Observed) {
			*seen = append(*seen, res.Observed)
			slices.Sort(*seen)
		}
	}
	var out []ParityCell
	for _, k := range order {
		c := cells[k]
		if exempt[k] || len(c.IPv4) == 0 || len(c.IPv6) == 0 || slices.Equal(c.IPv4, c.IPv6) {
			continue
		}
		out = append(out, *c)
	}
	return out
}

// writeParity lists the cells that failed parity, for the table.
func (r *Report) writeParity(w io.Writer, paint func(code, s string) string) {
	if len(r.Parity) == 0 {
		return
	}
	fmt.Fprintf(w, "\n%s differ between IPv4 and IPv6 (--parity; an expectation that names a family allows it):\n", Plural(len(r.Parity), "cell"))
	for _, c := range r.Parity {
		line := "  " + c.String()
		if c.Line > 0 {
			line += fmt.Sprintf(" (policy line %d)", c.Line)
		}
		fmt.Fprintln(w, paint(red, line))
	}
}
