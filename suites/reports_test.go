package suites_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/egresslab/egresslab/scenarios"
	"github.com/egresslab/egresslab/suites/matchers"
	"github.com/onsi/gomega"
)

// junitRead is a JUnit file as junitparser (Debian's python3-junitparser)
// reads it: a real consumer of the format, as CI report tools are. An empty
// or cut-short file is an error there, as it is in GitLab.
type junitRead struct {
	Tests, Failures, Errors int
	Cases                   []struct {
		Name, Classname string
		Results         []struct{ Kind, Message, Type, Text string }
	}
}

func readJUnit(path string) junitRead {
	GinkgoHelper()
	py := "/usr/bin/python3" // Debian's, where python3-junitparser installs
	out, err := exec.Command(py, "../testdata/junit/read.py", path).CombinedOutput()
	if err != nil && bytes.Contains(out, []byte("No module named 'junitparser'")) {
		Fail("the JUnit specs need junitparser: apt-get install python3-junitparser (make deps does)")
	}
	Expect(err).NotTo(HaveOccurred(), "junitparser could not read %s:\n%s", path, out)
	var r junitRead
	Expect(json.Unmarshal(out, &r)).To(Succeed())
	return r
}

// notRun checks the report of a run that could not finish: one failing
// case whose message says the kind and whose text says why.
func expectNotRun(path, kind, why string) {
	GinkgoHelper()
	r := readJUnit(path)
	Expect([]int{r.Tests, r.Failures, r.Errors}).To(Equal([]int{1, 1, 0}))
	Expect(r.Cases).To(HaveLen(1))
	Expect(r.Cases[0].Results).To(HaveLen(1))
	res := r.Cases[0].Results[0]
	Expect([]string{res.Kind, res.Message, res.Type}).To(Equal([]string{"Failure", kind, "not-run"}))
	Expect(res.Text).To(ContainSubstring(why))
	// Written by rename: nothing of the temporary file is left beside it.
	Expect(filepath.Glob(filepath.Join(filepath.Dir(path), ".*.tmp"))).To(BeEmpty())
}

var _ = Describe("reports keep their promise on every exit", Label("reports"), func() {
	var dir string
	BeforeEach(func() { dir = GinkgoT().TempDir() })

	It("exit 0: one case per probe, read by junitparser", func(ctx SpecContext) {
		junit := filepath.Join(dir, "j.xml")
		r := egresslab(ctx, ".", "verify", "-f", "../testdata/examples/web-nft.yaml", "--junit", junit)
		Expect(r.status).To(Equal(0), r.stderr)
		doc := readJUnit(junit)
		Expect(doc.Tests).To(BeNumerically(">", 0))
		Expect([]int{doc.Failures, doc.Errors}).To(Equal([]int{0, 0}))
	})

	It("exit 1: each case named after its user and probe, distinct, the failure's kind its type", func(ctx SpecContext) {
		junit := filepath.Join(dir, "j.xml")
		r := egresslab(ctx, ".", "verify", "-f", "../testdata/golden/mail.yaml", "--junit", junit)
		Expect(r.status).To(Equal(1), r.stderr)
		doc := readJUnit(junit)
		Expect([]int{doc.Tests, doc.Failures, doc.Errors}).To(Equal([]int{12, 2, 0}))
		names := map[string]bool{}
		for _, c := range doc.Cases {
			names[c.Name] = true
		}
		Expect(names).To(HaveLen(12), "12 probes, 12 names: two users probe the same destinations")
		Expect(names).To(HaveKey("www-data -> mx.example.test [2001:db8::25]:25/tcp (ipv6)"))
		Expect(names).To(HaveKey("postfix -> mx.example.test [2001:db8::25]:25/tcp (ipv6)"))
		var bypass []string
		for _, c := range doc.Cases {
			for _, res := range c.Results {
				Expect(res.Type).To(Equal("bypass"))
				bypass = append(bypass, c.Name)
				Expect(res.Text).To(ContainSubstring("written at ../testdata/golden/rules.v6:5"))
			}
		}
		Expect(bypass).To(ConsistOf("www-data -> mx.example.test [2001:db8::25]:25/tcp (ipv6)", "www-data -> relay.localhost [::1]:25/tcp (ipv6)"))
	})

	It("exit 2: a policy error is one failing case saying why, and --format json is a document with the error", func(ctx SpecContext) {
		junit := filepath.Join(dir, "j.xml")
		r := egresslab(ctx, ".", "verify", "-f", "../testdata/bad/expect-unknown-key.yaml", "--junit", junit, "--format", "json")
		Expect(r.status).To(Equal(2), r.stderr)
		expectNotRun(junit, "bad input", `unknown key "hots"`)
		expectJSONError(r.stdout, "expect-unknown-key", 2, `../testdata/bad/expect-unknown-key.yaml:10:13: unknown key "hots"`)
	})

	It("exit 3: a failed pre-run check (no capabilities) still writes the JUnit file and the JSON document", func(ctx SpecContext) {
		junit := filepath.Join(dir, "j.xml")
		cmd := exec.CommandContext(ctx, "setpriv", "--bounding-set", "-sys_admin,-net_admin", "--inh-caps", "-sys_admin,-net_admin",
			egresslabBinary(), "verify", "-f", "../testdata/golden/mail.yaml", "--junit", junit, "--format", "json")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		Expect(errors.As(err, &ee)).To(BeTrue(), "%v: %s", err, stderr.String())
		Expect(ee.ExitCode()).To(Equal(3), stderr.String())
		expectNotRun(junit, "the lab could not run", "running as root without CAP_SYS_ADMIN, CAP_NET_ADMIN")
		expectJSONError(stdout.String(), "mail", 3, "running as root without CAP_SYS_ADMIN, CAP_NET_ADMIN")
	})

	It("exit 3: a missing tool still writes the JUnit file", func(ctx SpecContext) {
		junit := filepath.Join(dir, "j.xml")
		script := "mount --bind /dev/null \"$(command -v nft)\" && exec \"$0\" verify -f ../testdata/golden/mail.yaml --junit \"$1\""
		out, err := exec.CommandContext(ctx, "unshare", "--mount", "sh", "-c", script, egresslabBinary(), junit).CombinedOutput()
		var ee *exec.ExitError
		Expect(errors.As(err, &ee)).To(BeTrue(), "%v: %s", err, out)
		Expect(ee.ExitCode()).To(Equal(3), "%s", out)
		expectNotRun(junit, "the lab could not run", "the lab needs nft: install nftables")
	})

	It("a JUnit path that cannot be written is bad input, before any lab", func(ctx SpecContext) {
		r := egresslab(ctx, ".", "verify", "-f", "../testdata/golden/mail.yaml", "--junit", filepath.Join(dir, "no", "such", "dir", "j.xml"))
		Expect(r.status).To(Equal(2))
		Expect(r.stderr).To(HavePrefix("egresslab: --junit " + filepath.Join(dir, "no", "such", "dir", "j.xml") + ": "))
	})
})

