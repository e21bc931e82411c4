package netns

import (
	"context"
	"crypto/tls"
	"net/netip"
)

// What the concern packages (ruleset, sentinel, trace, serve) build on.

// DNSServers are where the lab's DNS listens, as systemd-resolved would:
// 127.0.0.53 and ::1, port 53, on the lab's lo, so a real client inside the
// lab resolves through the candidate's rules like any other traffic. Nothing
// of the harness resolves from outside those rules: probes dial addresses,
// and the client view asks as the user (probe.Resolve).
func DNSServers() []netip.Addr {
	return []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, 53}), netip.IPv6Loopback()}
}

// Do runs fn on a locked thread inside the lab's network namespace. Sockets
// made there belong to the lab and may be used from any goroutine afterwards;
// goroutines fn starts do not inherit the namespace.
func (l *Lab) Do(fn func() error) error { return l.inLab(fn) }

// DoWorld runs fn on a locked thread inside the world's network namespace,
// beyond the lab's uplink.
func (l *Lab) DoWorld(fn func() error) error { return l.inWorld(fn) }

// NetNSFD is a descriptor of the lab's network namespace, for netlink and
// nftables connections made there (they may be used from any thread). It
// stays open until the lab closes.
func (l *Lab) NetNSFD() int { return l.labFD }

// WorldNetNSFD is a descriptor of the world's network namespace.
func (l *Lab) WorldNetNSFD() int { return l.worldFD }

// OnClose registers fn to run when the lab closes, before its namespaces go
// (servers, listeners, sockets of the concern packages); last registered,
// first run.
func (l *Lab) OnClose(fn func() error) { l.addCloser(fn) }

// Closing reports whether Close has begun: what fails then is the lab going
// away, not the candidate.
func (l *Lab) Closing() bool { return l.closed.Load() }

// TLSConfig serves TLS with certificates of the lab's own CA, which the
// lab's trust store holds.
func (l *Lab) TLSConfig() *tls.Config { return l.ca.TLSConfig() }

// CACertificate is the PEM of the lab's CA, for a client outside the lab
// (a Go test, say) that talks TLS to the lab's listeners.
func (l *Lab) CACertificate() []byte { return l.ca.PEM() }

// Uplink is the name of the lab's uplink inside the lab.
func (l *Lab) Uplink() string { return l.cfg.Uplink }

// Backend is the lab's iptables flavour: "nft" or "legacy".
func (l *Lab) Backend() string { return l.cfg.Backend }

// UplinkAddrs are the lab host's own uplink addresses.
func (l *Lab) UplinkAddrs() []netip.Prefix { return l.cfg.UplinkAddrs }

// maxListingOutput bounds what the lab's own listings print (the trace's
// readback of a host-scale ruleset is tens of MiB): these are the harness's
// tools reading the kernel, not the candidate's tools.
const maxListingOutput = 1 << 30

// RunListing runs one of the harness's own tools (nft, iptables-save) inside
// the lab as its root, to read the kernel's state, and returns what it
// printed, stdout and stderr together.
func (l *Lab) RunListing(ctx context.Context, argv ...string) ([]byte, error) {
	return l.run(ctx, runSpec{argv: argv, limit: maxListingOutput})
}
