package serve

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// ServeAnyAddress makes the world answer every address and port nobody else
// serves there, with four sockets in all (TCP and UDP, per family): the
// world owns every address (netns.Lab.AnswerAnyAddress), and a BPF sk_lookup
// program, as for port ranges, steers each TCP SYN and UDP datagram that no
// listener of Serve's is bound to to the socket of its family and protocol.
// TCP accepts and holds, UDP echoes from the address and port dialled; both
// record what was dialled, as ranges do. A port that Serve would give a
// server of its own (SMTP, HTTP, HTTPS, DNS) gets only this here: serve it
// with Serve first where its protocol matters.
//
// Port ranges steer first, as their programs were attached first: call
// ServeRanges for the world before this, never after. Rootless, TPROXY rules
// in the world steer instead of the program (tproxyAnyAddress).
func (sv *Server) ServeAnyAddress() error {
	if sv.anyAddr {
		return nil
	}
	if err := sv.lab.AnswerAnyAddress(); err != nil {
		return fmt.Errorf("make the world answer any address in lab %s: %w", sv.lab.Name(), err)
	}
	if steersByTProxy() {
		if err := sv.tproxyAnyAddress(); err != nil {
			return fmt.Errorf("serve any address in lab %s: %w", sv.lab.Name(), err)
		}
		sv.anyAddr = true
		return nil
	}
	// room for the services served after this one: each is added as it goes
	served, err := ebpf.NewMap(&ebpf.MapSpec{
		Type: ebpf.Hash, KeySize: cellKeySize, ValueSize: 1, MaxEntries: uint32(len(sv.worldCells)) + anyServedRoom,
	})
	if err != nil {
		return fmt.Errorf("create the map of served cells (BPF, needs CAP_BPF on the host): %w", err)
	}
	sv.lab.OnClose(served.Close)
	for _, s := range sv.worldCells {
		if err := served.Put(cellKey(s.Addr, s.Port, s.Proto), uint8(1)); err != nil {
			return fmt.Errorf("add a served cell to the map: %w", err)
		}
	}
	sockets, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.SockMap, KeySize: 4, ValueSize: 8, MaxEntries: 4})
	if err != nil {
		return fmt.Errorf("create the socket map (BPF, needs CAP_BPF on the host): %w", err)
	}
	sv.lab.OnClose(sockets.Close)
	for i, network := range anySockets {
		fd, _, err := sv.listenAny(network, false)
		if err != nil {
			return fmt.Errorf("serve any address in lab %s: %w", sv.lab.Name(), err)
		}
		if err := sockets.Put(uint32(i), uint64(fd)); err != nil {
			return fmt.Errorf("add the %s socket to the socket map: %w", network, err)
		}
	}
	if err := sv.attachSteering(sv.lab.WorldNetNSFD(), "egl_anyaddr", anyAddrProgram(served.FD(), sockets.FD())); err != nil {
		return err
	}
	sv.anyServed = served
	sv.anyAddr = true
	return nil
}

// anySockets are the catch-all sockets, at the index anyAddrProgram picks:
// 2 for IPv6, plus 1 for UDP. Each listens on the world's loopback, which
// nothing dials: the program hands it everything else.
var anySockets = []string{"tcp4", "udp4", "tcp6", "udp6"}

// anyServedRoom is how many services Serve may add after ServeAnyAddress.
const anyServedRoom = 1 << 14

// A cell key is the program's view of a packet's destination: family,
// protocol and port (host byte order, as struct bpf_sk_lookup has them) and
// the address (network byte order, IPv4 in the first four bytes).
const cellKeySize = 28

func cellKey(addr netip.Addr, port uint16, proto string) []byte {
	k := make([]byte, cellKeySize)
	family, p := uint32(unix.AF_INET), uint32(unix.IPPROTO_TCP)
	if addr.Is6() {
		family = unix.AF_INET6
	}
	if proto == "udp" {
		p = unix.IPPROTO_UDP
	}
	binary.NativeEndian.PutUint32(k[0:], family)
	binary.NativeEndian.PutUint32(k[4:], p)
	binary.NativeEndian.PutUint32(k[8:], uint32(port))
	copy(k[12:], addr.AsSlice())
	return k
}

