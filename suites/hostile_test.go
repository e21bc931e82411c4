package suites_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/egresslab/egresslab/netns/ruleset"
	"github.com/egresslab/egresslab/scenarios"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// A policy whose ruleset part is the given YAML, for the hostile inputs.
func hostilePolicy(ruleset string) string {
	return "version: 1\nusers:\n  www-data: {uid: 33}\nhosts:\n  mx.example.test:\n    addresses: [192.0.2.25, \"2001:db8::25\"]\n    ports: [25/tcp]\n" +
		"ruleset:\n  " + ruleset + "\nexpect:\n  - allow: {}\n"
}

// hostileInput is a policy directory to build and what egresslab must say.
type hostileInput struct {
	files  map[string]string // name -> content; "->target" makes a symlink, "|fifo" a FIFO, "+N" a sparse file of N bytes, "0600:TEXT" a file only its owner (root) may read
	sub    string            // the subcommand; default verify
	args   []string          // after the subcommand; default -f policy.yaml
	status int
	stderr string // a substring stderr must hold
}

func (h hostileInput) build(dir string) {
	GinkgoHelper()
	for name, content := range h.files {
		p := filepath.Join(dir, name)
		Expect(os.MkdirAll(filepath.Dir(p), 0o755)).To(Succeed())
		switch {
		case strings.HasPrefix(content, "->"):
			Expect(os.Symlink(content[2:], p)).To(Succeed())
		case content == "|fifo":
			Expect(syscall.Mkfifo(p, 0o644)).To(Succeed())
		case strings.HasPrefix(content, "0600:"):
			Expect(os.WriteFile(p, []byte(content[5:]), 0o600)).To(Succeed())
		case strings.HasPrefix(content, "+"):
			f, err := os.Create(p)
			Expect(err).NotTo(HaveOccurred())
			var size int64
			for _, c := range content[1:] {
				size = size*10 + int64(c-'0')
			}
			Expect(f.Truncate(size)).To(Succeed())
			Expect(f.Close()).To(Succeed())
		default:
			Expect(os.WriteFile(p, []byte(content), 0o755)).To(Succeed())
		}
	}
}

// manyUsers is a policy of n users, each probing every TCP port of a host's
// two addresses.
func manyUsers(n int) string {
	var b strings.Builder
	b.WriteString("version: 1\nusers:\n")
	for i := range n {
		fmt.Fprintf(&b, "  user%d: {uid: %d, gid: %d, groups: [%d, %d]}  # one of the 200 users of the sweep of every TCP port\n", i, 1000+i, 1000+i, 5000+i, 6000+i)
	}
	b.WriteString("hosts:\n  sweep.example.test:\n    addresses: [198.51.100.7, \"2001:db8:5::7\"]\n    ports: [1-65535/tcp]\nexpect:\n  - allow: {}\n")
	return b.String()
}

// manyAddresses is a policy of one host with n addresses, half IPv4 and
// half IPv6, serving one port.
func manyAddresses(n int) string {
	var addrs []string
	for i := range n / 2 {
		addrs = append(addrs, fmt.Sprintf("198.18.%d.%d", i/250, i%250+1), fmt.Sprintf("\"2001:db8:18::%x\"", i+1))
	}
	return "version: 1\nusers:\n  www-data: {uid: 33}\nhosts:\n  many.example.test:\n    addresses: [" + strings.Join(addrs, ", ") +
		"]\n    ports: [80/tcp]\nexpect:\n  - allow: {}\n"
}

// secrets must never appear in what egresslab prints: /etc/shadow's first
// field, and what the hostile files hold beyond their offending line.
var secrets = []string{"root:", "SECRET-BEYOND-THE-LINE"}

