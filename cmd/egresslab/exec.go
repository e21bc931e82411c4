package main

import (
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
	var file, user string
	cmd := &cobra.Command{
		Use:   "exec -f POLICY --user NAME -- CMD [ARG...]",
		Short: "Run a real command as a policy's user inside a lab of the policy",
		Long: `exec starts a lab of the policy (its hosts served, its DNS answering on
127.0.0.53 and ::1, the candidate ruleset loaded with the real tools) and runs
CMD inside it as NAME: NAME's uid, gid and supplementary groups, under the
candidate's rules, resolving names through them. The lab goes away when CMD ends.

The exit status is CMD's own (128+N when signal N ended it), unless the lab
could not start: then 2 for bad input and 3 when the lab cannot run, as for verify.
--user root runs CMD as the lab's root.`,
		Example: `  sudo egresslab exec -f egresslab.yaml --user www-data -- telnet mx.example.test 25
  sudo egresslab exec -f egresslab.yaml --user www-data -- swaks --to root@example.test --server mx.example.test
  sudo egresslab exec -f egresslab.yaml --user postfix -- curl -v smtp://mx.example.test
  sudo egresslab exec -f egresslab.yaml --user www-data -- nc -vz -w 3 2001:db8::25 25`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if user == "" {
				return &exitError{code: exitBadInput, err: errors.New("exec: --user NAME is required (a user of the policy, or root)")}
			}
			if len(args) == 0 {
				return &exitError{code: exitBadInput, err: errors.New("exec: no command given: egresslab exec -f POLICY --user NAME -- CMD [ARG...]")}
			}
			return runInLab(cmd.Context(), file, user, args, nil, "")
		},
	}
	cmd.Flags().SetInterspersed(false) // flags after CMD are CMD's
	cmd.Flags().StringVarP(&file, "file", "f", "egresslab.yaml", "the policy file")
	cmd.Flags().StringVar(&user, "user", "", "the policy user to run as (root: the lab's root)")
	_ = cmd.MarkFlagFilename("file", "yaml", "yml")
	_ = cmd.RegisterFlagCompletionFunc("user", completeUsers)
	return cmd
}

// runInLab runs argv in a lab of the policy file as user, attached to our
// standard streams, and returns an *exitError carrying its exit status. env
// is added to the command's environment.
func runInLab(ctx context.Context, file, user string, argv []string, env []string, banner string) error {
	p, err := scenarios.Load(file)
	if err != nil {
		return err
	}
	if _, ok := p.User(user); !ok && user != "root" {
		names := []string{"root"}
		for _, u := range p.Users {
			names = append(names, u.Name)
		}
		return &exitError{code: exitBadInput, err: fmt.Errorf("%s: no user %q in policy %s; its users: %s", file, user, p.Name, strings.Join(names, ", "))}
	}
	if banner != "" { // only once the user is known to exist
		fmt.Fprintln(os.Stderr, banner)
	}
	// Our own signal channel, besides main's context: a terminal's ^C also
	// reaches the command (it is in our process group), and the status we
	// return says which signal ended the run.
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
	c, err := sess.Command(context.WithoutCancel(ctx), user, argv...)
	if err != nil {
		return &exitError{code: exitBadInput, err: err}
	}
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
	if term := os.Getenv("TERM"); term != "" {
		c.Env = append(c.Env, "TERM="+term)
	}
	c.Env = append(c.Env, env...)
	if err := c.Start(); err != nil {
		return fmt.Errorf("start %s in lab %s: %w", argv[0], p.Name, err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case err = <-done:
	case sig := <-sigs:
		sess.Close()
		<-done
		return &exitError{code: 128 + int(sig.(syscall.Signal))}
	}
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