// noteWorldCell keeps a service's cell in the world out of the catch-all:
// its own listener answers it.
func (sv *Server) noteWorldCell(s Service) error {
	sv.worldCells = append(sv.worldCells, s)
	if !sv.anyAddr {
		return nil
	}
	if sv.anyServed == nil { // rootless
		if err := sv.tproxy.noteServed(s); err != nil {
			return fmt.Errorf("keep %s out of the any-address socket: %w", s, err)
		}
		return nil
	}
	if err := sv.anyServed.Put(cellKey(s.Addr, s.Port, s.Proto), uint8(1)); err != nil {
		return fmt.Errorf("keep %s out of the any-address socket: %w", s, err)
	}
	return nil
}

// anyAddrProgram: unless the packet's cell is in served, assign it to the
// socket of its family and protocol in sockets.
func anyAddrProgram(served, sockets int) asm.Instructions {
	const key, idx = -cellKeySize, -cellKeySize - 4 // stack offsets
	insns := asm.Instructions{asm.Mov.Reg(asm.R6, asm.R1)}
	for off := int16(key); off < 0; off += 4 {
		insns = append(insns, asm.StoreImm(asm.RFP, off, 0, asm.Word))
	}
	for i, field := range []int16{skLookupFamily, skLookupProtocol, skLookupLocalPort} {
		insns = append(insns,
			asm.LoadMem(asm.R2, asm.R6, field, asm.Word),
			asm.StoreMem(asm.RFP, key+4*int16(i), asm.R2, asm.Word))
	}
	insns = append(insns,
		asm.LoadMem(asm.R2, asm.R6, skLookupFamily, asm.Word),
		asm.JEq.Imm32(asm.R2, unix.AF_INET6, "v6"),
		asm.LoadMem(asm.R2, asm.R6, skLookupLocalIP4, asm.Word),
		asm.StoreMem(asm.RFP, key+12, asm.R2, asm.Word),
		asm.Ja.Label("lookup"),
	)
	for w := int16(0); w < 4; w++ {
		ld := asm.LoadMem(asm.R2, asm.R6, skLookupLocalIP6+4*w, asm.Word)
		if w == 0 {
			ld = ld.WithSymbol("v6")
		}
		insns = append(insns, ld, asm.StoreMem(asm.RFP, key+12+4*w, asm.R2, asm.Word))
	}
	return append(insns,
		asm.LoadMapPtr(asm.R1, served).WithSymbol("lookup"),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, key),
		asm.FnMapLookupElem.Call(),
		asm.JNE.Imm(asm.R0, 0, "pass"), // its own listener answers it
		asm.Mov.Imm(asm.R7, 0),
		asm.LoadMem(asm.R2, asm.R6, skLookupFamily, asm.Word),
		asm.JNE.Imm32(asm.R2, unix.AF_INET6, "proto"),
		asm.Mov.Imm(asm.R7, 2),
		asm.LoadMem(asm.R2, asm.R6, skLookupProtocol, asm.Word).WithSymbol("proto"),
		asm.JNE.Imm32(asm.R2, unix.IPPROTO_UDP, "pick"),
		asm.Add.Imm(asm.R7, 1),
		asm.StoreMem(asm.RFP, idx, asm.R7, asm.Word).WithSymbol("pick"),
		asm.LoadMapPtr(asm.R1, sockets),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, idx),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "pass"),
		asm.Mov.Reg(asm.R7, asm.R0),
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.Mov.Reg(asm.R2, asm.R7),
		asm.Mov.Imm(asm.R3, 0), // a range's program, attached first, keeps its pick (EEXIST)
		asm.FnSkAssign.Call(),
		asm.Mov.Reg(asm.R1, asm.R7),
		asm.FnSkRelease.Call(),
		asm.Mov.Imm(asm.R0, 1).WithSymbol("pass"), // SK_PASS
		asm.Return(),
	)
}

