package main

import (
	"fmt"

	"github.com/egresslab/egresslab/internal/preflight"
	"github.com/spf13/cobra"
)

func newDoctorCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "doctor",
		Short: "Can labs run here? Try each thing a lab needs, and say what to change if not",
		Long: `doctor tries, one at a time and each in throwaway namespaces of its own, what a
lab needs: the privileges, a user namespace with the lab's ids (0-65535), a
network namespace, a veth pair, an nft table, an owner match (nft and
iptables), the tools. It prints one line per step and, for each that fails,
what to change where egresslab runs (a sysctl, a container's capabilities, a
subordinate id range, a package). Nothing is tried on the host.

Run as a user, it checks what rootless labs need: newuidmap and newgidmap
set-user-ID root, a range of 65,536 ids in /etc/subuid and /etc/subgid, user
namespaces the kernel lets a user make; and it notes what runs differently
rootless.

Exit status: 0 every step worked; 3 at least one failed.`,
		Example: `  sudo egresslab doctor
  egresslab doctor                     # as a user: can rootless labs run here?
  docker run --rm --cap-add SYS_ADMIN --cap-add NET_ADMIN ... egresslab doctor`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "egresslab doctor: %s\n", preflight.Detect())
			steps := preflight.Run(cmd.Context())
			for _, s := range steps {
				if s.OK() {
					fmt.Fprintf(out, "ok      %s\n", s.Name)
					continue
				}
				fmt.Fprintf(out, "FAILED  %s: %v\n", s.Name, s.Err)
				for _, f := range s.Fix {
					fmt.Fprintf(out, "        fix: %s\n", f)
				}
			}
			for _, n := range preflight.Notes(preflight.Detect()) {
				fmt.Fprintf(out, "note    %s\n", n)
			}
			if bad := preflight.Failed(steps); len(bad) > 0 {
				return &exitError{code: exitNoLab, err: fmt.Errorf("%d of %d steps failed: labs cannot run here until they pass", len(bad), len(steps))}
			}
			fmt.Fprintln(out, "labs can run here")
			return nil
		},
	}
}