var _ = Describe("signals end a run with its report", Label("reports", "safety"), Serial, func() {
	// SIGQUIT included: Go's own handling would dump every goroutine and
	// exit 2 (bad input), which is neither what happened nor what CI wants.
	DescribeTable("mid-run: the message, 128+signal, the lab gone, a JUnit file junitparser reads and JSON saying interrupted",
		func(ctx SpecContext, sig syscall.Signal, status int, name string) {
			junit := filepath.Join(GinkgoT().TempDir(), "j.xml")
			cmd := startVerify(append(longRun, "--junit", junit, "--format", "json")...)
			waitForLab(ctx, cmd)
			Expect(cmd.Process.Signal(sig)).To(Succeed())
			err := cmd.Wait()
			var ee *exec.ExitError
			Expect(errors.As(err, &ee)).To(BeTrue(), "%v", err)
			Expect(ee.ExitCode()).To(Equal(status), "stderr %q", cmd.Stderr)
			Expect(withoutWarnings(fmt.Sprint(cmd.Stderr))).To(Equal("egresslab: interrupted by " + name + "\n"))
			expectNotRun(junit, "interrupted", "interrupted by "+name)
			expectJSONError(fmt.Sprint(cmd.Stdout), "hostile", status, "interrupted by "+name)
			Eventually(processesInGroups).WithArguments(map[int]bool{cmd.Process.Pid: true}).WithContext(ctx).
				Should(BeEmpty(), "the lab's processes")
		},
		Entry("SIGHUP", syscall.SIGHUP, 129, "SIGHUP"),
		Entry("SIGINT", syscall.SIGINT, 130, "SIGINT"),
		Entry("SIGQUIT, without a goroutine dump", syscall.SIGQUIT, 131, "SIGQUIT"),
		Entry("SIGTERM", syscall.SIGTERM, 143, "SIGTERM"),
	)
})

// expectJSONError checks the document of a run that ended without a report.
func expectJSONError(stdout, policy string, status int, message string) {
	GinkgoHelper()
	var doc struct {
		Policy string
		Pass   *bool
		Probes []json.RawMessage
		Error  struct {
			Status  int
			Message string
		}
	}
	Expect(json.Unmarshal([]byte(stdout), &doc)).To(Succeed(), "stdout: %q", stdout)
	Expect(doc.Policy).To(Equal(policy))
	Expect(doc.Pass).To(HaveValue(BeFalse()))
	Expect(doc.Probes).NotTo(BeNil())
	Expect(doc.Probes).To(BeEmpty())
	Expect(doc.Error.Status).To(Equal(status))
	Expect(doc.Error.Message).To(ContainSubstring(message))
}

