package report_test

import (
	"bytes"
	"encoding/json"
	"net/netip"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios/classes"
	"github.com/egresslab/egresslab/scenarios/policy"
	"github.com/egresslab/egresslab/scenarios/report"
)

// clientClass is a forwarded class of docker0's upper half, probed by a
// synthetic client, which connected although the policy denies it.
func clientClass() report.ClassResult {
	src := netip.MustParseAddr("172.17.128.1")
	mx := netip.MustParseAddr("192.0.2.25")
	c := classes.Class{Family: classes.IPv4, Proto: classes.TCP, Network: "docker0",
		Sources:        []classes.AddrRange{{First: netip.MustParseAddr("172.17.128.0"), Last: netip.MustParseAddr("172.17.255.255")}},
		Addresses:      []classes.AddrRange{{First: netip.MustParseAddr("0.0.0.0"), Last: netip.MustParseAddr("255.255.255.255")}},
		Ports:          []classes.PortRange{{First: 25, Last: 25}},
		Representative: classes.Representative{Src: src, Addr: mx, Port: 25, PolicyAddr: true, PolicyPort: true}}
	pr := policy.Probe{Client: &policy.Client{Name: src.String(), Network: "docker0", Addresses: []netip.Addr{src}},
		Host: "mx.example.test", Address: mx, Port: policy.Port{Number: 25, Proto: "tcp"}, Expect: policy.Deny, Line: 14}
	return report.ClassResult{Class: c, Result: report.Result{Probe: pr, Observed: probe.Connected, Evidence: probe.Evidence{Kind: probe.Handshake}, Detail: "220 mx.example.test ESMTP"}}
}

var _ = Describe("a class of clients' forwarded traffic", func() {
	rep := func() *report.Report {
		return &report.Report{Policy: "php-container", Classes: []report.ClassResult{clientClass()},
			Completeness: &report.Completeness{Classes: 1, Forwarded: 1}}
	}

	It("reads as its network and source addresses, probed as its client", func() {
		c := clientClass()
		Expect(c.SourceString()).To(Equal("docker0 saddr 172.17.128.0/17"))
		Expect(c.Synthetic()).To(BeTrue())
		var b bytes.Buffer
		Expect(rep().WriteTable(&b, false)).To(Succeed())
		Expect(b.String()).To(ContainSubstring("! ipv4   tcp   docker0 saddr 172.17.128.0/17 0.0.0.0/0 25    172.17.128.1@docker0 -> 192.0.2.25:25 deny     connected"))
		Expect(b.String()).To(ContainSubstring("completeness: 0 classes over uid, gid, daddr, dport, proto, family and 1 class of forwarded traffic over network, saddr, daddr, dport, proto, family: all probed"))
	})

	It("has client and network in JSON where a user's class has user and uid", func() {
		var b bytes.Buffer
		Expect(rep().WriteJSON(&b)).To(Succeed())
		var doc struct {
			Classes []struct {
				Source         map[string]any `json:"source"`
				Representative map[string]any `json:"representative"`
				Failure        string         `json:"failure"`
			} `json:"classes"`
			Completeness struct{ Forwarded int } `json:"completeness"`
		}
		Expect(json.Unmarshal(b.Bytes(), &doc)).To(Succeed())
		Expect(doc.Classes).To(HaveLen(1))
		Expect(doc.Classes[0].Source).To(Equal(map[string]any{"network": "docker0", "addresses": []any{"172.17.128.0/17"}}))
		Expect(doc.Classes[0].Representative).To(Equal(map[string]any{"client": "", "network": "docker0", "source": "172.17.128.1",
			"host": "mx.example.test", "address": "192.0.2.25", "port": 25.0}))
		Expect(doc.Classes[0].Failure).To(Equal("bypass"))
		Expect(doc.Completeness.Forwarded).To(Equal(1))
	})

	It("is a failing JUnit case like any class", func() {
		var b bytes.Buffer
		Expect(rep().WriteJUnit(&b)).To(Succeed())
		Expect(b.String()).To(ContainSubstring(`name="class ipv4 tcp docker0 saddr 172.17.128.0/17 to 0.0.0.0/0 port 25"`))
		Expect(b.String()).To(ContainSubstring("probed as 172.17.128.1@docker0 -&gt; 192.0.2.25:25/tcp"))
	})
})