var _ = Describe("hostile input", Label("safety"), func() {
	deep := "version: 1\nname: " + strings.Repeat("[", 500000) + strings.Repeat("]", 500000) + "\n"
	DescribeTable("gets exit 2 and a message naming file, line and the limit, and nothing of any file it should not read",
		func(ctx SpecContext, h hostileInput) {
			dir := GinkgoT().TempDir()
			h.build(dir)
			args := h.args
			if args == nil {
				args = []string{"-f", "policy.yaml"}
			}
			sub := h.sub
			if sub == "" {
				sub = "verify"
			}
			r := egresslab(ctx, dir, append([]string{sub}, args...)...)
			Expect(r.status).To(Equal(h.status), "stderr: %.2000s", r.stderr)
			Expect(r.stderr).To(ContainSubstring(h.stderr))
			Expect(len(r.stderr)).To(BeNumerically("<", 8<<10), "what a tool printed is capped")
			for _, s := range secrets {
				Expect(r.stderr + r.stdout).NotTo(ContainSubstring(s))
			}
			Expect(r.took).To(BeNumerically("<", 20*time.Second))
			fmt.Fprintf(GinkgoWriter, "exit %d: %s", r.status, r.stderr)
		},
		Entry("a ruleset path out of the tree by ..", hostileInput{
			files:  map[string]string{"policy.yaml": hostilePolicy("nft: ../../../../../../../etc/shadow")},
			status: 2, stderr: `policy.yaml:9:8: ruleset nft: "../../../../../../../etc/shadow" leads out of the policy's directory`}),
		Entry("an absolute ruleset path", hostileInput{
			files:  map[string]string{"policy.yaml": hostilePolicy("iptables: /etc/shadow")},
			status: 2, stderr: `policy.yaml:9:13: ruleset iptables: "/etc/shadow" is absolute`}),
		Entry("a ruleset that is a symlink to /etc/shadow", hostileInput{
			files:  map[string]string{"policy.yaml": hostilePolicy("nft: rules.nft"), "rules.nft": "->/etc/shadow"},
			status: 2, stderr: `policy.yaml:9:8: ruleset nft: "rules.nft" leads out of the policy's directory`}),
		Entry("a ruleset that is a relative symlink out of the tree", hostileInput{
			files:  map[string]string{"p/policy.yaml": hostilePolicy("iptables: rules.v4"), "p/rules.v4": "->../outside.v4", "outside.v4": "*filter\nCOMMIT\n"},
			args:   []string{"-f", "p/policy.yaml"},
			status: 2, stderr: `p/policy.yaml:9:13: ruleset iptables: "rules.v4" leads out of the policy's directory`}),
		Entry("a ruleset that is a symlink to /dev/zero", hostileInput{
			files:  map[string]string{"policy.yaml": hostilePolicy("nft: rules.nft"), "rules.nft": "->/dev/zero"},
			status: 2, stderr: `ruleset nft: "rules.nft" leads out of the policy's directory`}),
		Entry("a ruleset that is a FIFO", hostileInput{
			files:  map[string]string{"policy.yaml": hostilePolicy("nft: rules.nft"), "rules.nft": "|fifo"},
			status: 2, stderr: `policy.yaml:9:8: ruleset nft: "rules.nft" is a FIFO: want a regular file`}),
		Entry("a ruleset of 17 MiB", hostileInput{
			files:  map[string]string{"policy.yaml": hostilePolicy("iptables: rules.v4"), "rules.v4": "+17825792"},
			status: 2, stderr: `policy.yaml:9:13: ruleset iptables: "rules.v4" is 17825792 bytes: a ruleset file may have at most 16777216 (16 MiB)`}),
		Entry("-f /etc/shadow", hostileInput{
			args: []string{"-f", "/etc/shadow"}, status: 2, stderr: `/etc/shadow:1:1: missing key "version"`}),
		Entry("-f a FIFO", hostileInput{
			files: map[string]string{"policy.yaml": "|fifo"}, status: 2, stderr: `policy.yaml: policy is a FIFO: want a regular file`}),
		Entry("-f /dev/zero", hostileInput{
			args: []string{"-f", "/dev/zero"}, status: 2, stderr: `/dev/zero: policy is a character device: want a regular file`}),
		Entry("a policy of 2 MiB", hostileInput{
			files:  map[string]string{"policy.yaml": "+2097152"},
			status: 2, stderr: `policy.yaml:1:1: policy is 2097152 bytes: a policy may have at most 1048576 (1 MiB)`}),
		Entry("YAML nested 500,000 deep (1 MB)", hostileInput{
			files:  map[string]string{"policy.yaml": deep},
			status: 2, stderr: `policy.yaml:2:39: nesting deeper than 32 levels`}),
		Entry(`nft include "/etc/shadow"`, hostileInput{
			files:  map[string]string{"policy.yaml": hostilePolicy("nft: rules.nft"), "rules.nft": "table inet t {\n}\ninclude \"/etc/shadow\"\n"},
			status: 2, stderr: `policy.yaml:9:8: ruleset nft: rules.nft:3:1: include "/etc/shadow": an absolute path`}),
		Entry(`nft include "/dev/zero"`, hostileInput{
			files:  map[string]string{"policy.yaml": hostilePolicy("nft: rules.nft"), "rules.nft": "include \"/dev/zero\"\n"},
			status: 2, stderr: `ruleset nft: rules.nft:1:1: include "/dev/zero": an absolute path`}),
		Entry(`nft include of a file out of the tree by ..`, hostileInput{
			files:  map[string]string{"policy.yaml": hostilePolicy("nft: nft/rules.nft"), "nft/rules.nft": "include \"../../../etc/shadow\"\n"},
			status: 2, stderr: `ruleset nft: nft/rules.nft:1:1: include "../../../etc/shadow": leads out of the directory of rules.nft`}),
		Entry(`nft include of a symlink to /etc/shadow`, hostileInput{
			files:  map[string]string{"policy.yaml": hostilePolicy("nft: rules.nft"), "rules.nft": "include \"inc.nft\"\n", "inc.nft": "->/etc/shadow"},
			status: 2, stderr: `ruleset nft: rules.nft:1:1: include "inc.nft": leads out of the policy's directory`}),
		// nft tries its default include path (/etc) before any other, and
		// "./" against its working directory: each of these would read the
		// host's file in place of the tree's, whose marker then never shows.
		Entry(`nft include "hostname" reads the tree's hostname, not the host's /etc/hostname`, hostileInput{
			files:  map[string]string{"policy.yaml": hostilePolicy("nft: rules.nft"), "rules.nft": "include \"hostname\"\n", "hostname": "tree-hostname-marker\n"},
			status: 2, stderr: "hostname:1:21-21: Error: syntax error, unexpected newline, expecting string\ntree-hostname-marker"}),
		Entry(`nft include "./etc/hostname" reads the tree's etc/hostname, not the host's`, hostileInput{
			files:  map[string]string{"policy.yaml": hostilePolicy("nft: rules.nft"), "rules.nft": "include \"./etc/hostname\"\n", "etc/hostname": "tree-etc-marker\n"},
			status: 2, stderr: "etc/hostname:1:16-16: Error: syntax error, unexpected newline, expecting string\ntree-etc-marker"}),
		Entry(`nft include "nftables.conf" reads the tree's, not the host's /etc/nftables.conf`, hostileInput{
			files:  map[string]string{"policy.yaml": hostilePolicy("nft: rules.nft"), "rules.nft": "include \"nftables.conf\"\n", "nftables.conf": "tree-conf-marker\n"},
			status: 2, stderr: "nftables.conf:1:17-17: Error: syntax error, unexpected newline, expecting string\ntree-conf-marker"}),
		Entry(`nft include "hostname" not in the tree`, hostileInput{
			files:  map[string]string{"policy.yaml": hostilePolicy("nft: rules.nft"), "rules.nft": "table inet t {\n}\ninclude \"hostname\"\n"},
			status: 2, stderr: `policy.yaml:9:8: ruleset nft: rules.nft:3:1: include "hostname": does not exist`}),
		Entry(`nft include "/etc/hostname"`, hostileInput{
			files:  map[string]string{"policy.yaml": hostilePolicy("nft: rules.nft"), "rules.nft": "include \"/etc/hostname\"\n"},
			status: 2, stderr: `ruleset nft: rules.nft:1:1: include "/etc/hostname": an absolute path`}),
		Entry(`nft include "./dev/zero" (nft's working directory is /)`, hostileInput{
			files:  map[string]string{"policy.yaml": hostilePolicy("nft: rules.nft"), "rules.nft": "include \"./dev/zero\"\n"},
			status: 2, stderr: `ruleset nft: rules.nft:1:1: include "./dev/zero": does not exist`}),
		Entry(`nft include of a relative symlink out of the tree`, hostileInput{
			files: map[string]string{"p/policy.yaml": hostilePolicy("nft: rules.nft"), "p/rules.nft": "include \"inc.nft\"\n",
				"p/inc.nft": "->../outside.nft", "outside.nft": "table inet outside {}\n"},
			args:   []string{"-f", "p/policy.yaml"},
			status: 2, stderr: `ruleset nft: rules.nft:1:1: include "inc.nft": leads out of the policy's directory`}),
		Entry(`nft include of a glob`, hostileInput{
			files:  map[string]string{"policy.yaml": hostilePolicy("nft: rules.nft"), "rules.nft": "include \"conf.d/*.nft\"\n", "conf.d/a.nft": "table inet a {}\n"},
			status: 2, stderr: `ruleset nft: rules.nft:1:1: include "conf.d/*.nft": wildcards (* ? [) are not supported: include each file by name`}),
		Entry(`nft include hidden after a quoted string that spans lines`, hostileInput{
			files:  map[string]string{"policy.yaml": hostilePolicy("nft: rules.nft"), "rules.nft": "define x = \"a\nb\"; include \"hostname\"\n"},
			status: 2, stderr: `ruleset nft: rules.nft:2:5: include "hostname": does not exist`}),
		Entry("an nft error in an included file shows that file's line only", hostileInput{
			files: map[string]string{"policy.yaml": hostilePolicy("nft: rules.nft"), "rules.nft": "table inet t {\n\tinclude \"chains/out.nft\"\n}\n",
				"chains/out.nft": "chain out {\n\tmeta skuid 33 drop bogus\n}\n# SECRET-BEYOND-THE-LINE\n"},
			status: 2, stderr: "chains/out.nft:2: nft: "}),
		// lint runs as root in CI on the files of a pull request, as verify does.
		Entry("lint of a symlink to a root-only file out of its directory", hostileInput{
			files: map[string]string{"tree/rules.nft": "->../outside/secret.nft", "outside/secret.nft": "0600:SECRET-BEYOND-THE-LINE\n"},
			sub:   "lint", args: []string{"tree/rules.nft"},
			status: 2, stderr: "read ruleset tree/rules.nft: leads out of its directory, or out of the working directory, by a symbolic link"}),
		Entry("lint of a file through a directory symlink to /etc (as a glob conf/* would name it)", hostileInput{
			files: map[string]string{"conf": "->/etc"}, sub: "lint", args: []string{"nft:conf/shadow"},
			status: 2, stderr: "read ruleset conf/shadow: leads out of its directory, or out of the working directory"}),
		Entry("lint of a symlink to /etc/shadow", hostileInput{
			files: map[string]string{"rules.v4": "->/etc/shadow"}, sub: "lint", args: []string{"rules.v4"},
			status: 2, stderr: "read ruleset rules.v4: leads out of its directory, or out of the working directory"}),
		Entry("lint /dev/zero", hostileInput{
			sub: "lint", args: []string{"nft:/dev/zero"}, status: 2, stderr: "read ruleset /dev/zero: is a character device: want a regular file"}),
		Entry("lint of a FIFO", hostileInput{
			files: map[string]string{"rules.nft": "|fifo"}, sub: "lint", args: []string{"nft:rules.nft"},
			status: 2, stderr: "read ruleset rules.nft: is a FIFO: want a regular file"}),
		Entry("lint of a 17 MiB file", hostileInput{
			files: map[string]string{"rules.v4": "+17825792"}, sub: "lint", args: []string{"iptables:rules.v4"},
			status: 2, stderr: "read ruleset rules.v4: is 17825792 bytes: a ruleset file may have at most 16777216 (16 MiB)"}),
		Entry(`lint of nft include "hostname" reads the tree's hostname, not the host's`, hostileInput{
			files: map[string]string{"nft/rules.nft": "include \"hostname\"\n", "nft/hostname": "tree-hostname-marker\n"},
			sub:   "lint", args: []string{"nft/rules.nft"},
			status: 2, stderr: "nft/hostname:1:21-21: Error: syntax error, unexpected newline, expecting string\ntree-hostname-marker"}),
		Entry(`lint of nft include "/etc/hostname"`, hostileInput{
			files: map[string]string{"rules.nft": "include \"/etc/hostname\"\n"}, sub: "lint", args: []string{"rules.nft"},
			status: 2, stderr: `rules.nft:1:1: include "/etc/hostname": an absolute path`}),
		Entry(`lint of nft include "./etc/hostname" not in the tree`, hostileInput{
			files: map[string]string{"rules.nft": "table inet t {\n}\ninclude \"./etc/hostname\"\n"}, sub: "lint", args: []string{"rules.nft"},
			status: 2, stderr: `rules.nft:3:1: include "./etc/hostname": does not exist`}),
		Entry(`lint -f of nft include "nftables.conf" reads the tree's, not the host's /etc/nftables.conf`, hostileInput{
			files:  map[string]string{"policy.yaml": hostilePolicy("nft: rules.nft"), "rules.nft": "include \"nftables.conf\"\n", "nftables.conf": "tree-conf-marker\n"},
			sub:    "lint",
			status: 2, stderr: "nftables.conf:1:17-17: Error: syntax error, unexpected newline, expecting string\ntree-conf-marker"}),
		Entry("a host of 10,002 addresses", hostileInput{
			files:  map[string]string{"policy.yaml": manyAddresses(10002)},
			status: 2, stderr: "policy.yaml:4:1: the hosts serve 10002 addresses and ports (each address of a host × each port or port range of it, a socket each): a policy may have at most 10000"}),
		Entry("a failing script that prints 50 MB", hostileInput{
			files: map[string]string{"policy.yaml": hostilePolicy("script: loud.sh"),
				"loud.sh": "head -c 50000000 /dev/zero | tr '\\0' x | fold -w 100\nexit 1\n"},
			status: 2, stderr: "(output past 1 MiB discarded)"}),
		Entry("a script whose #! interpreter is not installed", hostileInput{
			files:  map[string]string{"policy.yaml": hostilePolicy("script: setup.sh"), "setup.sh": "#!/usr/bin/no-such-shell\nexit 0\n"},
			status: 2, stderr: "setup.sh: script: cannot execute it: the interpreter its #! line names is not installed"}),
		Entry("a script that prints terminal escapes", hostileInput{
			files:  map[string]string{"policy.yaml": hostilePolicy("script: esc.sh"), "esc.sh": "printf '\\033]0;owned\\007\\033[2J'\nexit 1\n"},
			status: 2, stderr: "esc.sh: script: ?]0;owned??[2J"}),
	)

	It("a 20 KB policy of 200 users × every TCP port of two addresses (26 million probes) is refused at once", func(ctx SpecContext) {
		dir := GinkgoT().TempDir()
		policy := manyUsers(200)
		Expect(len(policy)).To(BeNumerically(">", 20_000))
		hostileInput{files: map[string]string{"policy.yaml": policy}}.build(dir)
		r := egresslab(ctx, dir, "verify", "-f", "policy.yaml")
		Expect(r.status).To(Equal(2), "stderr: %.2000s", r.stderr)
		Expect(r.stderr).To(ContainSubstring("policy.yaml:203:1: the matrix (users × each host's addresses × its ports) is 26214000 probes: a policy may have at most 1000000"))
		Expect(r.took).To(BeNumerically("<", time.Second))
		// Memory: scenarios' "refuses a matrix past MaxProbes before allocating it".
	})

	It("a host of 5,000 addresses (2,500 IPv4, 2,500 IPv6) is probed: its trace elements go in as several transactions", func(ctx SpecContext) {
		dir := GinkgoT().TempDir()
		hostileInput{files: map[string]string{"policy.yaml": manyAddresses(5000)}}.build(dir)
		r := egresslab(ctx, dir, "verify", "-f", "policy.yaml")
		Expect(r.status).To(Equal(0), "stderr: %.2000s", r.stderr)
		Expect(r.stdout).To(ContainSubstring("5000 probes: 5000 passed, 0 failed, 0 errors"))
		fmt.Fprintf(GinkgoWriter, "5,000 addresses in %s\n", r.took)
	})

	It("a script that never ends is stopped at the tool time bound: exit 2 saying so", Serial, func(ctx SpecContext) {
		dir := GinkgoT().TempDir()
		hostileInput{files: map[string]string{"policy.yaml": hostilePolicy("script: forever.sh"), "forever.sh": "while :; do :; done\n"}}.build(dir)
		p, err := scenarios.Load(filepath.Join(dir, "policy.yaml"))
		Expect(err).NotTo(HaveOccurred())
		start := time.Now()
		_, err = scenarios.Run(ctx, p, scenarios.RunOptions{ToolTimeout: 2 * time.Second})
		var rerr *ruleset.RulesetError
		Expect(errors.As(err, &rerr)).To(BeTrue(), "%v", err)
		Expect(rerr.Error()).To(Equal("forever.sh: script: still running after 2s: a ruleset must load within that"))
		Expect(time.Since(start)).To(BeNumerically("<", 5*time.Second))
	})

	It("a hostile script (/etc writes, flushes, link deletion, nsenter to the host, IPC objects, a daemon) leaves the host as it was", Serial, func(ctx SpecContext) {
		before := hostState()
		r := egresslab(ctx, "../testdata/harness", "verify", "-f", "escape.yaml")
		Expect(r.stderr).NotTo(ContainSubstring("ESCAPED"), "the script reached the host's namespaces")
		Expect(r.status).To(BeNumerically(">=", 1), "the script breaks the lab's own parts on purpose")
		expectSameHost(before)
		Expect(os.ReadFile("/tmp/egresslab-escape-was-here")).Error().To(MatchError(os.ErrNotExist))
	})
})
