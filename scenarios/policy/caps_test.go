package policy_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing/fstest"

	"github.com/egresslab/egresslab/scenarios/policy"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// capPolicy is a policy of users users and hosts hosts, each host with one
// address serving ports 1-N/tcp.
func capPolicy(users, hosts, ports int) *fstest.MapFile {
	var b strings.Builder
	b.WriteString("version: 1\nusers:\n")
	for i := range users {
		fmt.Fprintf(&b, "  u%d: {uid: %d}\n", i, 1000+i)
	}
	b.WriteString("hosts:\n")
	for i := range hosts {
		fmt.Fprintf(&b, "  h%d.example.test:\n    addresses: [198.18.%d.%d]\n    ports: [1-%d/tcp]\n", i, i/250, i%250+1, ports)
	}
	b.WriteString("expect:\n  - allow: {}\n")
	return &fstest.MapFile{Data: []byte(b.String())}
}

var _ = Describe("the policy's size caps", Label("safety"), func() {
	It("refuses a matrix past MaxProbes before allocating it", func() {
		fsys := fstest.MapFS{"huge.yaml": capPolicy(200, 2, 65535)}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := policy.LoadFS(fsys, "huge.yaml")
		runtime.ReadMemStats(&after)
		Expect(err).To(MatchError(ContainSubstring("huge.yaml:203:1: the matrix (users × each host's addresses × its ports) is 26214000 probes: a policy may have at most 1000000")))
		Expect(after.TotalAlloc-before.TotalAlloc).To(BeNumerically("<", 16<<20), "bytes allocated to refuse it")
	})

	It("takes exactly MaxProbes and refuses one more", func() {
		// 16 hosts × 62,500 ports = 1,000,000 probes for one user.
		Expect(policy.LoadFS(fstest.MapFS{"p.yaml": capPolicy(1, 16, 62500)}, "p.yaml")).Error().NotTo(HaveOccurred())
		Expect(policy.LoadFS(fstest.MapFS{"p.yaml": capPolicy(1, 16, 62501)}, "p.yaml")).Error().
			To(MatchError(ContainSubstring("is 1000016 probes: a policy may have at most 1000000")))
	})

	It("takes the 131,070-probe sweep of every TCP port", func() {
		p, err := policy.Load("../../testdata/bench/sweep.yaml")
		Expect(err).NotTo(HaveOccurred())
		Expect(p.Size()).To(Equal(131070))
	})

	It("takes MaxServices sockets and refuses more", func() {
		Expect(policy.LoadFS(fstest.MapFS{"p.yaml": capPolicy(1, 10000, 1)}, "p.yaml")).Error().NotTo(HaveOccurred())
		Expect(policy.LoadFS(fstest.MapFS{"p.yaml": capPolicy(1, 10001, 1)}, "p.yaml")).Error().
			To(MatchError(ContainSubstring("the hosts serve 10001 addresses and ports")))
	})
})
