package suites_test

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// runBinary runs egresslab (or a wrapper in front of it: setpriv, unshare)
// and returns its stdout, stderr and exit status.
func runBinary(ctx SpecContext, argv ...string) (stdout, stderr string, code int) {
	GinkgoHelper()
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		Fail(fmt.Sprintf("%v: %v", argv, err))
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

var doctorSteps = []string{
	"privileges to run a lab",
	"a user namespace with the lab's ids (uids and gids 0-65535)",
	"a network namespace",
	"a veth pair",
	"an nft table",
	"an owner match (nft meta skuid)",
	"an owner match (iptables-nft -m owner)",
	"an owner match (iptables-legacy -m owner)",
	"the tools a lab runs",
}

var _ = Describe("egresslab doctor", Label("doctor"), func() {
	It("passes every step here, as root, and exits 0", func(ctx SpecContext) {
		out, errOut, code := runBinary(ctx, egresslabBinary(), "doctor")
		Expect(code).To(Equal(0), "%s%s", out, errOut)
		for _, step := range doctorSteps {
			Expect(out).To(ContainSubstring("\nok      "+step+"\n"), out)
		}
		Expect(out).To(HaveSuffix("labs can run here\n"))
	})

	It("explains root without the capabilities a lab needs (an unprivileged container): exit 3, which ones, --privileged or --cap-add", func(ctx SpecContext) {
		out, errOut, code := runBinary(ctx, "setpriv", "--bounding-set", "-sys_admin,-net_admin", "--inh-caps", "-sys_admin,-net_admin",
			egresslabBinary(), "doctor")
		Expect(code).To(Equal(3), "%s%s", out, errOut)
		Expect(out).To(ContainSubstring("FAILED  privileges to run a lab: root without CAP_SYS_ADMIN, CAP_NET_ADMIN\n"))
		Expect(out).To(ContainSubstring("fix: run the container with --privileged (or --cap-add SYS_ADMIN --cap-add NET_ADMIN "))
		Expect(errOut).To(Equal("egresslab: 1 of 9 steps failed: labs cannot run here until they pass\n"))
	})

	It("explains a user namespace that maps too few ids (unshare --user --map-root-user), and verify says the same instead of a raw fork/exec error", func(ctx SpecContext) {
		out, errOut, code := runBinary(ctx, "unshare", "--user", "--map-root-user", egresslabBinary(), "doctor")
		Expect(code).To(Equal(3), "%s%s", out, errOut)
		Expect(out).To(ContainSubstring("FAILED  a user namespace with the lab's ids (uids and gids 0-65535): this process runs in a user namespace that does not map host ids 1879048192-1879113727 (its uid_map: 0 0 1)\n"))
		Expect(out).To(ContainSubstring("run egresslab as real root, outside that namespace"))
		Expect(out).To(ContainSubstring("\nok      a network namespace\n"), "the kernel features are tried apart from the id range")

		out, errOut, code = runBinary(ctx, "unshare", "--user", "--map-root-user", egresslabBinary(), "verify", "-f", "../testdata/examples/mail-ipt46.yaml")
		Expect(code).To(Equal(3), "%s%s", out, errOut)
		Expect(errOut).NotTo(ContainSubstring("fork/exec"))
		Expect(errOut).To(ContainSubstring("this machine cannot run a lab (egresslab doctor tries each step):\n  a user namespace with the lab's ids (uids and gids 0-65535): FAILED: "))
		Expect(errOut).To(ContainSubstring("    fix: egresslab is running inside a user namespace that maps only part of the ids"))
	})
	// As a user (rootless): rootless_test.go, whose test user exists only in
	// a private mount namespace's /etc.
})
