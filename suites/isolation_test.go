package suites_test

import (
	"os/exec"
	"strconv"
	"strings"

	"github.com/egresslab/egresslab/scenarios"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("the lab's isolation", Label("harness", "truth"), func() {
	It("gives a hostile script neither the world nor the host: its own /proc, IPC and UTS", func(ctx SpecContext) {
		p, err := scenarios.Load("../testdata/harness/hostile.yaml")
		Expect(err).NotTo(HaveOccurred())
		lab, err := scenarios.StartLab(ctx, p)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(lab.Close)
		sh := func(script string) string {
			GinkgoHelper()
			out, err := lab.Command(ctx, "sh", "-c", script).CombinedOutput()
			Expect(err).NotTo(HaveOccurred(), string(out))
			return strings.TrimSpace(string(out))
		}
		By("seeing only the lab's own processes")
		Expect(strconv.Atoi(sh(`ls /proc | grep -c '^[0-9]'`))).To(BeNumerically("<", 10))
		Expect(sh(`cat /proc/1/comm`)).NotTo(Equal("systemd"))

		By("finding no network namespace but the lab's own behind any descriptor")
		own := sh(`readlink /proc/self/ns/net`)
		Expect(sh(`for f in /proc/[0-9]*/fd/* /proc/[0-9]*/ns/net; do readlink "$f"; done 2>/dev/null | grep '^net:' | sort -u`)).To(Equal(own))
		Expect(sh(`nsenter -t 1 -n ip -o link show | awk '{print $2}' | tr -d ':' | sort | tr '\n' ' '`)).NotTo(ContainSubstring("lab@"))

		By("keeping its IPC objects out of the host's sight")
		key := sh(`ipcmk -Q | awk '{print $NF}'`)
		Expect(key).NotTo(BeEmpty())
		host, err := exec.Command("ipcs", "-q").CombinedOutput()
		Expect(err).NotTo(HaveOccurred())
		Expect(string(host)).NotTo(ContainSubstring(" " + key + " "))
		Expect(sh(`ipcs -q | grep -c '^0x' || true`)).To(Equal("1"))
	})
})
