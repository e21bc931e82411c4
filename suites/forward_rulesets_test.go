package suites_test

import (
	"os/exec"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// Real rulesets as users have them (testdata/forward/<engine>/, each citing
// the source it was written from), loaded by the real tools into the plain
// lab's router host, with real clients behind the engine's own bridge.
var _ = Describe("engines' real rulesets in the plain forwarded lab", Label("forward", "real-client"), func() {
	const script = "../testdata/forward/plainlab.sh"
	world := []string{"-l", "192.0.2.25:25", "-l", "[2001:db8::25]:25", "-l", "192.0.2.25:443", "-l", "[2001:db8::25]:443",
		"-d", "192.0.2.25:25", "-d", "[2001:db8::25]:25", "-d", "192.0.2.25:443", "-d", "[2001:db8::25]:443", "-d", "192.0.2.25:26"}
	run := func(ctx SpecContext, args ...string) []string {
		GinkgoHelper()
		out, err := exec.CommandContext(ctx, script, append(args, world...)...).Output()
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		Expect(err).NotTo(HaveOccurred(), "plainlab.sh: %s", stderr)
		return strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	}

	It("Docker 26 on a user-defined network (br-5f3a2c1d9e8b): DOCKER-USER drops SMTP over IPv4, and IPv6, with no ip6tables rules at all, is forwarded", func(ctx SpecContext) {
		Expect(run(ctx, "-n", "br-5f3a2c1d9e8b", "-a", "172.18.0.1/16", "-a", "fd00:db8:18::1/64", "-c", "app=172.18.0.2,fd00:db8:18::2",
			"-4", "../testdata/forward/docker26/rules.v4")).To(Equal([]string{
			"app 192.0.2.25 25 timeout",
			"app 2001:db8::25 25 connected", // the bypass of moby #42477
			"app 192.0.2.25 443 connected",
			"app 2001:db8::25 443 connected",
			"app 192.0.2.25 26 refused",
		}))
	})

	It("Docker 28.0 (docker0, DOCKER-FORWARD matching the docker-ext-bridges ipsets): DOCKER-USER drops SMTP in both families", func(ctx SpecContext) {
		Expect(run(ctx, "-n", "docker0", "-a", "172.17.0.1/16", "-a", "fd00:db8:17::1/64", "-c", "web=172.17.0.2,fd00:db8:17::2",
			"-S", "../testdata/forward/docker28/docker28.sh")).To(Equal([]string{
			"web 192.0.2.25 25 timeout",
			"web 2001:db8::25 25 timeout",
			"web 192.0.2.25 443 connected",
			"web 2001:db8::25 443 connected",
			"web 192.0.2.25 26 refused",
		}))
	})

	It("netavark's table inet netavark (podman0): both families forwarded and masqueraded, nothing filtered", func(ctx SpecContext) {
		Expect(run(ctx, "-n", "podman0", "-a", "10.88.0.1/16", "-a", "fd00:db8:88::1/64", "-c", "app=10.88.0.2,fd00:db8:88::2",
			"-N", "../testdata/forward/netavark/netavark.nft")).To(Equal([]string{
			"app 192.0.2.25 25 connected",
			"app 2001:db8::25 25 connected",
			"app 192.0.2.25 443 connected",
			"app 2001:db8::25 443 connected",
			"app 192.0.2.25 26 refused",
		}))
	})

	It("libvirt's default network (virbr0, IPv4 only): a VM's connections masqueraded out by LIBVIRT_PRT, accepted by LIBVIRT_FWO", func(ctx SpecContext) {
		Expect(run(ctx, "-n", "virbr0", "-a", "192.168.122.1/24", "-c", "vm=192.168.122.2",
			"-4", "../testdata/forward/libvirt/rules.v4")).To(Equal([]string{
			"vm 192.0.2.25 25 connected",
			"vm 2001:db8::25 25 unreachable", // no IPv6 on the default network: no route
			"vm 192.0.2.25 443 connected",
			"vm 2001:db8::25 443 unreachable",
			"vm 192.0.2.25 26 refused",
		}))
	})
})
