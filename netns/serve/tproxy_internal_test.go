package serve

import (
	"net"
	"net/netip"
	"time"

	"github.com/google/nftables"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/egresslab/egresslab/netns"
)

// The TPROXY steering is what rootless labs use; here, as root, it is
// switched on by hand so that it runs in every test run, not only rootless.
var _ = Describe("TPROXY steering in the world (rootless labs' way instead of BPF)", Label("tproxy"), func() {
	var lab *netns.Lab
	var sv *Server
	BeforeEach(func(ctx SpecContext) {
		was := steersByTProxy
		steersByTProxy = func() bool { return true }
		DeferCleanup(func() { steersByTProxy = was })
		var err error
		lab, err = netns.New(ctx, netns.Config{Name: "tproxy",
			UplinkAddrs: []netip.Prefix{netip.MustParsePrefix("203.0.113.10/24"), netip.MustParsePrefix("2001:db8:1::10/64")}})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(lab.Close)
		sv = New(lab)
		Expect(sv.ServeRanges([]RangeService{
			{Host: "tcp.example.test", Addr: netip.MustParseAddr("192.0.2.80"), First: 1000, Last: 1010, Proto: "tcp"},
			{Host: "tcp.example.test", Addr: netip.MustParseAddr("2001:db8::80"), First: 1000, Last: 1010, Proto: "tcp"},
			{Host: "udp.example.test", Addr: netip.MustParseAddr("192.0.2.53"), First: 5000, Last: 5003, Proto: "udp"},
			{Host: "udp.example.test", Addr: netip.MustParseAddr("2001:db8::53"), First: 5000, Last: 5003, Proto: "udp"},
		})).To(Succeed())
		Expect(sv.ServeAnyAddress()).To(Succeed())
		// served after the catch-all: its own listener keeps its cell
		Expect(sv.Serve([]Service{{Host: "own.example.test", Addr: netip.MustParseAddr("198.51.100.7"), Port: 7, Proto: "tcp"}})).To(Succeed())
	})

	// dialTCP connects from the lab and names who answered.
	dialTCP := func(to string) (Service, error) {
		var c net.Conn
		if err := lab.Do(func() (err error) { c, err = net.DialTimeout("tcp", to, 5*time.Second); return err }); err != nil {
			return Service{}, err
		}
		defer c.Close()
		s, ok := sv.AwaitAnswered("tcp", c.LocalAddr().String(), c.RemoteAddr().String(), time.Now().Add(5*time.Second))
		if !ok {
			return Service{}, net.ErrClosed
		}
		return s, nil
	}
	// echoUDP sends a datagram from the lab and returns where the echo came
	// from and who answered.
	echoUDP := func(to string) (netip.AddrPort, Service, error) {
		var c *net.UDPConn
		if err := lab.Do(func() error {
			x, err := net.Dial("udp", to)
			if err == nil {
				c = x.(*net.UDPConn)
			}
			return err
		}); err != nil {
			return netip.AddrPort{}, Service{}, err
		}
		defer c.Close()
		if _, err := c.Write([]byte("ping")); err != nil {
			return netip.AddrPort{}, Service{}, err
		}
		Expect(c.SetReadDeadline(time.Now().Add(5 * time.Second))).To(Succeed())
		buf := make([]byte, 16)
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return netip.AddrPort{}, Service{}, err
		}
		Expect(string(buf[:n])).To(Equal("ping"))
		s, _ := sv.WhoAnswered("udp", c.LocalAddr().String(), c.RemoteAddr().String())
		return from, s, nil
	}

	It("steers every port of a range to its socket, which sees the address and port dialled", func() {
		for _, to := range []string{"192.0.2.80:1000", "192.0.2.80:1007", "[2001:db8::80]:1010"} {
			s, err := dialTCP(to)
			Expect(err).NotTo(HaveOccurred(), to)
			Expect(netip.AddrPortFrom(s.Addr, s.Port).String()).To(Equal(to))
			Expect(s.Host).To(Equal("tcp.example.test"))
		}
		for _, to := range []string{"192.0.2.53:5000", "192.0.2.53:5002", "[2001:db8::53]:5003"} {
			from, s, err := echoUDP(to)
			Expect(err).NotTo(HaveOccurred(), to)
			Expect(from.String()).To(Equal(to), "the echo leaves from the port dialled")
			Expect(netip.AddrPortFrom(s.Addr, s.Port).String()).To(Equal(to))
			Expect(s.Host).To(Equal("udp.example.test"))
		}
	})

	It("steers any other address and port to the catch-all, and leaves a served cell to its own listener", func() {
		for _, to := range []string{"198.51.100.9:4242", "[2001:db8:77::9]:22", "192.0.2.80:1011"} {
			s, err := dialTCP(to)
			Expect(err).NotTo(HaveOccurred(), to)
			Expect(netip.AddrPortFrom(s.Addr, s.Port).String()).To(Equal(to))
			Expect(s.Host).To(Equal(s.Addr.String()), "the catch-all answers as the address dialled")
		}
		from, s, err := echoUDP("[2001:db8:77::9]:9999")
		Expect(err).NotTo(HaveOccurred())
		Expect(from.String()).To(Equal("[2001:db8:77::9]:9999"))
		Expect(s.Host).To(Equal("2001:db8:77::9"))
		s, err = dialTCP("198.51.100.7:7")
		Expect(err).NotTo(HaveOccurred())
		Expect(s.Host).To(Equal("own.example.test"))
	})

	It("puts its rules in the world only, never in the lab's namespace, the candidate's", func() {
		for _, x := range []struct {
			fd   int
			want bool
		}{{lab.WorldNetNSFD(), true}, {lab.NetNSFD(), false}} {
			c, err := nftables.New(nftables.WithNetNSFd(x.fd))
			Expect(err).NotTo(HaveOccurred())
			tables, err := c.ListTables()
			Expect(err).NotTo(HaveOccurred())
			found := false
			for _, t := range tables {
				found = found || t.Name == tproxyTable
			}
			Expect(found).To(Equal(x.want))
		}
	})
})
