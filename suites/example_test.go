package suites_test

import (
	"fmt"
	"net/netip"

	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios"
	"github.com/egresslab/egresslab/suites/matchers"
	"github.com/onsi/gomega"
)

// results stands in for what Session.Probe returns: one result per address
// of the host, here IPv4 dropped and IPv6 connected (the telnet surprise),
// each naming the policy file it came from.
func results() []scenarios.Result {
	www := scenarios.User{Name: "www-data", UID: 33}
	port := scenarios.Port{Number: 25, Proto: "tcp"}
	return []scenarios.Result{
		scenarios.Result{Probe: scenarios.Probe{User: www, Host: "mx.example.test", Address: netip.MustParseAddr("192.0.2.25"), Port: port},
			Observed: probe.Dropped}.WithPolicyFile("ci/mail.yaml"),
		scenarios.Result{Probe: scenarios.Probe{User: www, Host: "mx.example.test", Address: netip.MustParseAddr("2001:db8::25"), Port: port},
			Observed: probe.Connected, Detail: "220 mx.example.test ESMTP"}.WithPolicyFile("ci/mail.yaml"),
	}
}

// OnEveryFamily holds a matcher to each address family on its own; the
// failure says which family leaks and how to replay it. In a Ginkgo suite:
//
//	Expect(lab.Probe(ctx, "www-data", "mx.example.test", "25/tcp")).To(matchers.OnEveryFamily(matchers.BeDropped()))
func ExampleOnEveryFamily() {
	g := gomega.NewGomega(func(message string, _ ...int) { fmt.Println(message) })
	g.Expect(results()).To(matchers.OnEveryFamily(matchers.BeDropped()))
	// Output:
	// ipv4: holds
	// ipv6: expected every probe to be dropped, but:
	//  ! www-data -> mx.example.test [2001:db8::25]:25/tcp (ipv6): observed connected — 220 mx.example.test ESMTP
	//      reproduce: egresslab exec -f ci/mail.yaml --user www-data -- nc -vz -n -w 3 2001:db8::25 25
}

// MatchTruthTable asserts a whole report in one go; its failure message is
// the truth table with the wrong cells grouped by kind and a command per
// wrong cell. In a Ginkgo suite:
//
//	Expect(lab.ProbeAll(ctx)).To(matchers.MatchTruthTable())
func ExampleMatchTruthTable() {
	rep := &scenarios.Report{Policy: "mail", File: "mail.yaml", Results: results()}
	for i := range rep.Results {
		rep.Results[i].Expect = scenarios.Drop
	}
	g := gomega.NewGomega(func(message string, _ ...int) { fmt.Println(message) })
	g.Expect(rep).To(matchers.MatchTruthTable(matchers.Cell{Outcome: probe.Dropped}))
	// Output:
	// policy mail: 1 of 2 probes are not as the test's table says
	//
	// policy mail
	//
	//           mx.example.test
	//           v4 192.0.2.25  v6 2001:db8::25
	//           25/tcp         25/tcp
	// www-data  xX             x.!
	//
	// cells:  expected  a allow   d deny   x drop   r reject
	//         observed  . connected   R refused or rejected   X dropped   E probe error
	//         ! not what the policy expects
	//
	// BYPASS: 1 probe connected although the policy forbids it
	//   www-data -> mx.example.test [2001:db8::25]:25/tcp (ipv6): expected drop, observed connected — 220 mx.example.test ESMTP
	//
	// ipv4: 1 probe, 1 passed
	// ipv6: 1 probe, 0 passed, 1 failed (1 bypass)
	// 2 probes: 1 passed, 1 failed, 0 errors
	//
	// reproduce each wrong cell with a real client, as its user, in a lab of the policy:
	//   www-data -> mx.example.test [2001:db8::25]:25/tcp (ipv6): want dropped, observed connected
	//     egresslab exec -f mail.yaml --user www-data -- nc -vz -n -w 3 2001:db8::25 25
}
