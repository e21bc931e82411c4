package trace

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/egresslab/egresslab/internal/nftlist"
	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/egresslab/egresslab/netns"
)

// ruleIndex places each nf_tables rule, by "family table chain handle": its
// position in its chain, and for a table iptables-nft manages, the line
// iptables-save prints for it.
type ruleIndex map[string]indexedRule

type indexedRule struct {
	position int
	text     string // as nft prints it, or iptables-save's line
}

// ruleListing is the text of every rule of the candidate's tables: nft's
// for each table, iptables-save's lines for the tables iptables-nft manages.
// It is listed in the background, by processes of the lab's, while the lab
// installs its own tables and probes; the trace waits for it only when it
// names rules.
type ruleListing struct {
	done  chan struct{}
	texts map[string]string              // nftlist.Key -> nft's text
	saves map[string]map[string][]string // family -> "table chain" -> -A lines in order
	err   error
}

// listRules starts listing the candidate's rules. The iptables-nft saves
// first, for the families that have tables; then nft, for each table no save
// printed (one nft run lists one table: nft 1.0.6 aborts whenever its cache
// holds the sentinel's raw-payload sets with elements in them, even for `nft
// list tables`). The tables are named from netlink.
func listRules(ctx context.Context, l *netns.Lab) *ruleListing {
	rl := &ruleListing{done: make(chan struct{}), texts: map[string]string{}, saves: map[string]map[string][]string{}}
	go func() {
		defer close(rl.done)
		rl.err = rl.list(ctx, l)
	}()
	return rl
}

func (rl *ruleListing) list(ctx context.Context, l *netns.Lab) error {
	tables, err := candidateTables(l)
	if err != nil {
		return err
	}
	saved := map[string]bool{} // "family table" that a save printed
	var wg sync.WaitGroup
	var mu sync.Mutex
	for fam, tool := range map[string]string{"ip": "iptables-nft-save", "ip6": "ip6tables-nft-save"} {
		if !slices.ContainsFunc(tables, func(t string) bool { return strings.HasPrefix(t, fam+" ") }) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A save that fails, or skips a table it cannot read, leaves
			// that table to nft.
			out, _ := l.RunListing(ctx, tool)
			lines := saveLines(string(out))
			mu.Lock()
			defer mu.Unlock()
			rl.saves[fam] = lines
			for _, ln := range strings.Split(string(out), "\n") {
				if name, ok := strings.CutPrefix(ln, "*"); ok {
					saved[fam+" "+name] = true
				}
			}
		}()
	}
	wg.Wait()
	errs := make([]error, len(tables))
	for i, t := range tables {
		if saved[t] {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := l.RunListing(ctx, append([]string{"nft", "-a", "-s", "list", "table"}, strings.Fields(t)...)...)
			if err != nil {
				errs[i] = fmt.Errorf("list the rules in lab %s: nft: %v: %s", l.Name(), err, lastLine(out))
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for k, v := range nftlist.RuleTexts(string(out)) {
				rl.texts[k] = v
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// rulePositions places every rule of the lab's tables in its chain, from one
// netlink dump (which gives each chain's rules in order): Key -> 1-based.
func rulePositions(l *netns.Lab) (map[string]int, error) {
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: l.NetNSFD()})
	if err != nil {
		return nil, fmt.Errorf("list the rules in lab %s: %w", l.Name(), err)
	}
	defer c.Close()
	positions, counts := map[string]int{}, map[string]int{}
	err = dumpRules(c, func(data []byte) {
		if len(data) < 4 {
			return
		}
		ad, err := netlink.NewAttributeDecoder(data[4:])
		if err != nil {
			return
		}
		ad.ByteOrder = binary.BigEndian
		var table, chain string
		handle := -1
		for ad.Next() {
			switch ad.Type() {
			case unix.NFTA_RULE_TABLE:
				table = ad.String()
			case unix.NFTA_RULE_CHAIN:
				chain = ad.String()
			case unix.NFTA_RULE_HANDLE:
				handle = int(ad.Uint64())
			}
		}
		if table == "" || chain == "" || handle < 0 {
			return
		}
		fam := tableFamily(data[0])
		where := fam + " " + table + " " + chain
		counts[where]++
		positions[nftlist.Key(fam, table, chain, handle)] = counts[where]
	})
	if err != nil {
		return nil, fmt.Errorf("list the rules in lab %s: %w", l.Name(), err)
	}
	return positions, nil
}

// dumpBuffer is the receive buffer of a rule dump. The kernel fills each
// part of a dump up to the largest receive the socket has made (at most
// 32 KiB), and every part walks its chain from the first rule to where the
// last one stopped: with netlink.Conn's one-page receives, a chain of
// 20,000 rules took some 1,500 parts and seconds of the kernel's time.
const dumpBuffer = 64 << 10

// dumpRules dumps every nf_tables rule on c, handing each message's payload
// to fn.
func dumpRules(c *netlink.Conn, fn func(data []byte)) error {
	req := netlink.Message{Header: netlink.Header{
		Type:  netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETRULE),
		Flags: netlink.Request | netlink.Dump,
	}, Data: []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, 0}}
	sent, err := c.Send(req)
	if err != nil {
		return err
	}
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	buf := make([]byte, dumpBuffer)
	for {
		var n int
		var rerr error
		if err := raw.Read(func(fd uintptr) bool {
			n, _, rerr = unix.Recvfrom(int(fd), buf, unix.MSG_DONTWAIT)
			return !errors.Is(rerr, unix.EAGAIN)
		}); err != nil {
			return err
		}
		if rerr != nil {
			return rerr
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if m.Header.Seq != sent.Header.Sequence {
				continue
			}
			if m.Header.Flags&unix.NLM_F_DUMP_INTR != 0 {
				return errors.New("the rules changed while they were listed")
			}
			if m.Header.Type == unix.NLMSG_DONE || m.Header.Type == unix.NLMSG_ERROR {
				// both carry the dump's error number, 0 when it is whole
				if len(m.Data) >= 4 {
					if errno := int32(binary.NativeEndian.Uint32(m.Data)); errno != 0 {
						return unix.Errno(-errno)
					}
				}
				return nil
			}
			fn(m.Data)
		}
	}
}

