package main

import (
	"github.com/egresslab/egresslab/internal/labterm"

	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"

	"github.com/egresslab/egresslab/scenarios"
	"github.com/spf13/cobra"
)

func newExecCommand() *cobra.Command {
	var file, user, client string
	cmd := &cobra.Command{
		Use:   "exec -f POLICY (--user NAME | --client NAME) -- CMD [ARG...]",
		Short: "Run a real command as a policy's user inside a lab of the policy",
		Long: `exec starts a lab of the policy (its hosts served, its DNS answering on
127.0.0.53 and ::1, the candidate ruleset loaded with the real tools) and runs
CMD inside it as NAME: NAME's uid, gid and supplementary groups, under the
candidate's rules, resolving names through them. The lab goes away when CMD ends.

The exit status is CMD's own (128+N when signal N ended it), unless the lab
could not start: then 2 for bad input and 3 when the lab cannot run, as for verify.
--user root runs CMD as the lab's root. --client NAME runs CMD as one of the
policy's clients (a container, a VM, a LAN machine): in its own network
namespace, as its root, its packets forwarded by the host through the
candidate's FORWARD and nat rules.`,
		Example: `  sudo egresslab exec -f egresslab.yaml --user www-data -- telnet mx.example.test 25
  sudo egresslab exec -f egresslab.yaml --user www-data -- swaks --to root@example.test --server mx.example.test
  sudo egresslab exec -f egresslab.yaml --user postfix -- curl -v smtp://mx.example.test
  sudo egresslab exec -f egresslab.yaml --user www-data -- nc -vz -w 3 2001:db8::25 25
  sudo egresslab exec -f egresslab.yaml --client web -- nc -vz -w 2 192.0.2.25 25`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if user != "" && client != "" {
				return &exitError{code: exitBadInput, err: errors.New("exec: --user and --client name one to run as: give one of them")}
			}
			if user == "" && client == "" {
				return &exitError{code: exitBadInput, err: errors.New("exec: --user NAME (a user of the policy, or root) or --client NAME (a client of its networks) is required")}
			}
			if len(args) == 0 {
				return &exitError{code: exitBadInput, err: errors.New("exec: no command given: egresslab exec -f POLICY --user NAME -- CMD [ARG...]")}
			}
			return runInLab(cmd.Context(), file, runAs{user: user, client: client}, args, nil, "")
		},
	}
	cmd.Flags().SetInterspersed(false) // flags after CMD are CMD's
	cmd.Flags().StringVarP(&file, "file", "f", "egresslab.yaml", "the policy file")
	cmd.Flags().StringVar(&user, "user", "", "the policy user to run as (root: the lab's root)")
	cmd.Flags().StringVar(&client, "client", "", "the policy client (of its networks) to run as")
	_ = cmd.MarkFlagFilename("file", "yaml", "yml")
	_ = cmd.RegisterFlagCompletionFunc("user", completeUsers)
	_ = cmd.RegisterFlagCompletionFunc("client", completeClients)
	return cmd
}

// runAs is who a command runs as in the lab: a user of the policy (or
// root), or one of its clients.
type runAs struct{ user, client string }

func (a runAs) String() string {
	if a.client != "" {
		return "client " + a.client
	}
	return a.user
}

// runInLab runs argv in a lab of the policy file as user, attached to our
// standard streams, and returns an *exitError carrying its exit status. env
// is added to the command's environment.
func runInLab(ctx context.Context, file string, as runAs, argv []string, env []string, banner string) error {
	p, err := scenarios.Load(file)
	if err != nil {
		return err
	}
	user := as.user
	if as.client != "" {
		if _, ok := p.Client(as.client); !ok {
			var names []string
			for _, c := range p.Clients() {
				names = append(names, c.Name)
			}
			if len(names) == 0 {
				return &exitError{code: exitBadInput, err: fmt.Errorf("%s: no client %q in policy %s: it has no networks", file, as.client, p.Name)}
			}
			return &exitError{code: exitBadInput, err: fmt.Errorf("%s: no client %q in policy %s; its clients: %s", file, as.client, p.Name, strings.Join(names, ", "))}
		}
	} else if _, ok := p.User(user); !ok && user != "root" {
		names := []string{"root"}
		for _, u := range p.Users {
			names = append(names, u.Name)
		}
		return &exitError{code: exitBadInput, err: fmt.Errorf("%s: no user %q in policy %s; its users: %s", file, user, p.Name, strings.Join(names, ", "))}
	}
	if banner != "" { // only once the user is known to exist
		fmt.Fprintln(os.Stderr, banner)
	}
	// Our own signal channel, besides main's context: the status we return
	// says which signal ended the run. (A terminal's ^C reaches the command
	// through the lab's own terminal, not as our signal.)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)

	sess, err := scenarios.Open(ctx, p)
	if err != nil {
		return err
	}
	defer sess.Close()
	// The command outlives a cancelled context on purpose: a signal ends it
	// by closing the lab, which kills every process inside.
	var c *exec.Cmd
	if as.client != "" {
		c, err = sess.ClientCommand(context.WithoutCancel(ctx), as.client, argv...)
	} else {
		c, err = sess.Command(context.WithoutCancel(ctx), user, argv...)
	}
	if err != nil {
		return &exitError{code: exitBadInput, err: err}
	}
	// Our terminal, if we have one, is never the lab's: the command gets a
	// pty of the lab's own (pty.go); pipes and files are passed as they are.
	term, err := labterm.Attach(c)
	if err != nil {
		return err
	}
	defer term.Close()
	if t := os.Getenv("TERM"); t != "" {
		c.Env = append(c.Env, "TERM="+t)
	}
	c.Env = append(c.Env, env...)
	if err := c.Start(); err != nil {
		return fmt.Errorf("start %s in lab %s: %w", argv[0], p.Name, err)
	}
	term.Started()
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case err = <-done:
	case sig := <-sigs:
		term.Close() // first: a second signal exits at once
		sess.Close()
		<-done
		return &exitError{code: 128 + int(sig.(syscall.Signal))}
	}
	// What the command's background jobs still hold of the lab's terminal
	// goes with the lab; then the last of its output reaches ours.
	sess.Close()
	term.Finish()
	return &exitError{code: exitStatus(c, err)}
}

// exitStatus is the status a shell would report for the finished command.
func exitStatus(c *exec.Cmd, err error) int {
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return exitNoLab
	}
	ws, ok := c.ProcessState.Sys().(syscall.WaitStatus)
	if ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return c.ProcessState.ExitCode()
}

// completeUsers offers the users of the policy named by --file.
func completeUsers(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
	file, _ := cmd.Flags().GetString("file")
	p, err := scenarios.Load(file)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	names := []string{"root"}
	for _, u := range p.Users {
		names = append(names, u.Name)
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}

// completeClients offers the clients of the policy named by --file.
func completeClients(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
	file, _ := cmd.Flags().GetString("file")
	p, err := scenarios.Load(file)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var names []string
	for _, c := range p.Clients() {
		names = append(names, c.Name)
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}
