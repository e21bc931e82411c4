package scenarios_test

import (
	"context"
	"fmt"
	"log"
	"net/netip"
	"os"
	"testing/fstest"

	"github.com/egresslab/egresslab/netns"
	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios"
)

// Open a lab of a policy file, probe as one of its users, and look at each
// address family on its own. (A program that opens labs calls netns.Init
// first thing in main; a test binary, in TestMain.)
func ExampleOpen() {
	netns.Init()
	ctx := context.Background()
	p, err := scenarios.Load("egresslab.yaml")
	if err != nil {
		log.Fatal(err) // a *scenarios.Error names file, line and column
	}
	lab, err := scenarios.Open(ctx, p)
	if err != nil {
		log.Fatal(err)
	}
	defer lab.Close()
	results, err := lab.Probe(ctx, "www-data", "mx.example.test", "25/tcp")
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range results {
		fmt.Printf("%s over %s: %s\n", r.User.Name, r.Family(), r.Observed)
	}
}

// Verify the whole matrix, as `egresslab verify` does, and print the table.
func ExampleSession_ProbeAll() {
	ctx := context.Background()
	p, err := scenarios.Load("egresslab.yaml")
	if err != nil {
		log.Fatal(err)
	}
	lab, err := scenarios.Open(ctx, p)
	if err != nil {
		log.Fatal(err)
	}
	defer lab.Close()
	rep, err := lab.ProbeAll(ctx)
	if err != nil {
		log.Fatal(err)
	}
	_ = rep.WriteTable(os.Stdout, false)
	if !rep.Pass() {
		os.Exit(1)
	}
}

// Run a real client as a policy user inside the lab: it resolves names
// through the lab's DNS and its packets meet the candidate's rules.
func ExampleSession_Command() {
	ctx := context.Background()
	p, err := scenarios.Load("egresslab.yaml")
	if err != nil {
		log.Fatal(err)
	}
	lab, err := scenarios.Open(ctx, p)
	if err != nil {
		log.Fatal(err)
	}
	defer lab.Close()
	cmd, err := lab.Command(ctx, "www-data", "telnet", "mx.example.test", "25")
	if err != nil {
		log.Fatal(err)
	}
	out, err := cmd.CombinedOutput()
	fmt.Printf("%s(exit: %v)\n", out, err)
}

// A policy and its ruleset can live in code: LoadFS validates them as Load
// does, and WithRuleset swaps the candidate (a fix, or a deliberate break).
func ExampleLoadFS() {
	fsys := fstest.MapFS{
		"mail.yaml": {Data: []byte(`version: 1
users:
  www-data: {uid: 33}
hosts:
  mx.example.test:
    addresses: [192.0.2.25, "2001:db8::25"]
    ports: [25/tcp]
ruleset:
  iptables: mail.v4
expect:
  - deny: {}
`)},
		"mail.v4": {Data: []byte("*filter\n-A OUTPUT -p tcp --dport 25 -j DROP\nCOMMIT\n")},
	}
	p, err := scenarios.LoadFS(fsys, "mail.yaml")
	if err != nil {
		log.Fatal(err)
	}
	fixed := p.WithRuleset(scenarios.Ruleset{
		IPTables:  p.Ruleset.IPTables,
		IP6Tables: scenarios.RulesetText("mail.v6", "*filter\n-A OUTPUT -p tcp --dport 25 -j DROP\nCOMMIT\n"),
	})
	fmt.Println(p.Name, len(p.Matrix()), "probes")
	fmt.Println("ip6tables part:", p.Ruleset.IP6Tables != nil, "->", fixed.Ruleset.IP6Tables != nil)
	// Output:
	// mail 2 probes
	// ip6tables part: false -> true
}

// Each failed probe says how to replay it with a real client.
func ExampleResult_ExecCommand() {
	r := scenarios.Result{
		Probe: scenarios.Probe{
			User:    scenarios.User{Name: "www-data", UID: 33},
			Host:    "mx.example.test",
			Address: netip.MustParseAddr("2001:db8::25"),
			Port:    scenarios.Port{Number: 25, Proto: "tcp"},
			Expect:  scenarios.Deny,
		},
		Observed: probe.Connected,
	}
	fmt.Println(r.Pass())
	fmt.Println(r.ExecCommand("mail.yaml"))
	// Output:
	// false
	// egresslab exec -f mail.yaml --user www-data -- nc -vz -n -w 3 2001:db8::25 25
}
