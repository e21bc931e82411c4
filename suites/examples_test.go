package suites_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios"
	"github.com/egresslab/egresslab/suites/matchers"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// examplesDir holds example policies, each with its rulesets beside it and,
// in its leading comments, the verdicts the kernel must give:
//
//	# verdicts:
//	#   postfix   mx.example.test  ipv4  25/tcp  connected
//	#   *         relay.localhost  *     *       refused
//	# exit: 1
//
// A verdict line is user, host, family, port and outcome, `*` for any; the
// first line that selects a probe decides it and every probe must be
// selected. `# exit: 1` says the policy's own expectations fail (verify exits
// 1); without it they must hold (exit 0).
const examplesDir = "../testdata/examples"

var _ = Describe("the example policies in testdata/examples", Label("examples"), func() {
	files, listErr := filepath.Glob(filepath.Join(examplesDir, "*.yaml"))

	It("are there to run", func() {
		Expect(listErr).NotTo(HaveOccurred())
		Expect(files).NotTo(BeEmpty(), "no *.yaml in %s", examplesDir)
	})

	for _, file := range files {
		It(filepath.Base(file)+" gives the verdicts and the exit status its header states",
			Label(exampleBackend(file)), SpecTimeout(time.Minute), func(ctx SpecContext) {
				header, err := readExampleHeader(file)
				Expect(err).NotTo(HaveOccurred())
				p, err := scenarios.Load(file)
				Expect(err).NotTo(HaveOccurred())
				Expect(header.idle(p.Matrix())).To(BeEmpty(), "%s: verdict lines that decide no probe (a typo, or shadowed by an earlier line)", file)

				rep, err := scenarios.Run(ctx, p, scenarios.RunOptions{})
				Expect(err).NotTo(HaveOccurred())
				Expect(rep).To(matchers.HaveOutcomes(header.cells()...))
				Expect(rep.Pass()).To(Equal(header.exit == 0), func() string {
					var table strings.Builder
					_ = rep.WriteTable(&table, false)
					return fmt.Sprintf("%s states exit %d, but its expectations %s; reproduce with: egresslab verify -f %s\n\n%s",
						file, header.exit, map[bool]string{true: "hold", false: "fail"}[rep.Pass()],
						filepath.Join("testdata", "examples", filepath.Base(file)), table.String())
				})
			})
	}
})

// exampleBackend labels an example with its iptables flavour. A policy that
// does not load gets the default; its spec then fails on Load, loudly.
func exampleBackend(file string) string {
	if p, err := scenarios.Load(file); err == nil && p.Lab.Backend != "" {
		return p.Lab.Backend
	}
	return "nft"
}

// exampleHeader is what an example's leading comments state.
type exampleHeader struct {
	verdicts []exampleVerdict
	exit     int
}

// exampleVerdict is one line of the verdict block; empty fields match anything.
type exampleVerdict struct {
	line                     int
	user, host, family, port string
	outcome                  probe.Outcome
}

func (v exampleVerdict) selects(p scenarios.Probe) bool {
	return (v.user == "" || v.user == p.User.Name) &&
		(v.host == "" || v.host == p.Host) &&
		(v.family == "" || v.family == p.Family()) &&
		(v.port == "" || v.port == p.Port.String())
}

func (h exampleHeader) cells() []matchers.Cell {
	cells := make([]matchers.Cell, len(h.verdicts))
	for i, v := range h.verdicts {
		cells[i] = matchers.Cell{User: v.user, Host: v.host, Family: v.family, Port: v.port, Outcome: v.outcome}
	}
	return cells
}

// idle lists the verdict lines that are first to select none of the probes:
// dead lines hide typos, so a file may not have any.
func (h exampleHeader) idle(probes []scenarios.Probe) []string {
	used := make([]bool, len(h.verdicts))
	for _, p := range probes {
		for i, v := range h.verdicts {
			if v.selects(p) {
				used[i] = true
				break
			}
		}
	}
	var idle []string
	for i, v := range h.verdicts {
		if !used[i] {
			idle = append(idle, fmt.Sprintf("line %d: %s %s %s %s %s", v.line, star(v.user), star(v.host), star(v.family), star(v.port), v.outcome))
		}
	}
	return idle
}

func star(s string) string {
	if s == "" {
		return "*"
	}
	return s
}

var (
	verdictEntry = regexp.MustCompile(`^#\s{2,}\S`)
	exitLine     = regexp.MustCompile(`^#\s*exit:\s*(\S+)\s*$`)
	portField    = regexp.MustCompile(`^[0-9]+/(tcp|udp)$`)
)

// readExampleHeader parses the comments at the top of an example, up to its
// first line of YAML. A file without a verdict block is an error.
func readExampleHeader(file string) (exampleHeader, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return exampleHeader{}, err
	}
	var h exampleHeader
	inBlock, sawBlock, sawExit := false, false, false
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		text := strings.TrimRight(sc.Text(), " \t")
		if !strings.HasPrefix(text, "#") {
			if strings.TrimSpace(text) == "" {
				inBlock = false
				continue
			}
			break // the header ends where the YAML starts
		}
		switch {
		case inBlock && verdictEntry.MatchString(text):
			v, err := parseVerdict(strings.Fields(strings.TrimPrefix(text, "#")))
			if err != nil {
				return h, fmt.Errorf("%s:%d: %w", file, n, err)
			}
			v.line = n
			h.verdicts = append(h.verdicts, v)
			continue
		case strings.TrimSpace(strings.TrimPrefix(text, "#")) == "verdicts:":
			if sawBlock {
				return h, fmt.Errorf("%s:%d: a second verdict block", file, n)
			}
			inBlock, sawBlock = true, true
			continue
		}
		inBlock = false
		if m := exitLine.FindStringSubmatch(text); m != nil {
			if sawExit {
				return h, fmt.Errorf("%s:%d: a second exit line", file, n)
			}
			code, err := strconv.Atoi(m[1])
			if err != nil || code != 0 && code != 1 {
				return h, fmt.Errorf("%s:%d: exit %q: an example states exit 0 or 1", file, n, m[1])
			}
			h.exit, sawExit = code, true
		}
	}
	if err := sc.Err(); err != nil {
		return h, err
	}
	if len(h.verdicts) == 0 {
		return h, errors.New(file + ": no verdicts in its header: state them at the top, as \"# verdicts:\" and then one \"#   user host family port outcome\" line per cell (\"*\" for any)")
	}
	return h, nil
}

func parseVerdict(fields []string) (exampleVerdict, error) {
	if len(fields) != 5 {
		return exampleVerdict{}, fmt.Errorf("verdict %q: want user host family port outcome, \"*\" for any", strings.Join(fields, " "))
	}
	wild := func(s string) string {
		if s == "*" {
			return ""
		}
		return s
	}
	v := exampleVerdict{user: wild(fields[0]), host: wild(fields[1]), family: wild(fields[2]), port: wild(fields[3])}
	if v.family != "" && v.family != "ipv4" && v.family != "ipv6" {
		return v, fmt.Errorf("verdict family %q: want ipv4, ipv6 or *", fields[2])
	}
	if v.port != "" && !strings.Contains(v.port, "/") {
		v.port += "/tcp" // a bare number is tcp, as in a policy
	}
	if v.port != "" && !portField.MatchString(v.port) {
		return v, fmt.Errorf("verdict port %q: want N/tcp, N/udp, N or *", fields[3])
	}
	if err := v.outcome.UnmarshalText([]byte(fields[4])); err != nil {
		return v, fmt.Errorf("verdict outcome: %w", err)
	}
	return v, nil
}
