package probe

import (
	"net/netip"

	"github.com/egresslab/egresslab/netns"
	"github.com/egresslab/egresslab/netns/sentinel"
	"github.com/egresslab/egresslab/netns/serve"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/sys/unix"
)

// The gather part against a fake lab: real sockets on the test's own
// loopback (no root, no traffic beyond it), the lab's evidence faked.
var _ = Describe("gathering a flow's facts", func() {
	loopback := netip.MustParseAddr("127.0.0.1")
	var lab *fakeLab
	BeforeEach(func() { lab = &fakeLab{} })

	// socketOn opens a socket of sotype bound to a free loopback port; with
	// backlog >= 0 a TCP socket listens. The port stays taken until cleanup.
	socketOn := func(sotype, backlog int) (int, uint16) {
		fd, err := unix.Socket(unix.AF_INET, sotype|unix.SOCK_CLOEXEC, 0)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(unix.Close, fd)
		Expect(unix.Bind(fd, &unix.SockaddrInet4{Addr: loopback.As4()})).To(Succeed())
		if backlog >= 0 {
			Expect(unix.Listen(fd, backlog)).To(Succeed())
		}
		sa, err := unix.Getsockname(fd)
		Expect(err).NotTo(HaveOccurred())
		return fd, uint16(sa.(*unix.SockaddrInet4).Port)
	}
	dial := func(ctx SpecContext, port uint16, proto string) Result {
		return Dial(ctx, lab, netns.Identity{}, Target{Addr: loopback, Port: port, Proto: proto}, 0)
	}

	It("gathers a connected flow: the handshake, and who answered", func(ctx SpecContext) {
		_, port := socketOn(unix.SOCK_STREAM, 8)
		lab.service = &serve.Service{Host: "relay.example.test", Addr: loopback, Port: port, Proto: "tcp"}
		r := dial(ctx, port, "tcp")
		Expect(r.Facts.Err).NotTo(HaveOccurred())
		Expect(r.Facts.Handshake).To(BeTrue())
		Expect(r.Facts.Departure).To(Equal(Unread), "the socket answered before the sentinel was asked")
		Expect(r.Facts.AnsweredBy).To(Equal(&Service{Host: "relay.example.test", Addr: loopback, Port: port, Proto: "tcp"}))
		Expect(r.Outcome).To(Equal(Connected))
		Expect(r.Evidence.Kind).To(Equal(Handshake))
		Expect(lab.released).To(HaveLen(1), "a flow that left hands its socket to the lab with its evidence")
	})

	It("gathers a reset: a port nobody listens on", func(ctx SpecContext) {
		_, port := socketOn(unix.SOCK_STREAM, -1)
		r := dial(ctx, port, "tcp")
		Expect(r.Facts.Reset).To(BeTrue())
		Expect(r.Facts.Handshake).To(BeFalse())
		Expect(r.Outcome).To(Equal(Refused))
		Expect(r.Evidence).To(Equal(Evidence{Kind: Reset}))
	})

	It("gathers a sentinel drop: the SYN went unanswered and the sentinel never saw it leave", func(ctx SpecContext) {
		// A listener whose accept queue is full discards the next SYN: the
		// probe's connect stays pending, as behind a DROP.
		lfd, port := socketOn(unix.SOCK_STREAM, 0)
		first, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(unix.Close, first)
		Expect(unix.Connect(first, &unix.SockaddrInet4{Addr: loopback.As4(), Port: int(port)})).To(Succeed())
		queued := []unix.PollFd{{Fd: int32(lfd), Events: unix.POLLIN}}
		n, err := unix.Poll(queued, 5000)
		Expect(err).NotTo(HaveOccurred())
		Expect(n).To(Equal(1), "the first connection fills the accept queue")

		r := dial(ctx, port, "tcp")
		Expect(lab.asked).To(Equal([]string{"egress"}))
		Expect(r.Facts.Departure).To(Equal(NeverLeft))
		Expect(r.Facts.Handshake).To(BeFalse())
		Expect(r.Outcome).To(Equal(Dropped))
		Expect(r.Evidence).To(Equal(Evidence{Kind: Egress, Where: Output}))
		Expect(lab.released).To(BeEmpty(), "a packet that never left has no evidence to remove")
	})

	It("gathers an ICMP port unreachable from the error queue", func(ctx SpecContext) {
		_, port := socketOn(unix.SOCK_STREAM, -1) // a TCP port: the UDP port beside it is free
		lab.left = true
		r := dial(ctx, port, "udp")
		Expect(r.Facts.ICMP).To(Equal(&ICMP{Version: 4, Type: 3, Code: 3}))
		Expect(r.Outcome).To(Equal(Refused))
	})

	It("gathers a silence's evidence: the answer died in OUTPUT, read at two looks", func(ctx SpecContext) {
		_, port := socketOn(unix.SOCK_DGRAM, -1) // bound, never answers
		lab.left, lab.where = true, sentinel.AnswerAtOutput
		r := dial(ctx, port, "udp")
		Expect(r.Facts.Departure).To(Equal(Departed))
		Expect(r.Facts.Silent).To(BeTrue())
		Expect(r.Facts.DropSite).To(Equal(AnswerAtOutput))
		Expect(lab.asked).To(Equal([]string{"left", "where", "where"}))
		Expect(r.Outcome).To(Equal(Dropped))
		Expect(r.Evidence).To(Equal(Evidence{Kind: ReturnPath, Where: Output, Packet: Answer}))
	})
})
