package suites_test

import (
	"regexp"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// A policy's mistakes come all at once, each at its place; what is valid
// but probably not meant is a warning on stderr that fails nothing.
const warningsDir = "../testdata/warnings"

var _ = Describe("policy errors and warnings, as a new user meets them", Label("errors"), func() {
	It("reports three typos of one policy in one run: three errors, each with file:line:col, exit 2", func(ctx SpecContext) {
		r := egresslab(ctx, warningsDir, "verify", "-f", "three-typos.yaml")
		Expect(r.status).To(Equal(2), r.stderr)
		Expect(r.stdout).To(BeEmpty())
		Expect(strings.TrimPrefix(r.stderr, "egresslab: ")).To(Equal(
			"three-typos.yaml:4:23: unknown key \"gdi\" in user \"postfix\": want uid, gid or groups\n" +
				"three-typos.yaml:8:13: port of host \"mx.example.test\": bad protocol in port \"25/tcpp\": want tcp or udp\n" +
				"three-typos.yaml:10:19: unknown user \"postfx\": want one of postfix\n"))
	})

	It("annotates each of the policy's errors at its own line under --format github", func(ctx SpecContext) {
		r := egresslab(ctx, warningsDir, "verify", "-f", "three-typos.yaml", "--format", "github")
		Expect(r.status).To(Equal(2), r.stderr)
		Expect(r.stdout).To(Equal(
			"::error file=three-typos.yaml,line=4,title=egresslab three-typos%3A exit status 2::unknown key \"gdi\" in user \"postfix\": want uid, gid or groups\n" +
				"::error file=three-typos.yaml,line=8,title=egresslab three-typos%3A exit status 2::port of host \"mx.example.test\": bad protocol in port \"25/tcpp\": want tcp or udp\n" +
				"::error file=three-typos.yaml,line=10,title=egresslab three-typos%3A exit status 2::unknown user \"postfx\": want one of postfix\n"))
	})

	It("warns, without failing, on an entry that selects no probe and on a host with no IPv6 address", func(ctx SpecContext) {
		r := egresslab(ctx, warningsDir, "lint", "-f", "warnings.yaml")
		Expect(r.status).To(Equal(0), r.stderr)
		Expect(r.stderr).To(ContainSubstring(`warnings.yaml:7:3: warning: host "mx.example.test" has no IPv6 address: it gets no IPv6 cells`))
		Expect(r.stderr).To(ContainSubstring("warnings.yaml:12:5: warning: this allow entry selects no probe"))
		Expect(r.stderr).NotTo(ContainSubstring("--parity"))
	})

	It("says louder under --parity that a single-family host has nothing to compare", SpecTimeout(time.Minute), func(ctx SpecContext) {
		r := egresslab(ctx, warningsDir, "verify", "--parity", "-f", "warnings.yaml")
		Expect(r.status).To(Equal(0), r.stderr)
		Expect(r.stderr).To(ContainSubstring(`egresslab: WARNING: --parity cannot check host "mx.example.test": it has no IPv6 address`))
	})

	It("names the user a ruleset's owner match needs and the policy lacks, at its place in the ruleset, before any tool runs", func(ctx SpecContext) {
		r := egresslab(ctx, warningsDir, "verify", "-f", "unknown-owner.yaml")
		Expect(r.status).To(Equal(2), r.stderr)
		Expect(r.stderr).To(Equal("egresslab: unknown-owner.rules:4:50: --uid-owner mailer: no user \"mailer\" in the policy: " +
			"the lab's /etc/passwd holds only root and the policy's users (root, postfix); add mailer to users\n"))
		Expect(r.stderr).NotTo(ContainSubstring("Bad value"))
	})

	It("lint FILES looks up no owner name on this host: it says the name is not known", func(ctx SpecContext) {
		// root is a name every passwd has; postfix may well be in this
		// host's, and must not be found there.
		r := egresslab(ctx, warningsDir, "lint", "unknown-owner.rules")
		Expect(r.status).To(Equal(2), r.stderr)
		Expect(r.stderr).To(MatchRegexp(regexp.QuoteMeta(`unknown-owner.rules:3: egresslab lint: --uid-owner postfix: user "postfix" is not known: lint FILES looks up no names on this host`)))
	})
})

// policyWarning is a line of a policy's warnings on stderr (they fail nothing).
var policyWarning = regexp.MustCompile(`(?m)^egresslab: \S+:\d+:\d+: warning: .*\n`)

// withoutWarnings is stderr without the policy's warnings, for a spec about
// something else that compares stderr whole.
func withoutWarnings(stderr string) string { return policyWarning.ReplaceAllString(stderr, "") }