var _ = Describe("--format github in a real run", Label("reports"), func() {
	It("annotates the ruleset line that decided each failure, and appends the job summary", func(ctx SpecContext) {
		summary := filepath.Join(GinkgoT().TempDir(), "summary.md")
		Expect(os.WriteFile(summary, []byte("# an earlier step's summary\n"), 0o644)).To(Succeed())
		cmd := exec.CommandContext(ctx, egresslabBinary(), "verify", "-f", "../testdata/golden/mail.yaml", "--format", "github")
		cmd.Env = append(os.Environ(), "GITHUB_STEP_SUMMARY="+summary)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		Expect(errors.As(err, &ee)).To(BeTrue(), "%v: %s", err, stderr.String())
		Expect(ee.ExitCode()).To(Equal(1))
		Expect(stdout.String()).To(ContainSubstring("\n::error file=../testdata/golden/rules.v6,line=5,title=egresslab bypass%3A www-data -> mx.example.test [2001%3Adb8%3A%3A25]%3A25/tcp (ipv6)::expected deny, observed connected%0A"))
		md, err := os.ReadFile(summary)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(md)).To(HavePrefix("# an earlier step's summary\n## egresslab: mail-egress\n"), "appended, never replaced")
		Expect(string(md)).To(ContainSubstring("| bypass | www-data -&gt; mx.example.test \\[2001:db8::25\\]:25/tcp (ipv6) |"))
	})

	It("annotates a ruleset the tool rejects at the line the tool named, exit 2", func(ctx SpecContext) {
		dir := GinkgoT().TempDir()
		Expect(os.WriteFile(filepath.Join(dir, "p.yaml"), []byte("version: 1\nusers:\n  www-data: {uid: 33}\nhosts:\n  mx.example.test:\n    addresses: [192.0.2.25]\n    ports: [25/tcp]\nruleset:\n  iptables: rules.v4\nexpect:\n  - allow: {}\n"), 0o644)).To(Succeed())
		Expect(os.WriteFile(filepath.Join(dir, "rules.v4"), []byte("*filter\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -p tcp --dport 25 -j NOSUCHTARGET\nCOMMIT\n"), 0o644)).To(Succeed())
		r := egresslab(ctx, ".", "verify", "-f", filepath.Join(dir, "p.yaml"), "--format", "github")
		Expect(r.status).To(Equal(2), r.stderr)
		// iptables-restore names the COMMIT that failed, line 4
		// (after the policy's warning annotation: its one host has no IPv6 address)
		Expect(r.stdout).To(MatchRegexp("(?m)^" + regexp.QuoteMeta("::error file="+filepath.Join(dir, "rules.v4")+",line=4,title=egresslab p%3A exit status 2::")))
	})
})

var _ = Describe("usage errors and the shell's user", Label("reports"), func() {
	DescribeTable("a usage error is one line pointing at --help, exit 2",
		func(ctx SpecContext, args []string, want string) {
			r := egresslab(ctx, ".", args...)
			Expect(r.status).To(Equal(2))
			Expect(r.stderr).To(Equal("egresslab: " + want + "\n"))
		},
		Entry("an unknown flag", []string{"verify", "--frob"}, "unknown flag: --frob; see 'egresslab verify --help'"),
		Entry("an unknown command", []string{"verfy"}, `unknown command "verfy" for "egresslab" (did you mean verify?); see 'egresslab --help'`),
		Entry("a stray argument", []string{"verify", "extra.yaml"}, `unknown command "extra.yaml" for "egresslab verify"; see 'egresslab verify --help'`),
		Entry("too many arguments", []string{"repro", "a", "b"}, "accepts at most 1 arg(s), received 2; see 'egresslab repro --help'"),
		Entry("a flag's bad value", []string{"verify", "--timeout", "soon"}, `invalid argument "soon" for "--timeout" flag: time: invalid duration "soon"; see 'egresslab verify --help'`),
	)

	It("shell --user NOSUCH fails before its banner, naming the policy's users", func(ctx SpecContext) {
		r := egresslab(ctx, ".", "shell", "-f", "../testdata/golden/mail.yaml", "--user", "nosuch")
		Expect(r.status).To(Equal(2))
		Expect(r.stderr).To(Equal("egresslab: ../testdata/golden/mail.yaml: no user \"nosuch\" in policy mail-egress; its users: root, postfix, www-data\n"))
	})
})

