package netns

import (
	"fmt"
	"strings"

	"github.com/egresslab/egresslab/netns/internal/labca"
)

// etcFiles are the lab's own /etc files: passwd and group list root and the
// lab's accounts (with a user private group for each account whose gid no
// group names, as Debian does), resolv.conf points at the lab's DNS, and the
// trust store holds the lab's CA.
func (l *Lab) etcFiles() map[string]string {
	var passwd, group strings.Builder
	passwd.WriteString("root:x:0:0:root:/root:/bin/sh\n")
	group.WriteString("root:x:0:\n")
	named := map[uint32]bool{0: true}
	members := map[uint32][]string{}
	for _, a := range l.cfg.Accounts {
		for _, g := range a.Groups {
			members[g] = append(members[g], a.Name)
		}
	}
	for _, g := range l.cfg.Groups {
		named[g.GID] = true
	}
	for _, a := range l.cfg.Accounts {
		fmt.Fprintf(&passwd, "%s:x:%d:%d:%s:/nonexistent:/usr/sbin/nologin\n", a.Name, a.UID, a.GID, a.Name)
	}
	for _, g := range l.cfg.Groups {
		fmt.Fprintf(&group, "%s:x:%d:%s\n", g.Name, g.GID, strings.Join(members[g.GID], ","))
	}
	for _, a := range l.cfg.Accounts {
		if !named[a.GID] {
			named[a.GID] = true
			fmt.Fprintf(&group, "%s:x:%d:%s\n", a.Name, a.GID, strings.Join(members[a.GID], ","))
		}
	}
	return map[string]string{
		"passwd":      passwd.String(),
		"group":       group.String(),
		"hosts":       "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
		"resolv.conf": "# the lab's own DNS (egresslab)\nnameserver " + DNSServers()[0].String() + "\nnameserver " + DNSServers()[1].String() + "\noptions timeout:1 attempts:1\n",
		labca.EtcName: string(l.ca.PEM()),
	}
}