// ruleIndex joins the positions and the listing.
func (rl *ruleListing) index(positions map[string]int) ruleIndex {
	idx := ruleIndex{}
	for key, pos := range positions {
		ir := indexedRule{position: pos, text: rl.texts[key]}
		f := strings.SplitN(key, " ", 4) // family table chain handle
		if lines := rl.saves[f[0]][f[1]+" "+f[2]]; pos <= len(lines) {
			ir.text = lines[pos-1]
		}
		idx[key] = ir
	}
	return idx
}

// candidateTables names the lab's nf_tables tables but its own, each as
// "family name", asking the kernel over netlink.
func candidateTables(l *netns.Lab) ([]string, error) {
	c, err := nftables.New(nftables.WithNetNSFd(l.NetNSFD()))
	if err != nil {
		return nil, fmt.Errorf("list the tables in lab %s: %w", l.Name(), err)
	}
	defer c.CloseLasting()
	tables, err := c.ListTables()
	if err != nil {
		return nil, fmt.Errorf("list the tables in lab %s: %w", l.Name(), err)
	}
	var out []string
	for _, t := range tables {
		fam := tableFamily(byte(t.Family))
		if strings.HasPrefix(t.Name, "egresslab_") || (fam != "ip" && fam != "ip6" && fam != "inet") {
			continue
		}
		out = append(out, fam+" "+t.Name)
	}
	return out, nil
}

// saveLines reads iptables-save output: "table chain" -> its -A lines in order.
func saveLines(out string) map[string][]string {
	lines := map[string][]string{}
	table := ""
	for _, l := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(l, "*"):
			table = l[1:]
		case strings.HasPrefix(l, "-A "):
			if f := strings.Fields(l); len(f) > 1 {
				lines[table+" "+f[1]] = append(lines[table+" "+f[1]], l)
			}
		}
	}
	return lines
}

// lastLine is the last non-empty line of a tool's output: the error, not
// the listing before it.
func lastLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
