package suites_test

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios"
)

// The forwarded lab's verdicts for every client cell are what real clients
// get in the plain ip-netns router lab (testdata/forward/plainlab.sh) with
// the same rules, cell by cell.
var _ = Describe("the forwarded lab", Label("forward"), func() {
	const dir = "../testdata/forward/docker27/"
	// plainlab's words for what egresslab calls an outcome.
	plainOutcome := map[string]probe.Outcome{
		"connected": probe.Connected, "refused": probe.Refused,
		"unreachable": probe.Rejected, "timeout": probe.Dropped,
	}

	// Docker 27's rules and Docker 28.0's (DOCKER-FORWARD, ipsets, loaded by
	// a script) on the same docker0, clients and policy.
	DescribeTable("gives a Docker host's clients what real clients get, cell by cell", func(ctx SpecContext, dir string, ruleset ...string) {
		p, err := scenarios.Load(dir + "egresslab.yaml")
		Expect(err).NotTo(HaveOccurred())
		rep, err := scenarios.Run(ctx, p, scenarios.RunOptions{})
		Expect(err).NotTo(HaveOccurred())

		args := append([]string{"-n", "docker0", "-a", "172.17.0.1/16", "-a", "fd00:db8:17::1/64",
			"-c", "web=172.17.0.2,fd00:db8:17::2", "-c", "php=172.17.0.3"}, ruleset...)
		for _, a := range []string{"192.0.2.25", "[2001:db8::25]"} {
			for _, port := range []string{"25", "443", "587"} {
				args = append(args, "-l", a+":"+port, "-d", a+":"+port)
			}
		}
		out, err := exec.CommandContext(ctx, "../testdata/forward/plainlab.sh", args...).Output()
		Expect(err).NotTo(HaveOccurred())
		truth := map[string]probe.Outcome{}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			f := strings.Fields(line)
			Expect(f).To(HaveLen(4), line)
			truth[f[0]+" "+f[1]+" "+f[2]] = plainOutcome[f[3]]
		}

		var differ []string
		compared := 0
		for _, r := range rep.Results {
			if r.Client == nil {
				continue
			}
			cell := fmt.Sprintf("%s %s %d", r.Client.Name, r.Address, r.Port.Number)
			want, ok := truth[cell]
			Expect(ok).To(BeTrue(), "plainlab.sh has no cell %s", cell)
			compared++
			if r.Observed != want {
				differ = append(differ, fmt.Sprintf("%s: lab %s (%s), real client %s", cell, r.Observed, r.Detail, want))
			}
		}
		Expect(compared).To(Equal(len(truth)))
		Expect(differ).To(BeEmpty(), "cells where the lab and real clients differ")
		Expect(rep.Pass()).To(BeTrue(), "the policy holds on every cell")
	},
		Entry("Docker 27", dir, "-4", dir+"rules.v4", "-6", dir+"rules.v6"),
		Entry("Docker 28", "../testdata/forward/docker28/", "-S", "../testdata/forward/docker28/docker28.sh"),
	)

	It("says a DROP in DOCKER-USER is dropped in FORWARD, and names the chain", func(ctx SpecContext) {
		p, err := scenarios.Load(dir + "egresslab.yaml")
		Expect(err).NotTo(HaveOccurred())
		rep, err := scenarios.Run(ctx, p, scenarios.RunOptions{})
		Expect(err).NotTo(HaveOccurred())
		found := 0
		for _, r := range rep.Results {
			if r.Client == nil || r.Port.Number != 25 || r.Client.Name != "web" {
				continue
			}
			found++
			Expect(r.Observed).To(Equal(probe.Dropped), r.String())
			Expect(r.Evidence.Kind).To(Equal(probe.ForwardPath))
			Expect(r.Evidence.Where).To(Equal(probe.Forward))
			Expect(r.Decider).NotTo(BeNil(), r.String())
			Expect(r.Decider.String()).To(ContainSubstring("DOCKER-USER"))
		}
		Expect(found).To(Equal(2))
	})

	It("says which address a client's packet left with: the uplink's under MASQUERADE, its own without nat", func(ctx SpecContext) {
		sources := func(file string) map[string]string {
			p, err := scenarios.Load(file)
			Expect(err).NotTo(HaveOccurred())
			rep, err := scenarios.Run(ctx, p, scenarios.RunOptions{})
			Expect(err).NotTo(HaveOccurred())
			got := map[string]string{}
			for _, r := range rep.Results {
				if r.Client == nil || r.Observed != probe.Connected {
					continue
				}
				cell := fmt.Sprintf("%s %s %d/%s", r.Client.Name, r.Address, r.Port.Number, r.Port.Proto)
				got[cell] = r.Source().String()
				Expect(r.Evidence.AnsweredBy).NotTo(BeNil(), "who answered %s", cell)
				Expect(r.Evidence.AnsweredBy.Addr).To(Equal(r.Address), cell)
			}
			return got
		}
		// docker27's rules MASQUERADE both families out of the uplink (203.0.113.10, 2001:db8:1::10).
		Expect(sources(dir + "egresslab.yaml")).To(Equal(map[string]string{
			"web 192.0.2.25 443/tcp": "203.0.113.10", "web 2001:db8::25 443/tcp": "2001:db8:1::10",
			"php 192.0.2.25 443/tcp": "203.0.113.10",
		}))
		Expect(sources("../testdata/forward/routed/egresslab.yaml")).To(Equal(map[string]string{
			"pc 192.0.2.25 443/tcp": "198.18.0.2", "pc 2001:db8::25 443/tcp": "fd00:db8:18::2",
			"pc 192.0.2.25 53/udp": "198.18.0.2", "pc 2001:db8::25 53/udp": "fd00:db8:18::2",
		}))
	})

	It("gives a real nc run by exec --client the table's answer for the client's cells, allowed and denied", func(ctx SpecContext) {
		p, err := scenarios.Load(dir + "egresslab.yaml")
		Expect(err).NotTo(HaveOccurred())
		rep, err := scenarios.Run(ctx, p, scenarios.RunOptions{})
		Expect(err).NotTo(HaveOccurred())
		// nc -vz's words for what egresslab calls an outcome.
		ncSays := func(r run) probe.Outcome {
			switch {
			case r.status == 0:
				return probe.Connected
			case strings.Contains(r.stderr, "Connection refused"):
				return probe.Refused
			case strings.Contains(r.stderr, "timed out"):
				return probe.Dropped
			case strings.Contains(r.stderr, "unreachable"):
				return probe.Rejected
			}
			return probe.Error
		}
		seen := map[probe.Outcome]bool{}
		for _, r := range rep.Results {
			if r.Client == nil || r.Port.Proto != "tcp" {
				continue
			}
			got := egresslab(ctx, ".", "exec", "-f", dir+"egresslab.yaml", "--client", r.Client.Name, "--",
				"nc", "-vz", "-w", "2", r.Address.String(), fmt.Sprint(r.Port.Number))
			Expect(ncSays(got)).To(Equal(r.Observed), "%s %s %d: nc said %q (status %d)", r.Client.Name, r.Address, r.Port.Number, got.stderr, got.status)
			seen[r.Observed] = true
		}
		Expect(seen).To(HaveKey(probe.Connected))
		Expect(seen).To(HaveKey(probe.Dropped))
		Expect(seen).To(HaveKey(probe.Refused))
	})

	Describe("a policy with host users and clients", func() {
		// docker-user-ipv4-only holds both: the host's admin and a container,
		// web, on docker0; its ip6tables-off variant drops web's SMTP in
		// DOCKER-USER on IPv4 and forwards it on IPv6.
		var dir string
		BeforeEach(func(ctx SpecContext) {
			dir = filepath.Join(GinkgoT().TempDir(), "entry")
			r := egresslab(ctx, ".", "scenarios", "--export", "docker-user-ipv4-only", dir)
			Expect(r.status).To(Equal(0), r.stderr)
		})

		It("gives one table, one JSON and one JUnit with both kinds of rows", func(ctx SpecContext) {
			table := egresslab(ctx, dir, "verify", "-f", "ip6tables-off.yaml")
			Expect(table.status).To(Equal(1), table.stderr)
			rows := map[string]string{}
			for _, line := range strings.Split(table.stdout, "\n") {
				// A row starts at the line's start; the failures below it are indented.
				if f := strings.Fields(line); len(f) > 0 && !strings.HasPrefix(line, " ") && (f[0] == "admin" || f[0] == "web@docker0") {
					Expect(rows).NotTo(HaveKey(f[0]), "one row per source")
					rows[f[0]] = strings.Join(f[1:], " ")
				}
			}
			Expect(rows).To(Equal(map[string]string{
				"admin":       "a. a. | a. a.",
				"web@docker0": "dX d.! | a. a.",
			}), table.stdout)

			junit := filepath.Join(dir, "junit.xml")
			js := egresslab(ctx, dir, "verify", "-f", "ip6tables-off.yaml", "--format", "json", "--junit", junit)
			Expect(js.status).To(Equal(1), js.stderr)
			var doc struct {
				Probes []map[string]any `json:"probes"`
			}
			Expect(json.Unmarshal([]byte(js.stdout), &doc)).To(Succeed())
			users, clients := 0, 0
			for _, p := range doc.Probes {
				switch {
				case p["user"] != nil:
					users++
					Expect(p).To(HaveKeyWithValue("user", "admin"))
					Expect(p).To(HaveKeyWithValue("uid", 1000.0))
					Expect(p).NotTo(HaveKey("client"))
				case p["client"] != nil:
					clients++
					Expect(p).To(HaveKeyWithValue("client", "web"))
					Expect(p).To(HaveKeyWithValue("network", "docker0"))
					Expect(p).NotTo(HaveKey("uid"))
					if p["observed"] == "connected" {
						// docker-user.v4 MASQUERADEs IPv4 out of the uplink; IPv6 is routed as is.
						want := map[string]string{"ipv4": "203.0.113.10", "ipv6": "fd00:db8:17::2"}[p["family"].(string)]
						Expect(p).To(HaveKeyWithValue("source", want), "%v", p)
					}
				}
			}
			Expect([]int{users, clients}).To(Equal([]int{4, 4}))

			raw, err := os.ReadFile(junit)
			Expect(err).NotTo(HaveOccurred())
			var suites struct {
				Cases []struct {
					Name    string    `xml:"name,attr"`
					Failure *struct{} `xml:"failure"`
				} `xml:"testsuite>testcase"`
			}
			Expect(xml.Unmarshal(raw, &suites)).To(Succeed())
			var names, failed []string
			for _, c := range suites.Cases {
				names = append(names, c.Name)
				if c.Failure != nil {
					failed = append(failed, c.Name)
				}
			}
			Expect(names).To(ContainElements(
				"admin -> mx.example.test [2001:db8::25]:25/tcp (ipv6)",
				"web@docker0 -> mx.example.test [192.0.2.25]:25/tcp (ipv4)",
			))
			Expect(names).To(HaveLen(8))
			Expect(failed).To(Equal([]string{"web@docker0 -> mx.example.test [2001:db8::25]:25/tcp (ipv6)"}))
		})

		It("fails under --parity exactly the client cells whose families differ", func(ctx SpecContext) {
			r := egresslab(ctx, dir, "verify", "-f", "ip6tables-off.yaml", "--parity", "--format", "json")
			Expect(r.status).To(Equal(1), r.stderr)
			var doc struct {
				Parity []map[string]any `json:"parity"`
			}
			Expect(json.Unmarshal([]byte(r.stdout), &doc)).To(Succeed())
			Expect(doc.Parity).To(Equal([]map[string]any{{
				"client": "web", "network": "docker0", "host": "mx.example.test", "port": 25.0, "proto": "tcp",
				"ipv4": []any{"dropped"}, "ipv6": []any{"connected"}, "line": 23.0,
			}}))

			fixed := egresslab(ctx, dir, "verify", "-f", "ip6tables-on.yaml", "--parity")
			Expect(fixed.status).To(Equal(0), fixed.stdout+fixed.stderr)
			Expect(fixed.stdout).NotTo(ContainSubstring("differ between IPv4 and IPv6"))
		})

		It("diffs the entry's two variants into the client cell that flips", func(ctx SpecContext) {
			r := egresslab(ctx, dir, "diff", "ip6tables-off.yaml", "ip6tables-on.yaml")
			Expect(r.status).To(Equal(0), r.stderr)
			var flipped []string
			for _, line := range strings.Split(r.stdout, "\n") {
				if strings.Contains(line, " -> ") && strings.HasPrefix(line, "  ") && !strings.HasPrefix(line, "    ") {
					flipped = append(flipped, strings.TrimSpace(line))
				}
			}
			Expect(flipped).To(Equal([]string{
				"web@docker0 -> mx.example.test [2001:db8::25]:25/tcp (ipv6): connected -> dropped   (expected deny: FAIL -> pass)",
			}), r.stdout)
			Expect(r.stdout).To(ContainSubstring("1 cell flipped, 0 now failing that passed"))
		})
	})
})
