package words

import (
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/egresslab/egresslab/probe"
)

// The words for a probe's verdict: every sentence is made here from the
// prober's typed values (its outcome, evidence and facts); nothing below the
// report builds prose that travels up.

// Detail says in words what a probe saw and why its outcome is what it is.
func Detail(r probe.Result) string {
	f, ev := r.Facts, r.Evidence
	if r.Outcome == probe.Error {
		return failureWords(f)
	}
	switch ev.Kind {
	case probe.Handshake:
		if f.SMTP {
			return f.Greeting
		}
		if ev.AnsweredBy != nil {
			return "TCP handshake completed by " + AnsweredBy(ev)
		}
		return "TCP handshake completed"
	case probe.Reply:
		if ev.AnsweredBy != nil {
			return "echo from " + AnsweredBy(ev)
		}
		return fmt.Sprintf("reply of %d bytes", f.ReplyBytes)
	case probe.Egress:
		if f.SendEPERM {
			return "datagram dropped by the lab's egress rules (send: operation not permitted)"
		}
		return "SYN dropped by the lab's egress rules (it never left)"
	case probe.ReturnPath:
		return returnPathWords[ev.Packet][ev.Where]
	case probe.NeighbourDiscovery:
		return discoveryWords(f, ev)
	case probe.HostState:
		if f.Errno != 0 {
			return fmt.Sprintf("%s: %v: %s", f.Call, f.Errno, Cause(ev))
		}
		return "it was sent, but " + Cause(ev)
	case probe.ForwardPath:
		return forwardWords[ev.Packet][ev.Where]
	case probe.ClientState:
		return fmt.Sprintf("%s: %v: the client has no address or route in this family", f.Call, f.Errno)
	case probe.ICMPError:
		return icmpWords(*ev.ICMP)
	case probe.Reset:
		return "TCP reset (connection refused)"
	case probe.Backstop:
		if f.Handshake {
			return fmt.Sprintf("handshake completed and the server greeted, but no greeting arrived within %s", f.Backstop)
		}
		return fmt.Sprintf("it left the lab but nothing answered within %s (the return path)", f.Backstop)
	}
	return ""
}

// failureWords says why a probe could not give a verdict.
func failureWords(f probe.Facts) string {
	switch {
	case f.Cancelled != nil:
		return f.Cancelled.Error()
	case f.Err != nil:
		return f.Err.Error()
	case f.Errno != 0:
		return fmt.Sprintf("%s: %v", f.Call, f.Errno)
	case f.Handshake && f.SMTP:
		return fmt.Sprintf("unexpected greeting %q", f.Greeting)
	case f.Silent:
		return fmt.Sprintf("a reject was sent but did not reach the socket within %s", f.Backstop)
	}
	return "the probe learned nothing"
}

// forwardWords say where the host dropped a client's packet or its answer.
var forwardWords = map[probe.Packet]map[probe.Hook]string{
	probe.Request: {
		probe.Prerouting:  "dropped by the host on its way in (PREROUTING): it never reached FORWARD",
		probe.Forward:     "dropped by the host's FORWARD rules (it never left)",
		probe.Postrouting: "dropped by the host's POSTROUTING rules after FORWARD (the nat): it never left",
	},
	probe.Answer: {
		probe.Forward:     "it left, and the answer was dropped by the host's FORWARD rules on its way back",
		probe.Postrouting: "it left, and the answer was dropped after FORWARD (POSTROUTING) on its way back",
	},
}

var returnPathWords = map[probe.Packet]map[probe.Hook]string{
	probe.Request: {probe.Input: "it left the lab, but the lab's INPUT rules dropped it on its way into the loopback listener"},
	probe.Answer: {
		probe.Output: "it left the lab, but the listener answered, and the lab's OUTPUT rules dropped the answer",
		probe.Input:  "it left the lab, but the answer came back, and the lab's INPUT rules dropped it",
	},
}

