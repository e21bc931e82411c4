package scenarios

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"sync"
	"time"

	"github.com/egresslab/egresslab/netns"
	"github.com/egresslab/egresslab/netns/trace"
	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios/policy"
	"github.com/egresslab/egresslab/scenarios/policy/value"
	"github.com/egresslab/egresslab/scenarios/report"
	"github.com/egresslab/egresslab/scenarios/report/words"
)

// ErrClosed is what a closed Session returns; it never panics. It is the
// lab's own netns.ErrClosed: errors.Is knows them as one.
var ErrClosed = netns.ErrClosed

// Session is one policy's lab, started and ready: its hosts served, the
// lab's DNS answering on 127.0.0.53 and ::1, the candidate ruleset loaded
// with the real tools and the lab's evidence chains in place. It is the
// entry point for users' own suites: Open a policy, Probe as its users,
// assert with the matchers of package suites, Close.
//
// A program (or test binary) that opens sessions calls netns.Init first in
// main or TestMain. A Session is safe for concurrent use.
type Session struct {
	policy *Policy
	lab    *LabBench

	// Backstop bounds the wait for an answer to a packet that left the lab
	// (probe.DefaultBackstop when zero). Set it before probing.
	Backstop time.Duration

	mu     sync.RWMutex // probes hold it for reading, Close for writing
	closed bool
}

// Open starts p's lab with p's ruleset loaded. Errors are those of Run: a
// ruleset the tools reject is a *ruleset.RulesetError, a lab that cannot start
// a *netns.UnavailableError. The caller closes the session.
func Open(ctx context.Context, p *Policy) (*Session, error) {
	lab, err := StartLab(ctx, p)
	if err != nil {
		return nil, err
	}
	return &Session{policy: p, lab: lab}, nil
}

// Policy is the policy the session was opened with.
func (s *Session) Policy() *Policy { return s.policy }

// Probe dials every address of host on port ("25/tcp", "53/udp" or "25") as
// user, one probe per address, in the policy's address order: the results
// are one per family for a dual-stack host. Each result carries the
// policy's expectation for that cell, if any covers it. host must be one of
// the policy's hosts; port need not be one it serves (nothing listens there
// then, and an allowed probe is refused).
func (s *Session) Probe(ctx context.Context, user, host, port string) ([]Result, error) {
	u, ok := s.policy.User(user)
	if !ok {
		return nil, fmt.Errorf("probe as %q: no such user in policy %s (users: %s)", user, s.policy.Name, policy.OrList(s.userNames()))
	}
	i := slices.IndexFunc(s.policy.Hosts, func(h Host) bool { return h.Name == host })
	if i < 0 {
		return nil, fmt.Errorf("probe %q: no such host in policy %s", host, s.policy.Name)
	}
	r, err := value.ParsePorts(port)
	if err == nil && r.First != r.Last {
		err = fmt.Errorf("port %q is a range: probe one port at a time", port)
	}
	if err != nil {
		return nil, fmt.Errorf("probe %s: %w", host, err)
	}
	pt := Port{Number: r.First, Proto: r.Proto}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	// The lab's own parts are checked before and after, as ProbeAll does:
	// a verdict is only as good as the evidence chains behind it.
	if err := s.lab.CheckHarness(); err != nil {
		return nil, err
	}
	var results []Result
	var dsts []trace.Destination
	for _, a := range s.policy.Hosts[i].Addresses {
		pr := Probe{User: u, Host: host, Address: a, Port: pt, Rule: -1}
		if rule, ok := s.policy.Match(u.Name, host, a, pt); ok {
			pr.Expect, pr.Rule, pr.Line = s.policy.Expect[rule].Verb, rule, s.policy.Expect[rule].Line
		}
		results = append(results, Result{Probe: pr})
		dsts = append(dsts, trace.Destination{Addr: a, First: pt.Number, Last: pt.Number})
	}
	// The deciding rule, from the lab's trace, as ProbeAll gives it.
	explain, err := startExplaining(ctx, s.lab, report.SourcesOf(s.policy), dsts, results, RunOptions{})
	if err != nil {
		return nil, err
	}
	defer explain.stop()
	for i, r := range results {
		if ctx.Err() != nil {
			return results[:i], ctx.Err()
		}
		start := time.Now()
		d, flow := probe.DialFlow(ctx, s.lab, Identity(u), probe.Target{Addr: r.Address, Port: pt.Number, Proto: pt.Proto}, s.Backstop)
		explain.record(i, flow)
		results[i] = Result{Probe: r.Probe, Observed: d.Outcome, Evidence: d.Evidence, Detail: words.Detail(d), Duration: time.Since(start)}.WithPolicyFile(s.policy.File)
	}
	if err := ctx.Err(); err != nil {
		return results, err
	}
	if err := s.lab.evidenceErr(); err != nil {
		return nil, err
	}
	if err := explain.finish(results); err != nil {
		return nil, err
	}
	if err := s.lab.CheckHarness(); err != nil {
		return nil, fmt.Errorf("after probing: %w", err)
	}
	return results, nil
}

