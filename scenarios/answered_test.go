package scenarios_test

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/egresslab/egresslab/netns"
	"github.com/egresslab/egresslab/scenarios"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// Who answered a probe is a fact of its connection, both ends of it: the
// kernel lets two connections share a source address and port when their
// destinations differ, and each must be named by its own service.
var _ = Describe("who answered a connection", func() {
	const twoWebs = `version: 1
name: answered
users:
  www-data: {uid: 33}
hosts:
  web.example.test:
    addresses: [192.0.2.80]
    ports: [80]
  web2.example.test:
    addresses: [192.0.2.81]
    ports: [80]
ruleset:
  iptables: r.rules
  ip6tables: r6.rules
expect:
  - allow: {}
`
	const accept6 = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"

	start := func(ctx SpecContext, rules string) (*scenarios.LabBench, *scenarios.Policy) {
		GinkgoHelper()
		dir := GinkgoT().TempDir()
		Expect(os.WriteFile(filepath.Join(dir, "r.rules"), []byte(rules), 0o644)).To(Succeed())
		Expect(os.WriteFile(filepath.Join(dir, "r6.rules"), []byte(accept6), 0o644)).To(Succeed())
		Expect(os.WriteFile(filepath.Join(dir, "p.yaml"), []byte(twoWebs), 0o644)).To(Succeed())
		p, err := scenarios.Load(filepath.Join(dir, "p.yaml"))
		Expect(err).NotTo(HaveOccurred())
		lab, err := scenarios.StartLab(ctx, p)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(lab.Close)
		return lab, p
	}

	It("names each service of two connections from one source address and port", func(ctx SpecContext) {
		lab, _ := start(ctx, accept6)
		dsts := []netip.AddrPort{netip.MustParseAddrPort("192.0.2.80:80"), netip.MustParseAddrPort("192.0.2.81:80")}
		port := 0
		var srcs []string
		for _, dst := range dsts {
			fd, err := lab.Socket(netns.Identity{UID: 33, GID: 33}, unix.AF_INET, unix.SOCK_STREAM)
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(unix.Close, fd)
			// Both sockets on one port, as connect() may pick for two
			// destinations: reuse lets the second bind where the first is.
			Expect(unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)).To(Succeed())
			Expect(unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)).To(Succeed())
			Expect(unix.Bind(fd, &unix.SockaddrInet4{Port: port})).To(Succeed())
			sa, err := unix.Getsockname(fd)
			Expect(err).NotTo(HaveOccurred())
			port = sa.(*unix.SockaddrInet4).Port
			err = unix.Connect(fd, &unix.SockaddrInet4{Addr: dst.Addr().As4(), Port: int(dst.Port())})
			Expect(err).To(MatchError(unix.EINPROGRESS))
			// the handshake's end: the socket becomes writable
			pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
			n, err := unix.Poll(pfd, 10_000)
			Expect(err).NotTo(HaveOccurred())
			Expect(n).To(Equal(1), "connect to %s", dst)
			soErr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
			Expect(err).NotTo(HaveOccurred())
			Expect(soErr).To(BeZero(), "connect to %s", dst)
			sa, err = unix.Getsockname(fd)
			Expect(err).NotTo(HaveOccurred())
			in := sa.(*unix.SockaddrInet4)
			srcs = append(srcs, netip.AddrPortFrom(netip.AddrFrom4(in.Addr), uint16(in.Port)).String())
		}
		Expect(srcs[1]).To(Equal(srcs[0]), "both connections from one address and port")
		deadline := time.Now().Add(10 * time.Second)
		web, ok := lab.AwaitAnswered("tcp", srcs[0], dsts[0].String(), deadline)
		Expect(ok).To(BeTrue())
		web2, ok := lab.AwaitAnswered("tcp", srcs[1], dsts[1].String(), deadline)
		Expect(ok).To(BeTrue())
		Expect([]string{web.String(), web2.String()}).To(Equal([]string{
			"web.example.test 192.0.2.80:80/tcp", "web2.example.test 192.0.2.81:80/tcp",
		}))
	})

	// answeredBy probes every cell of the lab and names who answered each.
	answeredBy := func(ctx SpecContext, lab *scenarios.LabBench, p *scenarios.Policy) map[string]string {
		GinkgoHelper()
		rep, err := scenarios.ProbeAll(ctx, lab, p, scenarios.RunOptions{NoRule: true})
		Expect(err).NotTo(HaveOccurred())
		by := map[string]string{}
		for _, r := range rep.Results {
			Expect(r.Evidence.AnsweredBy).NotTo(BeNil(), "who answered %s", r.Probe)
			s := r.Evidence.AnsweredBy
			by[r.Address.String()] = fmt.Sprintf("%s %s/%s", s.Host, netip.AddrPortFrom(s.Addr, s.Port), s.Proto)
		}
		return by
	}
	const nat = "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"

	It("names the service a candidate's DNAT sent a probe to, not the one it dialled", func(ctx SpecContext) {
		lab, p := start(ctx, nat+"-A OUTPUT -d 192.0.2.80 -p tcp --dport 80 -j DNAT --to-destination 192.0.2.81:80\nCOMMIT\n"+accept6)
		Expect(answeredBy(ctx, lab, p)).To(Equal(map[string]string{
			"192.0.2.80": "web2.example.test 192.0.2.81:80/tcp",
			"192.0.2.81": "web2.example.test 192.0.2.81:80/tcp",
		}))
	})

	It("names the service of a probe whose source port the candidate's nat rewrote", func(ctx SpecContext) {
		lab, p := start(ctx, nat+"-A POSTROUTING -d 192.0.2.81 -p tcp -j MASQUERADE --to-ports 61000-61010\nCOMMIT\n"+accept6)
		Expect(answeredBy(ctx, lab, p)).To(Equal(map[string]string{
			"192.0.2.80": "web.example.test 192.0.2.80:80/tcp",
			"192.0.2.81": "web2.example.test 192.0.2.81:80/tcp",
		}))
	})
})
