package netns

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// RulesetError is a ruleset that its tool rejected: bad input, not a broken lab.
type RulesetError struct {
	File string // the ruleset file as the policy names it
	Line int    // 0 when the tool did not say
	Tool string
	Msg  string // the tool's own message
}

func (e *RulesetError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Tool, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", e.File, e.Tool, e.Msg)
}

// labInputDir holds ruleset files inside the lab's private /run.
const labInputDir = "/run/egresslab/in"

// stage writes data where tools inside the lab can read it, through the
// holder's view of the file system, and returns the path inside the lab.
func (l *Lab) stage(name string, data []byte) (string, error) {
	inLab := filepath.Join(labInputDir, filepath.Base(name))
	onHost := filepath.Join(fmt.Sprintf("/proc/%d/root", l.pid), inLab)
	err := asLabRoot(func() error {
		if err := os.MkdirAll(filepath.Dir(onHost), 0o755); err != nil {
			return err
		}
		return os.WriteFile(onHost, data, 0o644)
	})
	if err != nil {
		return "", fmt.Errorf("stage %s in lab %s: %w", name, l.cfg.Name, err)
	}
	return inLab, nil
}

// iptablesTool names the restore tool for a family and the lab's backend.
func (l *Lab) iptablesTool(ipv6 bool, restore bool) string {
	name := "iptables"
	if ipv6 {
		name = "ip6tables"
	}
	name += "-" + l.cfg.Backend
	if restore {
		name += "-restore"
	}
	return name
}

var (
	iptablesLine = regexp.MustCompile(`(?i)line:? (\d+)`)
	nftLine      = regexp.MustCompile(`(?m)^[^:\n]*:(\d+):[\d-]+: `)
)

// LoadIPTables loads an iptables-restore (or, with ipv6, ip6tables-restore)
// file of the lab's backend flavour. name is the file as the policy names it.
func (l *Lab) LoadIPTables(ctx context.Context, ipv6 bool, name string, data []byte) error {
	tool, toolName := l.iptablesTool(ipv6, true), "iptables-restore"
	if ipv6 {
		toolName = "ip6tables-restore"
	}
	cmd := l.Command(ctx, tool)
	cmd.Stdin = bytes.NewReader(data)
	out, err := combinedOutput(cmd)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if missing := missingTool(out); missing {
		return &UnavailableError{What: tool, Fix: "install iptables (apt-get install iptables)"}
	}
	msg := cleanToolOutput(out, "", name)
	line := 0
	if m := iptablesLine.FindSubmatch(out); m != nil {
		line, _ = strconv.Atoi(string(m[1]))
	}
	return &RulesetError{File: name, Line: line, Tool: toolName, Msg: msg}
}

// LoadNFT loads a file with `nft -f`.
func (l *Lab) LoadNFT(ctx context.Context, name string, data []byte) error {
	path, err := l.stage(name, data)
	if err != nil {
		return err
	}
	out, err := combinedOutput(l.Command(ctx, "nft", "-f", path))
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if missingTool(out) {
		return &UnavailableError{What: "nft", Fix: "install nftables (apt-get install nftables)"}
	}
	line := 0
	if m := nftLine.FindSubmatch(out); m != nil {
		line, _ = strconv.Atoi(string(m[1]))
	}
	return &RulesetError{File: name, Line: line, Tool: "nft", Msg: cleanToolOutput(out, path, name)}
}

// ScriptTimeout bounds a candidate script's run.
const ScriptTimeout = 30 * time.Second

// RunScript runs a shell script inside the lab as the lab's root, with
// $IPTABLES and $IP6TABLES naming the tools of the lab's backend flavour.
func (l *Lab) RunScript(ctx context.Context, name string, data []byte) error {
	path, err := l.stage(name, data)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, ScriptTimeout)
	defer cancel()
	cmd := l.Command(ctx, "sh", path)
	cmd.Env = append(cmd.Env, "IPTABLES="+l.iptablesTool(false, false), "IP6TABLES="+l.iptablesTool(true, false),
		"IPTABLES_RESTORE="+l.iptablesTool(false, true), "IP6TABLES_RESTORE="+l.iptablesTool(true, true))
	out, err := combinedOutput(cmd)
	if err == nil {
		return nil
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return &RulesetError{File: name, Tool: "sh", Msg: fmt.Sprintf("still running after %s", ScriptTimeout)}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	line := 0
	if m := regexp.MustCompile(regexp.QuoteMeta(path) + `: (?:line )?(\d+): `).FindSubmatch(out); m != nil {
		line, _ = strconv.Atoi(string(m[1]))
	}
	msg := cleanToolOutput(out, path, name)
	if msg == "" {
		msg = err.Error()
	}
	return &RulesetError{File: name, Line: line, Tool: "sh", Msg: msg}
}

func missingTool(out []byte) bool {
	return bytes.Contains(out, []byte("nsenter: failed to execute"))
}

// cleanToolOutput makes a tool's message name the user's file, not the copy
// staged inside the lab, and folds it onto as few lines as reads well.
func cleanToolOutput(out []byte, stagedPath, name string) string {
	s := string(bytes.TrimSpace(out))
	if stagedPath != "" {
		s = strings.ReplaceAll(s, stagedPath, name)
	}
	var lines []string
	for _, ln := range strings.Split(s, "\n") {
		if ln = strings.TrimRight(ln, " \t"); ln != "" {
			lines = append(lines, ln)
		}
	}
	return strings.Join(lines, "\n")
}