// ProbeAll runs the policy's whole matrix in this lab and compares it with
// the policy's expectations, as `egresslab verify` does.
func (s *Session) ProbeAll(ctx context.Context) (*Report, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	start := time.Now()
	rep, err := ProbeAll(ctx, s.lab, s.policy, RunOptions{Backstop: s.Backstop})
	if err != nil {
		return rep, err // on cancellation, the results it has
	}
	rep.Duration = time.Since(start)
	return rep, nil
}

// Command returns a command that runs argv inside the lab as user (its uid,
// gid and supplementary groups), under the candidate's rules and resolving
// names through the lab's DNS: a real client. user "" or "root" is the lab's
// root. The environment names the lab's iptables tools ($IPTABLES,
// $IP6TABLES) as a ruleset script sees them. The command dies with the lab.
func (s *Session) Command(ctx context.Context, user string, argv ...string) (*exec.Cmd, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	if len(argv) == 0 {
		return nil, errors.New("no command to run in the lab")
	}
	var cmd *exec.Cmd
	home := "/root"
	if u, ok := s.policy.User(user); ok {
		cmd, home = s.lab.CommandAs(ctx, Identity(u), argv...), "/"
	} else if user == "" || user == "root" {
		user, cmd = "root", s.lab.Command(ctx, argv...)
	} else {
		return nil, fmt.Errorf("run as %q: no such user in policy %s (users: %s)", user, s.policy.Name, policy.OrList(s.userNames()))
	}
	s.setEnv(cmd, home, user, user)
	return cmd, nil
}

// ClientCommand returns a command that runs argv inside the lab as the
// policy's client called client: in its own network namespace, as its root,
// its packets crossing the host's forward path and nat as its probes' do.
// EGRESSLAB_USER is client@network.
func (s *Session) ClientCommand(ctx context.Context, client string, argv ...string) (*exec.Cmd, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	if len(argv) == 0 {
		return nil, errors.New("no command to run in the lab")
	}
	c, ok := s.policy.Client(client)
	if !ok {
		var names []string
		for _, c := range s.policy.Clients() {
			names = append(names, c.Name)
		}
		return nil, fmt.Errorf("run as client %q: no such client in policy %s (clients: %s)", client, s.policy.Name, policy.OrList(names))
	}
	cmd, err := s.lab.ClientCommand(ctx, c.Name, argv...)
	if err != nil {
		return nil, err
	}
	s.setEnv(cmd, "/root", "root", c.Name+"@"+c.Network)
	return cmd, nil
}

// setEnv gives cmd the lab's environment: its home and user, the lab's name
// and who it runs as (for the shell's prompt), the iptables flavour's tools.
func (s *Session) setEnv(cmd *exec.Cmd, home, user, as string) {
	backend := s.policy.Lab.Backend
	if backend == "" {
		backend = "nft"
	}
	cmd.Env = append(cmd.Env, "HOME="+home, "USER="+user, "LOGNAME="+user,
		"EGRESSLAB_LAB="+s.policy.Name, "EGRESSLAB_USER="+as,
		"IPTABLES=iptables-"+backend, "IP6TABLES=ip6tables-"+backend,
		"IPTABLES_RESTORE=iptables-"+backend+"-restore", "IP6TABLES_RESTORE=ip6tables-"+backend+"-restore")
}

// Close tears the lab down: its servers, its namespaces and every process
// still running inside. It waits for probes in flight. Closing twice is
// harmless; every other method of a closed session returns ErrClosed.
func (s *Session) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.lab.Close()
}

func (s *Session) userNames() []string {
	names := make([]string, len(s.policy.Users))
	for i, u := range s.policy.Users {
		names[i] = u.Name
	}
	return names
}
