// Package hostsnap copies what a running host's firewall depends on (its
// loaded rulesets in every flavour and family, its users and groups, its
// interface names) so that verify --from-host can load the copy into a lab.
// It only reads: every tool it runs is a listing (*-save, nft list, ip
// link), and the host is never written.
package hostsnap

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Snapshot is the host's firewall state, as the tools listed it.
type Snapshot struct {
	// Saves holds each iptables flavour's listing by tool name
	// (iptables-nft-save, ip6tables-nft-save, iptables-legacy-save,
	// ip6tables-legacy-save); an empty listing is left out.
	Saves map[string][]byte
	// NFT is `nft list table` of every native nft table: the tables that
	// iptables-nft manages are in Saves instead.
	NFT        []byte
	Passwd     []byte
	Group      []byte
	Interfaces []string // every link's name
	Uplink     string   // the link of the default route ("" when there is none)
}

// Runner runs a listing tool and returns its stdout. Host runs it here; a
// test runs it inside a namespace of its own.
type Runner func(ctx context.Context, argv ...string) ([]byte, error)

// Host runs the tools in this process's own namespaces.
func Host(ctx context.Context, argv ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// SaveTools are the iptables listings a snapshot takes, in load order.
var SaveTools = []string{"iptables-legacy-save", "ip6tables-legacy-save", "iptables-nft-save", "ip6tables-nft-save"}

// Take lists the rulesets with run and reads passwd and group under etc
// ("/etc" on the host).
func Take(ctx context.Context, run Runner, etc string) (*Snapshot, error) {
	s := &Snapshot{Saves: map[string][]byte{}}
	managed := map[string]bool{} // "ip filter": tables iptables-nft owns
	for _, tool := range SaveTools {
		out, err := run(ctx, tool)
		if err != nil {
			if errors.Is(err, exec.ErrNotFound) {
				continue // that flavour is not installed: nothing of it can be loaded
			}
			return nil, fmt.Errorf("snapshot the host's rules: %w", err)
		}
		tables := savedTables(out)
		if len(tables) == 0 {
			continue
		}
		s.Saves[tool] = out
		if strings.Contains(tool, "-nft-") {
			family := map[bool]string{true: "ip6", false: "ip"}[strings.HasPrefix(tool, "ip6")]
			for _, t := range tables {
				managed[family+" "+t] = true
			}
		}
	}
	if err := s.listNFT(ctx, run, managed); err != nil {
		return nil, err
	}
	var err error
	if s.Passwd, err = os.ReadFile(filepath.Join(etc, "passwd")); err != nil {
		return nil, fmt.Errorf("snapshot the host's users: %w", err)
	}
	if s.Group, err = os.ReadFile(filepath.Join(etc, "group")); err != nil {
		return nil, fmt.Errorf("snapshot the host's groups: %w", err)
	}
	return s, s.links(ctx, run)
}

// savedTables returns the tables (*filter, *nat ...) that have a rule or a
// policy other than ACCEPT: an untouched table is nothing to copy.
func savedTables(out []byte) []string {
	var tables []string
	table, used := "", false
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64*1024), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "*"):
			table, used = line[1:], false
		case strings.HasPrefix(line, "-A "), strings.HasPrefix(line, ":") && !strings.Contains(line, " ACCEPT ") && !strings.Contains(line, " - "):
			used = true
		case line == "COMMIT" && used:
			tables = append(tables, table)
		}
	}
	return tables
}

func (s *Snapshot) listNFT(ctx context.Context, run Runner, managed map[string]bool) error {
	out, err := run(ctx, "nft", "list", "tables")
	if errors.Is(err, exec.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("snapshot the host's nft tables: %w", err)
	}
	var all bytes.Buffer
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "table" || managed[f[1]+" "+f[2]] {
			continue
		}
		table, err := run(ctx, "nft", "list", "table", f[1], f[2])
		if err != nil {
			return fmt.Errorf("snapshot the host's nft table %s %s: %w", f[1], f[2], err)
		}
		all.Write(table)
	}
	s.NFT = all.Bytes()
	return nil
}

func (s *Snapshot) links(ctx context.Context, run Runner) error {
	out, err := run(ctx, "ip", "-j", "link", "show")
	if err != nil {
		return fmt.Errorf("snapshot the host's interfaces: %w", err)
	}
	var links []struct {
		Name string `json:"ifname"`
	}
	if err := json.Unmarshal(out, &links); err != nil {
		return fmt.Errorf("snapshot the host's interfaces: ip -j link: %w", err)
	}
	for _, l := range links {
		s.Interfaces = append(s.Interfaces, l.Name)
	}
	for _, family := range []string{"-4", "-6"} {
		out, err := run(ctx, "ip", "-j", family, "route", "show", "default")
		if err != nil {
			return fmt.Errorf("snapshot the host's default route: %w", err)
		}
		var routes []struct {
			Dev string `json:"dev"`
		}
		if json.Unmarshal(out, &routes) == nil && len(routes) > 0 && routes[0].Dev != "" {
			s.Uplink = routes[0].Dev
			return nil
		}
	}
	return nil
}
