package serve

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/egresslab/egresslab/netns"
	"golang.org/x/sys/unix"
)

// A port range is served by one socket, not one per port. A socket per port
// costs a file descriptor and kernel memory each: a 65,535-port sweep of one
// host's two addresses ran out of descriptors (EMFILE) after 124 MB. On lo a
// socket per port would also take the ports away from the lab's own clients,
// whose kernel-chosen ephemeral ports must not be bound by anyone.
//
// The kernel's mechanism for "one socket, many ports" is BPF sk_lookup (Linux
// 5.9): a program attached to a network namespace picks the socket for each
// TCP SYN and UDP datagram that arrives for a port of the range. It runs where
// the kernel looks a socket up, after every netfilter hook: the candidate's
// rules see the packet as sent, there is no NAT (no conntrack state a
// `--ctorigdstport` or `ct status dnat` rule could see), and nothing of it is in
// the ruleset, which the candidate may flush. The answer leaves from the port
// that was dialled. nft redirect or tproxy would do in the world, which is the
// harness's; on the lab's lo they would be rules in the candidate's namespace.
// Rootless labs cannot load BPF: the world steers with tproxy (tproxy.go).

// RangeService is a range of ports on one address that the lab serves.
type RangeService struct {
	Host        string
	Addr        netip.Addr
	First, Last uint16
	Proto       string         // "tcp" or "udp"
	ServedBy    netns.Identity // as Service.ServedBy
}

func (r RangeService) String() string {
	return fmt.Sprintf("%s %s-%d/%s", r.Host, netip.AddrPortFrom(r.Addr, r.First), r.Last, r.Proto)
}

// ServeRanges serves every port of each range as Serve serves one: SMTP,
// HTTP, HTTPS and DNS ports in a range answer as such (each with a listener
// of its own), other TCP ports accept, UDP ports echo.
func (sv *Server) ServeRanges(ranges []RangeService) error {
	var single []Service
	var lab, world []RangeService
	for _, r := range ranges {
		for _, part := range carveServed(r, &single) {
			if part.Addr.IsLoopback() {
				lab = append(lab, part)
			} else {
				world = append(world, part)
			}
		}
	}
	if err := sv.Serve(single); err != nil {
		return err
	}
	for _, x := range []struct {
		ns     int
		ranges []RangeService
	}{{sv.lab.NetNSFD(), lab}, {sv.lab.WorldNetNSFD(), world}} {
		if len(x.ranges) == 0 {
			continue
		}
		if x.ns == sv.lab.WorldNetNSFD() && sv.anyAddr {
			// its program would run after the catch-all's, which picks first
			return fmt.Errorf("serve port ranges in lab %s: the world already answers any address; serve ranges before it", sv.lab.Name())
		}
		for _, r := range x.ranges {
			if err := sv.lab.AddWorldAddress(r.Addr); err != nil {
				return err
			}
		}
		serve := sv.serveRanges
		if steersByTProxy() {
			serve = sv.tproxyRanges
			if x.ns == sv.lab.NetNSFD() {
				serve = sv.loopbackRanges
			}
		}
		if err := serve(x.ns, x.ranges); err != nil {
			return fmt.Errorf("serve port ranges in lab %s: %w", sv.lab.Name(), err)
		}
	}
	return nil
}

// carveServed moves the ports of a range that get a server of their own
// (ServedAlone) to single and returns the ranges left around them.
func carveServed(r RangeService, single *[]Service) []RangeService {
	var alone []uint16
	for p := int(r.First); p <= int(r.Last); p++ {
		if ServedAlone(uint16(p), r.Proto) {
			alone = append(alone, uint16(p))
		}
	}
	var parts []RangeService
	next := int(r.First)
	for _, p := range alone {
		*single = append(*single, Service{Host: r.Host, Addr: r.Addr, Port: p, Proto: r.Proto, ServedBy: r.ServedBy})
		if int(p) > next {
			parts = append(parts, RangeService{r.Host, r.Addr, uint16(next), p - 1, r.Proto, r.ServedBy})
		}
		next = int(p) + 1
	}
	if next <= int(r.Last) {
		parts = append(parts, RangeService{r.Host, r.Addr, uint16(next), r.Last, r.Proto, r.ServedBy})
	}
	return parts
}

// serveRanges opens a socket per range in one namespace, bound to the range's
// first port, and attaches a program that steers the rest of the range to it.
func (sv *Server) serveRanges(nsFD int, ranges []RangeService) error {
	sockets, err := ebpf.NewMap(&ebpf.MapSpec{
		Type: ebpf.SockMap, KeySize: 4, ValueSize: 8, MaxEntries: uint32(len(ranges)),
	})
	if err != nil {
		return netns.RootlessBPF(fmt.Errorf("create the socket map (BPF, needs CAP_BPF on the host): %w", err), "port ranges on the lab's loopback")
	}
	sv.lab.OnClose(sockets.Close)
	for i, r := range ranges {
		fd, _, err := sv.listenRange(r, false)
		if err != nil {
			return err
		}
		if err := sockets.Put(uint32(i), uint64(fd)); err != nil {
			return fmt.Errorf("add the socket of %s to the socket map: %w", r, err)
		}
	}
	return sv.attachSteering(nsFD, "egl_ranges", steerProgram(ranges, sockets.FD()))
}

