package suites_test

import (
	"os/exec"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// The plain lab of testdata/forward/plainlab.sh is the truth egresslab's
// forwarded-traffic lab will be compared with: real clients in namespaces of
// their own, routed by a host that loaded the ruleset with the real tools.
// These specs check the harness itself against what the kernel must do.
var _ = Describe("the plain forwarded lab (testdata/forward/plainlab.sh)", Label("forward", "real-client"), func() {
	const script = "../testdata/forward/plainlab.sh"
	topology := []string{
		"-n", "docker0", "-a", "172.17.0.1/16", "-a", "fd00:db8:17::1/64",
		"-c", "web=172.17.0.2,fd00:db8:17::2", "-c", "php=172.17.0.3",
		"-l", "192.0.2.25:25", "-l", "[2001:db8::25]:25", "-l", "192.0.2.25:443", "-l", "[2001:db8::25]:443",
		"-l", "192.0.2.25:587", "-l", "[2001:db8::25]:587",
	}
	run := func(ctx SpecContext, args ...string) []string {
		GinkgoHelper()
		out, err := exec.CommandContext(ctx, script, append(topology, args...)...).Output()
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		Expect(err).NotTo(HaveOccurred(), "plainlab.sh: %s", stderr)
		// Its namespaces go with it.
		netns, err := exec.CommandContext(ctx, "ip", "netns", "list").Output()
		Expect(err).NotTo(HaveOccurred())
		Expect(string(netns)).NotTo(MatchRegexp(`(?m)^pl\d+[hwc]`))
		return strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	}

	It("gives a Docker 27 host's verdicts: DOCKER-USER holds in both families, nat and conntrack bring answers back", func(ctx SpecContext) {
		got := run(ctx,
			"-4", "../testdata/forward/docker27/rules.v4", "-6", "../testdata/forward/docker27/rules.v6",
			"-d", "192.0.2.25:25", "-d", "[2001:db8::25]:25", "-d", "192.0.2.25:443", "-d", "[2001:db8::25]:443",
			"-d", "192.0.2.25:587", "-d", "[2001:db8::25]:587", "-d", "192.0.2.25:26")
		Expect(got).To(Equal([]string{
			"web 192.0.2.25 25 timeout",    // DOCKER-USER drops SMTP
			"web 2001:db8::25 25 timeout",  // ... over IPv6 too: Docker 27 writes ip6tables
			"web 192.0.2.25 443 connected", // masqueraded out, the answer de-natted and accepted by conntrack
			"web 2001:db8::25 443 connected",
			"web 192.0.2.25 587 refused", // REJECT --reject-with tcp-reset
			"web 2001:db8::25 587 refused",
			"web 192.0.2.25 26 refused", // forwarded, and the world has no listener there
			"php 192.0.2.25 25 timeout",
			"php 2001:db8::25 25 unreachable", // no IPv6 address, so no IPv6 route
			"php 192.0.2.25 443 connected",
			"php 2001:db8::25 443 unreachable",
			"php 192.0.2.25 587 refused",
			"php 2001:db8::25 587 unreachable",
			"php 192.0.2.25 26 refused",
		}))
	})

	It("lets IPv6 past DOCKER-USER when only the IPv4 rules are loaded, as on Docker 26", func(ctx SpecContext) {
		got := run(ctx, "-c", "x=172.17.0.9", "-4", "../testdata/forward/docker27/rules.v4",
			"-d", "192.0.2.25:25", "-d", "[2001:db8::25]:25")
		Expect(got).To(ContainElements("web 192.0.2.25 25 timeout", "web 2001:db8::25 25 connected"))
	})
})
