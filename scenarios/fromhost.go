package scenarios

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/egresslab/egresslab/internal/hostsnap"
)

// FromHost returns a copy of p that verifies a snapshot of the running host
// (verify --from-host): the host's rulesets, in every flavour and family,
// load into the lab in place of p's ruleset; the lab's uplink carries the
// name of the host's default-route interface; the host's groups join the
// lab's /etc/group, and p's users gain the supplementary groups the host
// gives them. A user whose uid or gid differs from the host's is an error:
// the ruleset's owner matches name the host's ids.
func FromHost(p *Policy, s *hostsnap.Snapshot) (*Policy, error) {
	if r := p.Ruleset; r.IPTables != nil || r.IP6Tables != nil || r.NFT != nil || r.Script != nil {
		return nil, &Error{File: p.File, Msg: "--from-host verifies the host's loaded ruleset: leave ruleset: out of the policy"}
	}
	q := *p
	if s.Uplink != "" {
		q.Lab.Uplink = s.Uplink
	}
	q.Ruleset = Ruleset{Script: &RulesetFile{Path: "the host's ruleset (--from-host)", Data: loadScript(s)}}
	hostUsers := parseIDFile(s.Passwd, false)
	members := map[string][]uint32{}
	hostGroups := parseIDFile(s.Group, true)
	for _, g := range hostGroups {
		for _, m := range g.members {
			members[m] = append(members[m], g.id)
		}
	}
	q.Users = slices.Clone(p.Users)
	for i, u := range q.Users {
		h, ok := findEntry(hostUsers, u.Name)
		if !ok {
			continue
		}
		if h.id != u.UID || h.gid != u.GID {
			return nil, &Error{File: p.File, Msg: fmt.Sprintf("user %s is uid %d gid %d in the policy but uid %d gid %d on the host: the host's rules name the host's ids",
				u.Name, u.UID, u.GID, h.id, h.gid)}
		}
		groups := slices.Clone(u.Groups)
		for _, g := range members[u.Name] {
			if !slices.Contains(groups, g) && g != u.GID {
				groups = append(groups, g)
			}
		}
		q.Users[i].Groups = groups
	}
	q.Groups = slices.Clone(p.Groups)
	for _, g := range hostGroups {
		if g.id == 0 || g.id > 65535 || slices.ContainsFunc(q.Groups, func(x Group) bool { return x.Name == g.name || x.GID == g.id }) {
			continue
		}
		q.Groups = append(q.Groups, Group{Name: g.name, GID: g.id})
	}
	return &q, nil
}

// loadScript loads every listing with its own flavour's restore tool, then
// the native nft tables, as a lab script: here-documents keep the text as
// the tools printed it.
func loadScript(s *hostsnap.Snapshot) []byte {
	var b bytes.Buffer
	b.WriteString("# the host's loaded ruleset, as egresslab verify --from-host listed it\nset -e\n")
	load := func(tool string, data []byte) {
		end := "EGRESSLAB_HOST_RULES"
		for bytes.Contains(data, []byte(end)) {
			end += "_"
		}
		fmt.Fprintf(&b, "%s <<'%s'\n%s\n%s\n", tool, end, bytes.TrimRight(data, "\n"), end)
	}
	for _, tool := range hostsnap.SaveTools {
		if data := s.Saves[tool]; len(data) > 0 {
			load(strings.Replace(tool, "-save", "-restore", 1), data)
		}
	}
	if len(bytes.TrimSpace(s.NFT)) > 0 {
		load("nft -f -", s.NFT)
	}
	return b.Bytes()
}

type idEntry struct {
	name    string
	id, gid uint32
	members []string
}

// parseIDFile reads passwd (name:x:uid:gid:...) or, with group, group
// (name:x:gid:members) lines; lines it cannot read are skipped, as getent
// would.
func parseIDFile(data []byte, group bool) []idEntry {
	var out []idEntry
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Split(line, ":")
		if len(f) < 4 || strings.HasPrefix(line, "#") {
			continue
		}
		id, err := strconv.ParseUint(f[2], 10, 32)
		if err != nil {
			continue
		}
		e := idEntry{name: f[0], id: uint32(id)}
		switch gid, err := strconv.ParseUint(f[3], 10, 32); {
		case group && f[3] != "":
			e.members = strings.Split(f[3], ",")
		case !group && err == nil:
			e.gid = uint32(gid)
		case !group:
			continue
		}
		out = append(out, e)
	}
	return out
}

func findEntry(es []idEntry, name string) (idEntry, bool) {
	for _, e := range es {
		if e.name == name {
			return e, true
		}
	}
	return idEntry{}, false
}