// Offsets in struct bpf_sk_lookup (include/uapi/linux/bpf.h).
const (
	skLookupFamily    = 8
	skLookupProtocol  = 12
	skLookupLocalIP4  = 40
	skLookupLocalIP6  = 44
	skLookupLocalPort = 60 // host byte order
)

// steerProgram is, for each range i in order: if the packet is for the
// range's protocol, family, address and a port in it, assign it to socket i of
// sockets. Everything else is looked up as usual.
func steerProgram(ranges []RangeService, sockets int) asm.Instructions {
	label := func(i int) string { return fmt.Sprintf("range%d", i) }
	insns := asm.Instructions{asm.Mov.Reg(asm.R6, asm.R1)} // R6: the context, kept across calls
	for i, r := range ranges {
		next := label(i + 1)
		proto, family, addrAt := unix.IPPROTO_TCP, unix.AF_INET, int16(skLookupLocalIP4)
		if r.Proto == "udp" {
			proto = unix.IPPROTO_UDP
		}
		if r.Addr.Is6() {
			family, addrAt = unix.AF_INET6, skLookupLocalIP6
		}
		insns = append(insns,
			asm.LoadMem(asm.R2, asm.R6, skLookupProtocol, asm.Word).WithSymbol(label(i)),
			asm.JNE.Imm32(asm.R2, int32(proto), next),
			asm.LoadMem(asm.R2, asm.R6, skLookupFamily, asm.Word),
			asm.JNE.Imm32(asm.R2, int32(family), next),
			asm.LoadMem(asm.R2, asm.R6, skLookupLocalPort, asm.Word),
			asm.JLT.Imm32(asm.R2, int32(r.First), next),
			asm.JGT.Imm32(asm.R2, int32(r.Last), next),
		)
		addr := r.Addr.AsSlice()
		for w := 0; w < len(addr); w += 4 {
			// The context holds the address in network byte order; a word
			// load reads those bytes in the machine's order.
			word := binary.NativeEndian.Uint32(addr[w : w+4])
			insns = append(insns,
				asm.LoadMem(asm.R2, asm.R6, addrAt+int16(w), asm.Word),
				asm.JNE.Imm32(asm.R2, int32(word), next),
			)
		}
		insns = append(insns,
			asm.StoreImm(asm.RFP, -4, int64(i), asm.Word),
			asm.LoadMapPtr(asm.R1, sockets),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, -4),
			asm.FnMapLookupElem.Call(),
			asm.JEq.Imm(asm.R0, 0, label(len(ranges))),
			asm.Mov.Reg(asm.R7, asm.R0),
			asm.Mov.Reg(asm.R1, asm.R6),
			asm.Mov.Reg(asm.R2, asm.R7),
			asm.Mov.Imm(asm.R3, 0),
			asm.FnSkAssign.Call(),
			asm.Mov.Reg(asm.R1, asm.R7),
			asm.FnSkRelease.Call(),
			asm.Ja.Label(label(len(ranges))),
		)
	}
	return append(insns,
		asm.Mov.Imm(asm.R0, 1).WithSymbol(label(len(ranges))), // SK_PASS
		asm.Return(),
	)
}

// listenRange opens the range's socket (bound to its first port) and serves
// it: TCP accepts and holds, UDP echoes from the port that was dialled. It
// returns the socket's descriptor, which stays the lab's until it closes,
// and its address. transparentSocket makes it one TPROXY may steer to.
func (sv *Server) listenRange(r RangeService, transparentSocket bool) (int, netip.AddrPort, error) {
	// As Serve: the world's sockets belong to the harness, those on the
	// lab's loopback answer as their identity.
	in := sv.lab.DoWorld
	if r.Addr.IsLoopback() {
		in = sv.listenAs(r.ServedBy)
	}
	at := netip.AddrPortFrom(r.Addr, r.First)
	// Plain TCP: Go listens with MPTCP by default, and an MPTCP socket cannot
	// go in a socket map.
	var lc net.ListenConfig
	lc.SetMultipathTCP(false)
	if transparentSocket {
		lc.Control = transparent
	}
	if r.Proto == "udp" {
		var pc *net.UDPConn
		err := in(func() error {
			c, err := lc.ListenPacket(context.Background(), "udp", at.String())
			if err != nil {
				return err
			}
			pc = c.(*net.UDPConn)
			return recvOrigDst(pc, r.Addr.Is6())
		})
		if err != nil {
			return -1, at, fmt.Errorf("listen on %s: %w", r, err)
		}
		sv.lab.OnClose(pc.Close)
		go sv.echoRange(pc, in, r)
		fd, err := connFD(pc)
		return fd, at, err
	}
	var ln *net.TCPListener
	if err := in(func() error {
		x, err := lc.Listen(context.Background(), "tcp", at.String())
		if err == nil {
			ln = x.(*net.TCPListener)
		}
		return err
	}); err != nil {
		return -1, at, fmt.Errorf("listen on %s: %w", r, err)
	}
	fd, err := connFD(ln)
	if err != nil {
		ln.Close()
		return -1, at, err
	}
	var accept net.Listener = ln
	if r.Addr.IsLoopback() {
		if accept, err = sv.acceptAs(ln, r.ServedBy); err != nil {
			ln.Close()
			return -1, at, fmt.Errorf("listen on %s: %w", r, err)
		}
	}
	sv.lab.OnClose(accept.Close)
	go sv.acceptRange(accept, r)
	return fd, at, nil
}

