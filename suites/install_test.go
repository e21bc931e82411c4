package suites_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// A binary built from a clean checkout says which commit it is: the Go
// toolchain stamps the module version and the VCS commit, and `egresslab
// version` prints them. (go install from the module proxy stamps the
// version the same way; a git worktree is not stamped, golang/go#58218, so
// the spec builds in a fresh clone.)
var _ = It("egresslab version prints the module version and the commit a clean checkout was built from",
	Label("install"), SpecTimeout(5*time.Minute), func(ctx SpecContext) {
		git := func(args ...string) string {
			GinkgoHelper()
			out, err := exec.CommandContext(ctx, "git", args...).CombinedOutput()
			Expect(err).NotTo(HaveOccurred(), "git %s: %s", strings.Join(args, " "), out)
			return strings.TrimSpace(string(out))
		}
		head := git("-C", "..", "rev-parse", "HEAD")
		clone := filepath.Join(GinkgoT().TempDir(), "egresslab")
		git("clone", "-q", "--no-checkout", "..", clone)
		git("-C", clone, "checkout", "-q", head)

		build := exec.CommandContext(ctx, "go", "build", "-buildvcs=true", "-o", "egresslab", "./cmd/egresslab")
		build.Dir = clone
		build.Env = append(os.Environ(), "GOFLAGS=") // a machine-wide -buildvcs=false must not hide the stamp
		out, err := build.CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), "go build: %s", out)

		want := regexp.MustCompile(`^egresslab v\S+-` + head[:12] + ` \(commit ` + head + `, \d{4}-\d\d-\d\dT[\d:]+Z; go1\.\S+\)\n$`)
		for _, args := range [][]string{{"version"}, {"--version"}} {
			out, err := exec.CommandContext(ctx, filepath.Join(clone, "egresslab"), args...).CombinedOutput()
			Expect(err).NotTo(HaveOccurred(), "%s", out)
			Expect(string(out)).To(MatchRegexp(want.String()), "egresslab %s", args[0])
		}
	})
