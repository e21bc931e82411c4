package probe

import (
	"context"
	"errors"
	"net/netip"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/sys/unix"
)

// One entry per verdict rule of decide: the facts a probe gathered, and the
// outcome and evidence they must give.
var _ = Describe("decide", func() {
	relay := &Service{Host: "relay.example.test", Addr: netip.MustParseAddr("192.0.2.25"), Port: 25, Proto: "tcp"}
	hop := netip.MustParseAddr("2001:db8:1::1")
	route := func(typ string) *HostRefusal {
		return &HostRefusal{What: RouteType, Route: netip.MustParsePrefix("203.0.113.0/24"), RouteType: typ}
	}
	linkDown := &HostRefusal{What: LinkDown, Link: "eth0"}
	icmp := func(version int, typ, code uint8) *ICMP { return &ICMP{Version: version, Type: typ, Code: code} }
	left := func(f Facts) Facts { f.Proto, f.Departure, f.Silent = "tcp", Departed, true; return f }

	DescribeTable("a verdict from facts alone",
		func(f Facts, outcome Outcome, ev Evidence) {
			o, got := decide(f)
			Expect(o).To(Equal(outcome))
			Expect(got).To(Equal(ev))
		},
		Entry("connected: the TCP handshake completed",
			Facts{Proto: "tcp", Handshake: true}, Connected, Evidence{Kind: Handshake}),
		Entry("connected, and the lab's service that answered is evidence",
			Facts{Proto: "tcp", Handshake: true, AnsweredBy: relay}, Connected, Evidence{Kind: Handshake, AnsweredBy: relay}),
		Entry("SMTP: connected once the 220 greeting was read",
			Facts{Proto: "tcp", SMTP: true, Handshake: true, Greeting: "220 relay ESMTP", AnsweredBy: relay}, Connected, Evidence{Kind: Handshake, AnsweredBy: relay}),
		Entry("SMTP: a greeting other than 220 is a probe error",
			Facts{Proto: "tcp", SMTP: true, Handshake: true, Greeting: "554 go away"}, Error, Evidence{Kind: Failure}),
		Entry("SMTP: the server greeted and nothing arrived: dropped at the backstop",
			Facts{Proto: "tcp", SMTP: true, Handshake: true, Greeted: true, Silent: true}, Dropped, Evidence{Kind: Backstop}),
		Entry("refused by a TCP reset",
			Facts{Proto: "tcp", Reset: true}, Refused, Evidence{Kind: Reset}),
		Entry("refused by ICMP port unreachable (3/3)",
			Facts{Proto: "udp", ICMP: icmp(4, 3, 3)}, Refused, Evidence{Kind: ICMPError, ICMP: icmp(4, 3, 3)}),
		Entry("refused by ICMPv6 port unreachable (1/4)",
			Facts{Proto: "udp", ICMP: icmp(6, 1, 4)}, Refused, Evidence{Kind: ICMPError, ICMP: icmp(6, 1, 4)}),
		Entry("rejected by ICMP administratively prohibited (3/13)",
			Facts{Proto: "tcp", ICMP: icmp(4, 3, 13)}, Rejected, Evidence{Kind: ICMPError, ICMP: icmp(4, 3, 13)}),
		Entry("rejected by ICMP host unreachable (3/1)",
			Facts{Proto: "tcp", ICMP: icmp(4, 3, 1)}, Rejected, Evidence{Kind: ICMPError, ICMP: icmp(4, 3, 1)}),
		Entry("rejected by ICMP host prohibited (3/10)",
			Facts{Proto: "tcp", ICMP: icmp(4, 3, 10)}, Rejected, Evidence{Kind: ICMPError, ICMP: icmp(4, 3, 10)}),
		Entry("rejected by ICMP net unreachable (3/0)",
			Facts{Proto: "tcp", ICMP: icmp(4, 3, 0)}, Rejected, Evidence{Kind: ICMPError, ICMP: icmp(4, 3, 0)}),
		Entry("rejected by ICMPv6 administratively prohibited (1/1)",
			Facts{Proto: "tcp", ICMP: icmp(6, 1, 1)}, Rejected, Evidence{Kind: ICMPError, ICMP: icmp(6, 1, 1)}),
		Entry("rejected by ICMPv6 no route (1/0)",
			Facts{Proto: "tcp", ICMP: icmp(6, 1, 0)}, Rejected, Evidence{Kind: ICMPError, ICMP: icmp(6, 1, 0)}),
		Entry("rejected by ICMPv6 reject route (1/6)",
			Facts{Proto: "tcp", ICMP: icmp(6, 1, 6)}, Rejected, Evidence{Kind: ICMPError, ICMP: icmp(6, 1, 6)}),
		Entry("rejected by ICMPv6 address unreachable (1/3) when discovery was not broken by the rules",
			Facts{Proto: "tcp", ICMP: icmp(6, 1, 3)}, Rejected, Evidence{Kind: ICMPError, ICMP: icmp(6, 1, 3)}),
		Entry("dropped with neighbour discovery's evidence: ICMPv6 1/3 after the rules broke discovery",
			Facts{Proto: "tcp", ICMP: icmp(6, 1, 3), Discovery: SolicitationAtOutput, Neighbour: hop},
			Dropped, Evidence{Kind: NeighbourDiscovery, Where: Output, Packet: Solicitation, Neighbour: "2001:db8:1::1", ICMP: icmp(6, 1, 3)}),
		Entry("dropped at egress: the sentinel never saw the SYN, nothing answered",
			Facts{Proto: "tcp", Departure: NeverLeft}, Dropped, Evidence{Kind: Egress, Where: Output}),
		Entry("dropped at egress: a UDP send failed with EPERM and nothing answered",
			Facts{Proto: "udp", SendEPERM: true, Departure: NeverLeft}, Dropped, Evidence{Kind: Egress, Where: Output, Errno: "EPERM"}),
		Entry("dropped on the return path: the request died in INPUT",
			left(Facts{DropSite: RequestAtInput}), Dropped, Evidence{Kind: ReturnPath, Where: Input, Packet: Request}),
		Entry("dropped on the return path: the answer died in OUTPUT",
			left(Facts{DropSite: AnswerAtOutput}), Dropped, Evidence{Kind: ReturnPath, Where: Output, Packet: Answer}),
		Entry("dropped on the return path: the answer died in INPUT",
			left(Facts{DropSite: AnswerAtInput}), Dropped, Evidence{Kind: ReturnPath, Where: Input, Packet: Answer}),
		Entry("ND broken: the solicitation died in OUTPUT",
			left(Facts{Discovery: SolicitationAtOutput, Neighbour: hop}), Dropped,
			Evidence{Kind: NeighbourDiscovery, Where: Output, Packet: Solicitation, Neighbour: "2001:db8:1::1"}),
		Entry("ND broken: the advertisement died in INPUT",
			left(Facts{Discovery: AdvertisementAtInput, Neighbour: hop}), Dropped,
			Evidence{Kind: NeighbourDiscovery, Where: Input, Packet: Advertisement, Neighbour: "2001:db8:1::1"}),
		Entry("ND broken: the router's solicitation died in INPUT",
			left(Facts{Discovery: RouterSolicitationAtInput, Neighbour: hop}), Dropped,
			Evidence{Kind: NeighbourDiscovery, Where: Input, Packet: Solicitation, Neighbour: "2001:db8:1::1"}),
		Entry("ND broken: the host's advertisement died in OUTPUT",
			left(Facts{Discovery: AdvertisementAtOutput, Neighbour: hop}), Dropped,
			Evidence{Kind: NeighbourDiscovery, Where: Output, Packet: Advertisement, Neighbour: "2001:db8:1::1"}),
		Entry("host refusal: no route is rejected",
			Facts{Proto: "tcp", Call: "connect", Errno: unix.ENETUNREACH, Host: &HostRefusal{What: NoRoute}},
			Rejected, Evidence{Kind: HostState, Errno: "ENETUNREACH", Host: &HostRefusal{What: NoRoute}}),
		Entry("host refusal: a prohibit route is rejected",
			Facts{Proto: "tcp", Call: "connect", Errno: unix.EACCES, Host: route("prohibit")},
			Rejected, Evidence{Kind: HostState, Errno: "EACCES", Host: route("prohibit")}),
		Entry("host refusal: an unreachable route is rejected",
			Facts{Proto: "tcp", Call: "connect", Errno: unix.EHOSTUNREACH, Host: route("unreachable")},
			Rejected, Evidence{Kind: HostState, Errno: "EHOSTUNREACH", Host: route("unreachable")}),
		Entry("host refusal: IPv6 switched off is rejected",
			Facts{Proto: "tcp", Call: "connect", Errno: unix.EADDRNOTAVAIL, Host: &HostRefusal{What: IPv6Off, Link: "all"}},
			Rejected, Evidence{Kind: HostState, Errno: "EADDRNOTAVAIL", Host: &HostRefusal{What: IPv6Off, Link: "all"}}),
		Entry("host refusal: a link down that refused connect() is rejected",
			Facts{Proto: "tcp", Call: "connect", Errno: unix.ENETUNREACH, Host: linkDown},
			Rejected, Evidence{Kind: HostState, Errno: "ENETUNREACH", Host: linkDown}),
		Entry("host refusal: a blackhole route is dropped",
			Facts{Proto: "tcp", Call: "connect", Errno: unix.EINVAL, Host: route("blackhole")},
			Dropped, Evidence{Kind: HostState, Errno: "EINVAL", Host: route("blackhole")}),
		Entry("a local refusal that no host state explains is a probe error",
			Facts{Proto: "tcp", Call: "connect", Errno: unix.EHOSTUNREACH}, Error, Evidence{Kind: Failure}),
		Entry("silence: a link down that swallowed the sent packet is dropped",
			left(Facts{Host: linkDown}), Dropped, Evidence{Kind: HostState, Host: linkDown}),
		Entry("silence: a blackhole route is dropped",
			left(Facts{Host: route("blackhole")}), Dropped, Evidence{Kind: HostState, Host: route("blackhole")}),
		Entry("silence: a host state that does not discard leaves it to the backstop",
			left(Facts{Host: route("unreachable")}), Dropped, Evidence{Kind: Backstop}),
		Entry("silence with no evidence: dropped at the backstop",
			left(Facts{}), Dropped, Evidence{Kind: Backstop}),
		Entry("a reject was sent but never reached the socket: a probe error",
			Facts{Proto: "tcp", Departure: NeverLeftAnswered, Silent: true}, Error, Evidence{Kind: Failure}),
		Entry("UDP: a reply came back",
			Facts{Proto: "udp", Departure: Departed, Replied: true, ReplyBytes: 16}, Connected, Evidence{Kind: Reply}),
		Entry("UDP: the lab's service that echoed is evidence",
			Facts{Proto: "udp", Departure: Departed, Replied: true, AnsweredBy: relay}, Connected, Evidence{Kind: Reply, AnsweredBy: relay}),
		Entry("a probe that could not run is an error, never blocked",
			Facts{Proto: "tcp", Departure: NeverLeft, Err: errors.New("read the sentinel")}, Error, Evidence{Kind: Failure}),
		Entry("a cancelled probe that did not connect is an error",
			Facts{Proto: "tcp", Departure: NeverLeft, Cancelled: context.Canceled}, Error, Evidence{Kind: Failure}),
		Entry("a cancelled probe that connected is connected",
			Facts{Proto: "tcp", Handshake: true, Cancelled: context.Canceled}, Connected, Evidence{Kind: Handshake}),
		Entry("facts that settle nothing are a probe error",
			Facts{Proto: "tcp", Backstop: time.Second}, Error, Evidence{Kind: Failure}),
	)

	It("asks decide whether a silence's evidence saves the backstop", func() {
		Expect(left(Facts{DropSite: AnswerAtInput}).silenceExplained()).To(BeTrue())
		Expect(left(Facts{Host: route("blackhole")}).silenceExplained()).To(BeTrue())
		Expect(left(Facts{Host: route("unreachable")}).silenceExplained()).To(BeFalse())
		Expect(left(Facts{}).silenceExplained()).To(BeFalse())
	})
})
