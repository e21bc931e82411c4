package serve

import (
	"fmt"
	"sync/atomic"
	"syscall"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"

	"github.com/egresslab/egresslab/netns"
)

// Server serves a lab's destinations.
type Server struct {
	lab      *netns.Lab
	answered answered
	zone     atomic.Value // func(*dns.Msg) *dns.Msg: what ServeDNS answers, for a host's port 53 too
	lost     atomic.Value // a listener the candidate closed under the lab (its name)
	// worldCells are the world's own listeners (Serve), which
	// ServeAnyAddress's program leaves to them through anyServed (rootless,
	// through tproxy's set of served cells).
	worldCells []Service
	anyServed  *ebpf.Map
	anyAddr    bool         // the world answers any address (ServeAnyAddress)
	tproxy     *worldTProxy // rootless, the world's steering (tproxy.go)
}

// New is a server for lab's destinations; it listens on nothing until Serve,
// ServeRanges or ServeDNS.
func New(lab *netns.Lab) *Server { return &Server{lab: lab} }

// served notes a listener that stopped while its lab was open: the
// candidate closed it under the lab.
func (sv *Server) served(s Service, err error) {
	if err != nil && !sv.lab.Closing() {
		sv.lost.CompareAndSwap(nil, s.String())
	}
}

// Lost names a listener the candidate closed under the lab, if any: no
// verdict of that lab can be trusted.
func (sv *Server) Lost() (string, bool) {
	what, ok := sv.lost.Load().(string)
	return what, ok
}

// Forget drops the record of who answered the connection from clientAddr to
// serverAddr, once its probe is done with it. A probe the candidate's NAT
// sent elsewhere was recorded under its rewritten ends, which its flow does
// not name: that record stays until the next connection of the same ends
// replaces it (it names the same service, which its local end decides).
func (sv *Server) Forget(proto, clientAddr, serverAddr string) {
	sv.answered.forget(proto, clientAddr, serverAddr)
}

// connFD is the descriptor under a Go socket, for the socket map.
func connFD(c syscall.Conn) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	err = rc.Control(func(f uintptr) { fd = int(f) })
	return fd, err
}

// attachSteering loads an sk_lookup program and attaches it to the network
// namespace nsFD for as long as the lab lives.
func (sv *Server) attachSteering(nsFD int, name string, insns asm.Instructions) error {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         name,
		Type:         ebpf.SkLookup,
		AttachType:   ebpf.AttachSkLookup,
		License:      "GPL", // bpf_sk_assign is GPL-only
		Instructions: insns,
	})
	if err != nil {
		return fmt.Errorf("load the sk_lookup program: %w", err)
	}
	sv.lab.OnClose(prog.Close)
	lk, err := link.AttachNetNs(nsFD, prog)
	if err != nil {
		return fmt.Errorf("attach the sk_lookup program (Linux 5.9 or later): %w", err)
	}
	sv.lab.OnClose(lk.Close)
	return nil
}
