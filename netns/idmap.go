package netns

import (
	"fmt"
	"slices"
	"strings"
	"syscall"
)

// idMap is how a lab's ids map onto egresslab's own user namespace. As real
// root, lab id N is IDBase+N for N in 0-65535. Rootless (rootless.go),
// egresslab itself runs as root of a user namespace of its own whose ids
// 0..count-1 are the caller's id and its subordinate range: lab id N is
// that namespace's id N, as far as the range reaches.
type idMap struct {
	base uint32 // lab id 0, in egresslab's own user namespace
	uids uint32 // lab uids 0 to uids-1 are mapped
	gids uint32 // lab gids 0 to gids-1 are mapped
}

// LabIDs is how many ids a lab maps at most: 0-65535, which the policy and
// the catalogue use.
const LabIDs = 65536

// labIDs is this process's map: IDBase's range, unless Init found this
// process started rootless.
var labIDs = idMap{base: IDBase, uids: LabIDs, gids: LabIDs}

func (m idMap) uidMappings() []syscall.SysProcIDMap { return m.mappings(m.uids) }

func (m idMap) gidMappings() []syscall.SysProcIDMap { return m.mappings(m.gids) }

// mappings maps lab ids 0 to n-1 onto base+0 to base+n-1. Rootless, in two
// extents as egresslab's own namespace has them (the caller's id, then the
// subordinate range): the kernel takes a range of a child's map only when it
// lies within one range of its parent's (map_id_range_down), so one extent
// of 65,536 would be refused with EPERM.
func (m idMap) mappings(n uint32) []syscall.SysProcIDMap {
	if m.base != 0 || n == 1 {
		return []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(m.base), Size: int(n)}}
	}
	return []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}, {ContainerID: 1, HostID: 1, Size: int(n - 1)}}
}

// MappedIDs is how many uids and gids a lab maps here: lab ids 0 to uids-1
// and 0 to gids-1. As root, 65,536 each; rootless, one more than the
// caller's subordinate ranges (at most 65,536).
func MappedIDs() (uids, gids uint32) { return labIDs.uids, labIDs.gids }

// IDRangeError is a lab whose accounts use ids the lab's user namespace
// does not map (rootless, with subordinate ranges smaller than the ids a
// policy uses): nothing ran.
type IDRangeError struct {
	UIDs, GIDs []string // "1001 (user bob)", "5000 (group www)"
	MappedUIDs uint32
	MappedGIDs uint32
	User       string // whose /etc/subuid and /etc/subgid ranges these are
}

func (e *IDRangeError) Error() string {
	var uses []string
	if len(e.UIDs) > 0 {
		uses = append(uses, "uid "+strings.Join(e.UIDs, ", "))
	}
	if len(e.GIDs) > 0 {
		uses = append(uses, "gid "+strings.Join(e.GIDs, ", "))
	}
	return fmt.Sprintf("running rootless, the lab maps uids 0-%d and gids 0-%d (user %s's own id and its ranges in /etc/subuid and /etc/subgid), and the policy uses %s: "+
		"give %s a range of %d subordinate uids and gids (what every policy and the catalogue fit in): `sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %s` (pick a range no other line of /etc/subuid and /etc/subgid uses), or run egresslab as root",
		e.MappedUIDs-1, e.MappedGIDs-1, e.User, strings.Join(uses, " and "), e.User, LabIDs, e.User)
}

// checkIDsFit refuses a lab whose accounts or groups use ids the map does
// not reach, before anything starts.
func checkIDsFit(cfg Config) error {
	var uids, gids []string
	addGID := func(gid uint32, what string) {
		s := fmt.Sprintf("%d (%s)", gid, what)
		if gid >= labIDs.gids && !slices.Contains(gids, s) {
			gids = append(gids, s)
		}
	}
	for _, a := range cfg.Accounts {
		if a.UID >= labIDs.uids {
			uids = append(uids, fmt.Sprintf("%d (user %s)", a.UID, a.Name))
		}
		addGID(a.GID, "user "+a.Name+"'s group")
		for _, g := range a.Groups {
			addGID(g, "a group of user "+a.Name)
		}
	}
	for _, g := range cfg.Groups {
		addGID(g.GID, "group "+g.Name)
	}
	if len(uids) == 0 && len(gids) == 0 {
		return nil
	}
	return &IDRangeError{UIDs: uids, GIDs: gids, MappedUIDs: labIDs.uids, MappedGIDs: labIDs.gids, User: rootlessUser}
}