// acceptRange accepts and holds each connection, recording which port of the
// range it was for (its local port: there is no NAT in the way).
func (sv *Server) acceptRange(ln net.Listener, r RangeService) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		local := c.LocalAddr().(*net.TCPAddr).AddrPort()
		sv.answered.record("tcp", c.RemoteAddr(), endpoint(c.LocalAddr()), Service{Host: r.Host, Addr: r.Addr, Port: local.Port(), Proto: "tcp"})
		go func() {
			_, _ = io.Copy(io.Discard, c)
			c.Close()
		}()
	}
}

// recvOrigDst asks for each datagram's destination (address and port) as
// received, which tells the echo which port of the range was dialled.
func recvOrigDst(c *net.UDPConn, v6 bool) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		if v6 {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVORIGDSTADDR, 1)
		} else {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_RECVORIGDSTADDR, 1)
		}
	})
	return errors.Join(err, serr)
}

// echoRange answers each datagram from the port it was sent to, as a server
// on that port would: from a socket bound there for the one reply.
func (sv *Server) echoRange(pc *net.UDPConn, in func(func() error) error, r RangeService) {
	buf := make([]byte, 64*1024)
	oob := make([]byte, 128)
	for {
		n, oobn, _, from, err := pc.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		dst, ok := origDst(oob[:oobn])
		if !ok {
			continue
		}
		port := dst.Port()
		s := Service{Host: r.Host, Addr: r.Addr, Port: port, Proto: "udp"}
		sv.answered.record("udp", net.UDPAddrFromAddrPort(from), dst.String(), s)
		if port == r.First { // the socket's own port
			_, _ = pc.WriteToUDPAddrPort(buf[:n], from)
			continue
		}
		_ = in(func() error { return replyFrom(netip.AddrPortFrom(r.Addr, port), from, buf[:n]) })
	}
}

// origDst is a datagram's destination as received (IP_ORIGDSTADDR,
// IPV6_ORIGDSTADDR: a struct sockaddr_in or sockaddr_in6).
func origDst(oob []byte) (netip.AddrPort, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return netip.AddrPort{}, false
	}
	for _, m := range msgs {
		switch {
		case m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_ORIGDSTADDR && len(m.Data) >= 8:
			return netip.AddrPortFrom(netip.AddrFrom4([4]byte(m.Data[4:8])), binary.BigEndian.Uint16(m.Data[2:4])), true
		case m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_ORIGDSTADDR && len(m.Data) >= 24:
			return netip.AddrPortFrom(netip.AddrFrom16([16]byte(m.Data[8:24])), binary.BigEndian.Uint16(m.Data[2:4])), true
		}
	}
	return netip.AddrPort{}, false
}

func isClosed(err error) bool { return errors.Is(err, net.ErrClosed) }

// replyFrom sends one datagram from local to to, on a socket of its own.
func replyFrom(local, to netip.AddrPort, data []byte) error {
	family := unix.AF_INET
	if local.Addr().Is6() {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return err
	}
	// an address the world owns by its local routes only (ServeAnyAddress)
	// is not one IPv6 lets a socket bind without asking
	freebind := func() error { return unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_FREEBIND, 1) }
	if family == unix.AF_INET6 {
		freebind = func() error { return unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_FREEBIND, 1) }
	}
	if err := freebind(); err != nil {
		return err
	}
	if err := unix.Bind(fd, sockaddr(local)); err != nil {
		return err
	}
	return unix.Sendto(fd, data, 0, sockaddr(to))
}

func sockaddr(ap netip.AddrPort) unix.Sockaddr {
	if ap.Addr().Is4() {
		return &unix.SockaddrInet4{Addr: ap.Addr().As4(), Port: int(ap.Port())}
	}
	return &unix.SockaddrInet6{Addr: ap.Addr().As16(), Port: int(ap.Port())}
}
