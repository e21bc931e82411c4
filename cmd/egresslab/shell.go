package main

import (
	"errors"
	"fmt"
	"os/exec"

	"github.com/spf13/cobra"
)

func newShellCommand() *cobra.Command {
	var file, user, client string
	cmd := &cobra.Command{
		Use:   "shell -f POLICY [--user NAME | --client NAME]",
		Short: "An interactive shell inside a lab of the policy, for debugging a ruleset",
		Long: `shell starts a lab of the policy (its hosts served, its DNS answering on
127.0.0.53 and ::1, the candidate ruleset loaded) and opens an interactive shell
in it, as the lab's root, as NAME, or as a client of the policy's networks
(--client: its own network namespace, as its root, forwarded by the host). The lab's tools are on PATH ($IPTABLES and
$IP6TABLES name the policy's iptables flavour) and the prompt names the lab and
the user. The lab, and everything started in it, goes away when the shell ends.`,
		Example: `  sudo egresslab shell -f egresslab.yaml                  # as the lab's root: nft list ruleset, ip -6 route
  sudo egresslab shell -f egresslab.yaml --user www-data  # telnet mx.example.test 25 as www-data
  sudo egresslab shell -f egresslab.yaml --client web     # curl -v http://192.0.2.80/ from a container`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if user != "" && client != "" {
				return &exitError{code: exitBadInput, err: errors.New("shell: --user and --client name one to be: give one of them")}
			}
			if user == "" && client == "" {
				user = "root"
			}
			as := runAs{user: user, client: client}
			argv := []string{"sh", "-i"}
			// The shell expands the variables the session sets.
			prompt := "[egresslab $EGRESSLAB_LAB as $EGRESSLAB_USER]$ "
			if _, err := exec.LookPath("bash"); err == nil {
				argv = []string{"bash", "--noprofile", "--norc", "-i"}
				prompt = `[egresslab $EGRESSLAB_LAB as $EGRESSLAB_USER] \w\$ `
			}
			banner := fmt.Sprintf("egresslab: a lab of %s, as %s; `exit` ends the shell and the lab", file, as)
			return runInLab(cmd.Context(), file, as, argv, []string{"PS1=" + prompt}, banner)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "egresslab.yaml", "the policy file")
	cmd.Flags().StringVar(&user, "user", "", "the policy user to be (default: the lab's root)")
	_ = cmd.MarkFlagFilename("file", "yaml", "yml")
	cmd.Flags().StringVar(&client, "client", "", "the policy client (of its networks) to be")
	_ = cmd.RegisterFlagCompletionFunc("user", completeUsers)
	_ = cmd.RegisterFlagCompletionFunc("client", completeClients)
	return cmd
}
