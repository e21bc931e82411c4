package report_test

import (
	"bytes"
	"encoding/json"
	"net/netip"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios/report"
)

// dockerHost is a host with one user, two networks and three clients, one of
// them without IPv6 (scenarios/policy's networks specs expand it).
const dockerHost = `version: 1
name: docker-host
users:
  postfix: {uid: 107}
hosts:
  mx.example.test:
    addresses: [192.0.2.25, "2001:db8::25"]
    ports: [25/tcp, 443/tcp]
networks:
  docker0:
    addresses: [172.17.0.1/16, "fd00:db8:17::1/64"]
    clients:
      web: {addresses: [172.17.0.2, "fd00:db8:17::2"]}
      php: {addresses: [172.17.0.3]}
  br-0123456789ab:
    addresses: ["172.18.0.1/16"]
    clients:
      db: {addresses: [172.18.0.2]}
expect:
  - allow: {user: postfix, port: 25/tcp}
  - deny: {port: 25/tcp}
  - deny: {client: "*", address: "2000::/3"}
  - drop: {client: [php, db], address: 192.0.2.25}
  - allow: {}
`

var _ = Describe("a client's result", func() {
	result := func() report.Result {
		p := load(dockerHost)
		pr := p.Matrix()[6] // web@docker0 -> [2001:db8::25]:25/tcp, deny
		return report.Result{Probe: pr, Observed: probe.Connected, Evidence: probe.Evidence{Kind: probe.Handshake},
			Detail: "220 mx.example.test ESMTP"}.WithSource(netip.MustParseAddr("2001:db8:1::10"))
	}

	It("has client, network and source in JSON in place of user and uid", func() {
		rep := &report.Report{Policy: "docker-host", Results: []report.Result{result()}}
		var out bytes.Buffer
		Expect(rep.WriteJSON(&out)).To(Succeed())
		var doc struct {
			Probes []map[string]any `json:"probes"`
		}
		Expect(json.Unmarshal(out.Bytes(), &doc)).To(Succeed())
		Expect(doc.Probes).To(HaveLen(1))
		Expect(doc.Probes[0]).To(HaveKeyWithValue("client", "web"))
		Expect(doc.Probes[0]).To(HaveKeyWithValue("network", "docker0"))
		Expect(doc.Probes[0]).To(HaveKeyWithValue("source", "2001:db8:1::10"))
		Expect(doc.Probes[0]).To(HaveKeyWithValue("address", "2001:db8::25"))
		Expect(doc.Probes[0]).NotTo(HaveKey("user"))
		Expect(doc.Probes[0]).NotTo(HaveKey("uid"))
		Expect(out.String()).To(ContainSubstring(`"client": "web",` + "\n      " + `"network": "docker0",` + "\n      " + `"host": "mx.example.test",`))
	})

	It("leaves source out until the lab has observed it", func() {
		r := result().WithSource(netip.Addr{})
		var out bytes.Buffer
		Expect((&report.Report{Policy: "docker-host", Results: []report.Result{r}}).WriteJSON(&out)).To(Succeed())
		Expect(out.String()).NotTo(ContainSubstring(`"source"`))
	})

	It("keeps a root user's uid 0 in JSON", func() {
		p := load(`version: 1
users: {root: {uid: 0}}
hosts: {mx.example.test: {addresses: [192.0.2.25], ports: [25]}}
expect: [deny: {}]
`)
		var out bytes.Buffer
		rep := &report.Report{Policy: "p", Results: []report.Result{{Probe: p.Matrix()[0], Observed: probe.Dropped}}}
		Expect(rep.WriteJSON(&out)).To(Succeed())
		Expect(out.String()).To(ContainSubstring(`"user": "root",` + "\n      " + `"uid": 0,`))
	})

	It("is a row web@docker0 in the table and a case of its own in JUnit", func() {
		rep := &report.Report{Policy: "docker-host", Results: []report.Result{result()}}
		var table, junit bytes.Buffer
		Expect(rep.WriteTable(&table, false)).To(Succeed())
		Expect(table.String()).To(MatchRegexp(`(?m)^web@docker0 `))
		Expect(rep.WriteJUnit(&junit)).To(Succeed())
		Expect(junit.String()).To(ContainSubstring(`classname="docker-host.web@docker0.ipv6" name="web@docker0 -&gt; mx.example.test [2001:db8::25]:25/tcp (ipv6)"`))
		Expect(junit.String()).To(ContainSubstring("egresslab exec -f egresslab.yaml --client web -- nc"))
	})
})
