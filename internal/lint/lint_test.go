package lint_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/egresslab/egresslab/internal/lint"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

const fixtures = "../../testdata/lint/"

// at is a finding as the specs name it: check, file base name and line.
type at struct {
	Check lint.Check
	File  string
	Line  int
}

func places(findings []lint.Finding) []at {
	out := []at{}
	for _, f := range findings {
		out = append(out, at{f.Check, filepath.Base(f.File), f.Line})
	}
	return out
}

func lintFiles(ctx context.Context, files ...string) ([]lint.Finding, error) {
	var args []string
	for _, f := range files {
		args = append(args, fixtures+f)
	}
	src, err := lint.FromFiles(args)
	Expect(err).NotTo(HaveOccurred())
	return lint.Lint(ctx, src, lint.Options{})
}

var _ = Describe("lint", func() {
	DescribeTable("finds each gap at the line that made it",
		func(ctx SpecContext, files []string, want []at) {
			findings, err := lintFiles(ctx, files...)
			Expect(err).NotTo(HaveOccurred())
			Expect(places(findings)).To(Equal(want))
			for _, f := range findings {
				Expect(f.Rule).NotTo(BeEmpty(), "every finding shows the rule as the tool read it back")
				Expect(f.Fix).NotTo(BeEmpty(), "every finding suggests a fix")
			}
		},
		Entry("the seed: an owner match and a final DROP in IPv4 only", []string{"seed.v4"},
			[]at{{lint.OwnerOneFamily, "seed.v4", 5}, {lint.DropOneFamily, "seed.v4", 6}}),
		Entry("twins in both families, ND accepted: nothing", []string{"dual.v4", "dual.v6"}, []at{}),
		Entry("a policy, an owner rule and one of two expanded addresses missing on IPv6",
			[]string{"dual.v4", "gaps.v6"},
			[]at{{lint.DropOneFamily, "dual.v4", 5}, {lint.OwnerOneFamily, "dual.v4", 7}, {lint.OneFamily, "dual.v4", 8}}),
		Entry("IPv6 drops that take neighbour discovery", []string{"nd.v4", "nd.v6"},
			[]at{{lint.NDBlocked, "nd.v6", 5}, {lint.NDBlocked, "nd.v6", 7}}),
		Entry("family-limited matches in an inet table (a multi-line set, two rules on a line)", []string{"inet.nft"},
			[]at{{lint.InetFamilyMatch, "inet.nft", 11}, {lint.InetFamilyMatch, "inet.nft", 12},
				{lint.InetFamilyMatch, "inet.nft", 14}, {lint.InetFamilyMatch, "inet.nft", 15}}),
		Entry("rules one family has by nature (DHCP, DHCPv6, link-local, multicast, ND, MLD) and one IPv6-only accept",
			[]string{"native.v4", "native.v6"}, []at{{lint.OneFamily, "native.v6", 14}}),
		Entry("per-family subchains, each reached from its own family only; one reached from both", []string{"scoped.nft"},
			[]at{{lint.InetFamilyMatch, "scoped.nft", 14}, {lint.InetFamilyMatch, "scoped.nft", 25}}),
		Entry("a table ip whose table ip6 twin lacks the owner rule", []string{"split-ip.nft", "split-ip6.nft"},
			[]at{{lint.OwnerOneFamily, "split-ip.nft", 6}}),
	)

	Describe("on FORWARD, by family", func() {
		const forward = "../../testdata/forward/"
		lintForward := func(ctx SpecContext, files ...string) []lint.Finding {
			src, err := lint.FromFiles(files)
			Expect(err).NotTo(HaveOccurred())
			findings, err := lint.Lint(ctx, src, lint.Options{})
			Expect(err).NotTo(HaveOccurred())
			return findings
		}
		dockerUser := func(findings []lint.Finding) []lint.Finding {
			var out []lint.Finding
			for _, f := range findings {
				if f.Rule == "-A DOCKER-USER -p tcp -m tcp --dport 25 -j DROP" ||
					f.Rule == "-A DOCKER-USER -i docker0 -p tcp -m tcp --dport 25 -j DROP" {
					out = append(out, f)
				}
			}
			return out
		}

		It("finds Docker 26's IPv4-only DOCKER-USER drop at its line", func(ctx SpecContext) {
			found := dockerUser(lintForward(ctx, forward+"docker26/rules.v4"))
			Expect(places(found)).To(Equal([]at{{lint.OneFamily, "rules.v4", 51}}))
			Expect(found[0].Family).To(Equal("ipv4"))
			Expect(found[0].Fix).To(ContainSubstring("ip6tables-restore"))
		})

		It("finds nothing in Docker 27's pair, which holds the drop in both families", func(ctx SpecContext) {
			Expect(lintForward(ctx, forward+"docker27/rules.v4", forward+"docker27/rules.v6")).To(BeEmpty())
		})
	})

	It("says what it suggests in words a user can paste", func(ctx SpecContext) {
		findings, err := lintFiles(ctx, "inet.nft")
		Expect(err).NotTo(HaveOccurred())
		Expect(findings).To(HaveLen(4))
		Expect(findings[0].Rule).To(Equal("ip protocol tcp ct state established accept"))
		Expect(findings[0].Fix).To(ContainSubstring("meta l4proto"))
		Expect(findings[1].Fix).To(ContainSubstring("ip6 daddr <IPv6 address> tcp dport 25 accept"))
		Expect(findings[3].Msg).To(ContainSubstring("reject with icmp"))
	})

	It("names the stricter side of a one-family accept and never proposes widening it", func(ctx SpecContext) {
		findings, err := lintFiles(ctx, "native.v4", "native.v6")
		Expect(err).NotTo(HaveOccurred())
		Expect(findings).To(HaveLen(1))
		Expect(findings[0].Rule).To(ContainSubstring("--dports 53,443 -j ACCEPT"))
		Expect(findings[0].Msg).To(ContainSubstring("IPv6 accepts this traffic here, IPv4 has no such rule"))
		Expect(findings[0].Msg).To(ContainSubstring("so IPv4 is at least as strict"))
		Expect(findings[0].Fix).To(HavePrefix("if IPv6 traffic should not pass here, delete or narrow this rule"))
		Expect(findings[0].Fix).NotTo(ContainSubstring("-A OUTPUT"), "no rule to paste that would widen IPv4")
	})

	It("reports a file the real tool refuses with the tool's line", func(ctx SpecContext) {
		_, err := lintFiles(ctx, "bad.v4")
		var rerr *lint.RulesetError
		Expect(err).To(BeAssignableToTypeOf(rerr))
		Expect(err.(*lint.RulesetError).Line).To(Equal(3))
		Expect(err.(*lint.RulesetError).Tool).To(Equal("iptables-restore"))
	})

	It("reads owner names from the passwd it is given", func(ctx SpecContext) {
		rules := []byte("*filter\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -m owner --uid-owner postfix -j ACCEPT\nCOMMIT\n")
		src := []lint.Source{{Kind: lint.IPTables, Path: "named.v4", Data: rules}}
		findings, err := lint.Lint(ctx, src, lint.Options{Passwd: "root:x:0:0::/:/bin/sh\npostfix:x:107:114::/:/bin/sh\n", Group: "root:x:0:\n"})
		Expect(err).NotTo(HaveOccurred())
		Expect(findings).To(HaveLen(1))
		Expect(findings[0].Rule).To(ContainSubstring("--uid-owner 107"))
	})

	It("writes JSON with file, line, check and fix", func(ctx SpecContext) {
		findings, err := lintFiles(ctx, "seed.v4")
		Expect(err).NotTo(HaveOccurred())
		var b bytes.Buffer
		Expect(lint.WriteJSON(&b, findings)).To(Succeed())
		var doc struct {
			Pass     bool             `json:"pass"`
			Findings []map[string]any `json:"findings"`
		}
		Expect(json.Unmarshal(b.Bytes(), &doc)).To(Succeed())
		Expect(doc.Pass).To(BeFalse())
		Expect(doc.Findings[0]).To(HaveKeyWithValue("line", 5.0))
		Expect(doc.Findings[0]).To(HaveKeyWithValue("check", "owner-one-family"))
		Expect(doc.Findings[0]).To(HaveKey("fix"))
	})

	It("runs without root, in an unprivileged user namespace", func(ctx SpecContext) {
		// This test binary and the fixture, copied where an unprivileged
		// user can read them, run again as nobody.
		dir := GinkgoT().TempDir()
		Expect(os.Chmod(dir, 0o755)).To(Succeed())
		self, err := os.ReadFile("/proc/self/exe")
		Expect(err).NotTo(HaveOccurred())
		Expect(os.WriteFile(filepath.Join(dir, "lint.test"), self, 0o755)).To(Succeed())
		data, err := os.ReadFile(fixtures + "inet.nft")
		Expect(err).NotTo(HaveOccurred())
		Expect(os.WriteFile(filepath.Join(dir, "inet.nft"), data, 0o644)).To(Succeed())
		cmd := exec.CommandContext(ctx, filepath.Join(dir, "lint.test"), filepath.Join(dir, "inet.nft"))
		cmd.Env = []string{rootlessEnv + "=1", "PATH=" + os.Getenv("PATH")}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		Expect(err).NotTo(HaveOccurred(), fmt.Sprintf("as nobody: %s", stderr.String()))
		var doc struct{ Findings []lint.Finding }
		Expect(json.Unmarshal(out, &doc)).To(Succeed())
		Expect(places(doc.Findings)).To(HaveLen(4))
	})
})
