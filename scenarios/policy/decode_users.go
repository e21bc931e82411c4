package policy

import (
	"fmt"
	"slices"

	"github.com/egresslab/egresslab/scenarios/policy/value"
	"github.com/egresslab/egresslab/scenarios/policy/yamlnode"
	"github.com/goccy/go-yaml/ast"
)

func (pd *policyDecoder) decodeUsers(f yamlnode.Field) error {
	fields, err := pd.Mapping(f.Value, "users", false)
	if err != nil {
		return err
	}
	if len(fields) == 0 {
		return pd.Errorf(f.Node, "no users: want at least one identity to probe as")
	}
	uids := map[uint32]string{0: "root"}
	for _, uf := range fields {
		// A user in error still has a name: entries that name it are not
		// wrong because of it.
		pd.users = append(pd.users, uf.Key)
		if err := value.CheckAccount("user", uf.Key); err != nil {
			pd.fail(pd.Errorf(uf.Node, "%v", err))
			continue
		}
		u, uidNode, err := pd.user(uf)
		if err != nil {
			pd.fail(err)
			continue
		}
		switch other := uids[u.UID]; {
		case u.Name == "root" && (u.UID != 0 || u.GID != 0):
			pd.fail(pd.Errorf(uf.Node, "user root must be uid 0, gid 0: the lab's /etc/passwd already holds root"))
			continue
		case other == "root" && u.Name != "root":
			pd.fail(pd.Errorf(uidNode, "uid 0 is root's, whom the lab's /etc/passwd already holds: name this user root, or pick another uid"))
			continue
		case other != "" && other != u.Name:
			pd.fail(pd.Errorf(uidNode, "uid %d already belongs to user %q: two names for one uid are one identity to the kernel", u.UID, other))
			continue
		}
		uids[u.UID] = u.Name
		pd.p.Users = append(pd.p.Users, u)
	}
	return nil
}

func (pd *policyDecoder) user(uf yamlnode.Field) (User, ast.Node, error) {
	u := User{Name: uf.Key}
	what := fmt.Sprintf("user %q", u.Name)
	fields, err := pd.Mapping(uf.Value, what, false)
	if err != nil {
		return u, nil, err
	}
	var uidNode ast.Node
	hasGID, bad := false, false
fieldLoop:
	for _, f := range fields {
		switch f.Key {
		case "uid":
			v, err := pd.Number(f.Value, "uid of "+what, 65535)
			if err != nil {
				pd.fail(err)
				bad = true
				continue
			}
			u.UID, uidNode = uint32(v), f.Value
		case "gid":
			v, err := pd.Number(f.Value, "gid of "+what, 65535)
			if err != nil {
				pd.fail(err)
				bad = true
				continue
			}
			u.GID, hasGID = uint32(v), true
		case "groups":
			items, err := pd.List(f.Value, "groups of "+what)
			if err != nil {
				pd.fail(err)
				bad = true
				continue
			}
			for _, item := range items {
				v, err := pd.Number(item, "group of "+what, 65535)
				if err == nil && slices.Contains(u.Groups, uint32(v)) {
					err = pd.Errorf(item, "gid %d is listed twice in the groups of %s", v, what)
				}
				if err != nil {
					pd.fail(err)
					bad = true
					continue fieldLoop
				}
				u.Groups = append(u.Groups, uint32(v))
			}
		default:
			pd.fail(pd.Errorf(f.Node, "unknown key %q in %s: want uid, gid or groups", f.Key, what))
			bad = true
		}
	}
	if bad {
		return u, nil, errReported
	}
	if uidNode == nil {
		return u, nil, pd.Errorf(uf.Node, "%s has no uid: want uid: N", what)
	}
	if !hasGID {
		u.GID = u.UID
	}
	return u, uidNode, nil
}

func (pd *policyDecoder) decodeGroups(f yamlnode.Field) error {
	fields, err := pd.Mapping(f.Value, "groups", true)
	if err != nil {
		return err
	}
	named := map[uint32]string{0: "root"}
	var nodes []ast.Node // of each group of pd.p.Groups
	for _, gf := range fields {
		if err := value.CheckAccount("group", gf.Key); err != nil {
			pd.fail(pd.Errorf(gf.Node, "%v", err))
			continue
		}
		v, err := pd.Number(gf.Value, fmt.Sprintf("gid of group %q", gf.Key), 65535)
		if err != nil {
			pd.fail(err)
			continue
		}
		g := Group{Name: gf.Key, GID: uint32(v)}
		switch other := named[g.GID]; {
		case g.Name == "root" && g.GID != 0:
			pd.fail(pd.Errorf(gf.Value, "group root must be gid 0: the lab's /etc/group already holds root"))
			continue
		case other != "" && other != g.Name:
			pd.fail(pd.Errorf(gf.Value, "gid %d is already named %q: want one name per gid", g.GID, other))
			continue
		}
		named[g.GID] = g.Name
		pd.p.Groups = append(pd.p.Groups, g)
		nodes = append(nodes, gf.Node)
	}
	// A user whose gid no group names gets a private group of its own name
	// (SPEC.md); a group of that name with another gid would be ambiguous.
	for i, g := range pd.p.Groups {
		for _, u := range pd.p.Users {
			if u.Name == g.Name && u.GID != g.GID && named[u.GID] == "" {
				pd.fail(pd.Errorf(nodes[i], "group %q (gid %d) clashes with the private group of user %q (gid %d): name gid %d in groups, or rename the group",
					g.Name, g.GID, u.Name, u.GID, u.GID))
			}
		}
	}
	return nil
}