var _ = Describe("a matcher's reproduce line", Label("reports"), func() {
	It("names the policy file the session was opened on", func(ctx SpecContext) {
		p, err := scenarios.Load("../testdata/golden/mail.yaml")
		Expect(err).NotTo(HaveOccurred())
		s, err := scenarios.Open(ctx, p)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(s.Close)
		results, err := s.Probe(ctx, "www-data", "mx.example.test", "25/tcp")
		Expect(err).NotTo(HaveOccurred())
		var message string
		g := gomega.NewGomega(func(m string, _ ...int) { message = m })
		g.Expect(results).To(matchers.OnEveryFamily(matchers.BeDropped()))
		Expect(message).To(ContainSubstring("reproduce: egresslab exec -f ../testdata/golden/mail.yaml --user www-data -- nc -vz -n -w 3 2001:db8::25 25"))
		Expect(message).NotTo(ContainSubstring("egresslab.yaml"))
	})
})

var _ = Describe("repro DIR", Label("reports", "catalogue"), func() {
	It("runs an exported entry, and an edited one against what its scenario.yaml now documents", func(ctx SpecContext) {
		dir := filepath.Join(GinkgoT().TempDir(), "telnet")
		r := egresslab(ctx, ".", "scenarios", "--export", "telnet-surprise", dir)
		Expect(r.status).To(Equal(0), r.stderr)

		r = egresslab(ctx, ".", "repro", dir)
		Expect(r.status).To(Equal(0), r.stderr)
		Expect(r.stdout).To(HaveSuffix("repro telnet-surprise: every variant behaves as documented.\n"))

		// Document variant (b) as if its IPv6 breakage were fixed: it is not.
		file := filepath.Join(dir, "scenario.yaml")
		doc, err := os.ReadFile(file)
		Expect(err).NotTo(HaveOccurred())
		edited := bytes.Replace(doc, []byte("    broken:                         # cells blocked although the policy allows them\n      - {user: postfix, host: mx.example.test, family: ipv6}\n"), nil, 1)
		Expect(edited).NotTo(Equal(doc), "the edit applies")
		Expect(os.WriteFile(file, edited, 0o644)).To(Succeed())
		r = egresslab(ctx, ".", "repro", dir)
		Expect(r.status).To(Equal(1), r.stderr)
		Expect(r.stdout).To(ContainSubstring("NOT as documented:"))
		Expect(r.stdout).To(HaveSuffix("repro: 1 of 3 variants do NOT behave as documented.\n"))
	})

	It("runs a forwarded entry (clients behind the host's bridge) as documented, exit 0", func(ctx SpecContext) {
		r := egresslab(ctx, ".", "repro", "php-container-mail")
		Expect(r.status).To(Equal(0), r.stdout+r.stderr)
		Expect(r.stdout).To(HaveSuffix("repro php-container-mail: every variant behaves as documented.\n"))
	})

	It("runs the whole catalogue with --all, forwarded entries included, as documented, exit 0", func(ctx SpecContext) {
		r := egresslab(ctx, ".", "repro", "--all", "--timeout", "3s")
		Expect(r.status).To(Equal(0), r.stdout+r.stderr)
		Expect(r.stdout).NotTo(ContainSubstring("NOT as documented"))
		Expect(r.stdout).To(ContainSubstring("docker-user-ipv4-only: "))
		Expect(r.stdout).To(MatchRegexp(`repro: all \d+ variants of \d+ entries behave as documented \(.*\)\.\n$`))
	})

	It("says what a folder without scenario.yaml is, exit 2", func(ctx SpecContext) {
		dir := GinkgoT().TempDir()
		r := egresslab(ctx, ".", "repro", dir)
		Expect(r.status).To(Equal(2))
		Expect(r.stderr).To(Equal("egresslab: " + dir + ": no scenario.yaml: repro DIR takes a folder that `egresslab scenarios --export NAME DIR` wrote\n"))
	})
})

var _ = Describe("the --format github example in docs/commands.md", Label("reports", "docs"), func() {
	It("is what the command prints", func(ctx SpecContext) {
		doc, err := os.ReadFile("../docs/commands.md")
		Expect(err).NotTo(HaveOccurred())
		const prompt = "$ cd testdata/golden && sudo egresslab verify -f mail.yaml --format github | grep '^::error'\n"
		_, block, found := bytes.Cut(doc, []byte(prompt))
		Expect(found).To(BeTrue(), "the example's command line")
		block, _, found = bytes.Cut(block, []byte("```\n"))
		Expect(found).To(BeTrue())
		r := egresslab(ctx, "../testdata/golden", "verify", "-f", "mail.yaml", "--format", "github")
		Expect(r.status).To(Equal(1), r.stderr)
		var printed []string
		for _, ln := range bytes.Split([]byte(r.stdout), []byte("\n")) {
			if bytes.HasPrefix(ln, []byte("::error")) {
				printed = append(printed, string(ln)+"\n")
			}
		}
		Expect(strings.Join(printed, "")).To(Equal(string(block)))
	})
})