func discoveryWords(f probe.Facts, ev probe.Evidence) string {
	who := "the destination " + f.Neighbour.String()
	if f.Gateway {
		who = "the gateway " + f.Neighbour.String()
	}
	var d string
	switch f.Discovery {
	case probe.SolicitationAtOutput:
		d = fmt.Sprintf("neighbour discovery for %s dropped by the lab's OUTPUT rules (ICMPv6 135)", who)
	case probe.AdvertisementAtInput:
		d = fmt.Sprintf("neighbour discovery for %s failed: its advertisement was dropped by the lab's INPUT rules (ICMPv6 136)", who)
	case probe.RouterSolicitationAtInput:
		d = fmt.Sprintf("the router's neighbour solicitation for this host was dropped by the lab's INPUT rules (ICMPv6 135), so answers cannot come back on %s", f.Uplink)
	case probe.AdvertisementAtOutput:
		d = fmt.Sprintf("this host's neighbour advertisement to the router was dropped by the lab's OUTPUT rules (ICMPv6 136), so answers cannot come back on %s", f.Uplink)
	}
	if ev.ICMP != nil {
		d += "; the kernel then gave up on the neighbour (ICMPv6 address unreachable)"
	}
	return d
}

func icmpWords(c probe.ICMP) string {
	proto, names := "ICMP", icmpCodes
	if c.Version == 6 {
		proto, names = "ICMPv6", icmp6Codes
	}
	name, ok := names[c.Code]
	if !ok {
		name = fmt.Sprintf("code %d", c.Code)
	}
	return fmt.Sprintf("%s type %d code %d (%s)", proto, c.Type, c.Code, name)
}

var icmpCodes = map[uint8]string{
	0: "net unreachable", 1: "host unreachable", 2: "protocol unreachable", 3: "port unreachable",
	9: "net prohibited", 10: "host prohibited", 13: "administratively prohibited",
}

var icmp6Codes = map[uint8]string{
	0: "no route", 1: "administratively prohibited", 3: "address unreachable", 4: "port unreachable",
	5: "source address failed policy", 6: "reject route",
}

// Cause says which of the lab host's own states refused ("" when none did).
func Cause(ev probe.Evidence) string {
	h := ev.Host
	if h == nil {
		return ""
	}
	switch h.What {
	case probe.IPv6Off:
		return fmt.Sprintf("IPv6 is switched off on this host by the candidate's sysctl (net.ipv6.conf.%s.disable_ipv6=1)", h.Link)
	case probe.LinkDown:
		return fmt.Sprintf("interface %s is down on this host (set down by the candidate)", h.Link)
	case probe.RouteType:
		return fmt.Sprintf("route %s %s, added by the candidate", h.Route, h.RouteType)
	case probe.NoRoute:
		return "this host has no route to it (the candidate removed the route)"
	case probe.ForwardingOff:
		return "this host does not forward that family (forwarding switched off by the candidate's sysctl)"
	}
	return "unknown host state"
}

// AnsweredBy names the service that answered a probe ("" when none of the
// lab's did): its host name, address and port, and protocol.
func AnsweredBy(ev probe.Evidence) string {
	s := ev.AnsweredBy
	if s == nil {
		return ""
	}
	return fmt.Sprintf("%s %s/%s", s.Host, netip.AddrPortFrom(s.Addr, s.Port), s.Proto)
}

// WriteTelnet prints a client's view as telnet would have shown it.
func WriteTelnet(w io.Writer, v probe.ClientView) {
	if v.Unresolved != "" {
		fmt.Fprintf(w, "telnet: could not resolve %s/%d: Temporary failure in name resolution   [%s]\n", v.Name, v.Port, v.Unresolved)
		return
	}
	for _, a := range v.Attempts {
		fmt.Fprintf(w, "Trying %s...\n", a.Addr)
		detail := Detail(a.Result)
		switch a.Result.Outcome {
		case probe.Connected:
			fmt.Fprintf(w, "Connected to %s.\nEscape character is '^]'.\n", v.Host)
			if strings.HasPrefix(detail, "220") {
				fmt.Fprintln(w, detail)
			}
		case probe.Dropped:
			fmt.Fprintf(w, "telnet: connect to address %s: Connection timed out   [%s]\n", a.Addr, detail)
		case probe.Refused:
			fmt.Fprintf(w, "telnet: connect to address %s: Connection refused   [%s]\n", a.Addr, detail)
		case probe.Rejected:
			fmt.Fprintf(w, "telnet: connect to address %s: No route to host   [%s]\n", a.Addr, detail)
		default:
			fmt.Fprintf(w, "telnet: connect to address %s: probe error: %s\n", a.Addr, detail)
		}
	}
	if _, ok := v.Connected(); !ok {
		fmt.Fprintln(w, "telnet: Unable to connect to remote host")
	}
}