// listenAny opens one catch-all socket in the world and serves it; it
// returns the socket's descriptor, for the socket map, and its address, for
// TPROXY rules, which steer only to a transparent one (transparentSocket).
func (sv *Server) listenAny(network string, transparentSocket bool) (int, netip.AddrPort, error) {
	loopback := "127.0.0.1:0"
	if network[3] == '6' {
		loopback = "[::1]:0"
	}
	var lc net.ListenConfig
	lc.SetMultipathTCP(false) // an MPTCP socket cannot go in a socket map
	if transparentSocket {
		lc.Control = transparent
	}
	if network[:3] == "udp" {
		var pc *net.UDPConn
		err := sv.lab.DoWorld(func() error {
			c, err := lc.ListenPacket(context.Background(), network, loopback)
			if err != nil {
				return err
			}
			pc = c.(*net.UDPConn)
			return recvOrigDst(pc, network == "udp6")
		})
		if err != nil {
			return -1, netip.AddrPort{}, err
		}
		sv.lab.OnClose(pc.Close)
		go sv.echoAny(pc)
		fd, err := connFD(pc)
		return fd, pc.LocalAddr().(*net.UDPAddr).AddrPort(), err
	}
	var ln *net.TCPListener
	if err := sv.lab.DoWorld(func() error {
		x, err := lc.Listen(context.Background(), network, loopback)
		if err == nil {
			ln = x.(*net.TCPListener)
		}
		return err
	}); err != nil {
		return -1, netip.AddrPort{}, err
	}
	sv.lab.OnClose(ln.Close)
	go sv.acceptAny(ln)
	fd, err := connFD(ln)
	return fd, ln.Addr().(*net.TCPAddr).AddrPort(), err
}

// tproxyAnyAddress is ServeAnyAddress rootless: the same catch-all sockets,
// made transparent, and the world's TPROXY rules in anyAddrProgram's place,
// after any range's (ServeRanges comes first).
func (sv *Server) tproxyAnyAddress() error {
	w, err := sv.worldSteering()
	if err != nil {
		return err
	}
	if len(sv.worldCells) > 0 {
		if err := w.noteServed(sv.worldCells...); err != nil {
			return fmt.Errorf("keep the world's own listeners out of the any-address sockets: %w", err)
		}
	}
	rules := [][]expr.Any{w.servedRule(netip.IPv4Unspecified()), w.servedRule(netip.IPv6Unspecified())}
	for _, network := range anySockets {
		_, at, err := sv.listenAny(network, true)
		if err != nil {
			return err
		}
		rules = append(rules, anyRule(network[:3], at))
	}
	if err := w.steer(rules...); err != nil {
		return fmt.Errorf("steer any address to its sockets (nft tproxy in the world): %w", err)
	}
	return nil
}

// acceptAny accepts and holds each connection, recording the address and
// port it was for: the connection's local end, as dialled.
func (sv *Server) acceptAny(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		local := c.LocalAddr().(*net.TCPAddr).AddrPort()
		sv.answered.record("tcp", c.RemoteAddr(), endpoint(c.LocalAddr()), anyService(local, "tcp"))
		go func() {
			_, _ = io.Copy(io.Discard, c)
			c.Close()
		}()
	}
}

// echoAny answers each datagram from the address and port it was sent to.
func (sv *Server) echoAny(pc *net.UDPConn) {
	buf := make([]byte, 64*1024)
	oob := make([]byte, 128)
	for {
		n, oobn, _, from, err := pc.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			if isClosed(err) {
				return
			}
			continue
		}
		dst, ok := origDst(oob[:oobn])
		if !ok {
			continue
		}
		sv.answered.record("udp", net.UDPAddrFromAddrPort(from), dst.String(), anyService(dst, "udp"))
		_ = sv.lab.DoWorld(func() error { return replyFrom(dst, from, buf[:n]) })
	}
}

// anyService is the service the world was for a dialled address and port:
// the address names it.
func anyService(local netip.AddrPort, proto string) Service {
	a := local.Addr().Unmap()
	return Service{Host: a.String(), Addr: a, Port: local.Port(), Proto: proto}
}
