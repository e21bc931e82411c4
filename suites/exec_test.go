package suites_test

import (
	"bytes"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gexec"
)

// Real clients from Debian's packages (telnet, swaks, curl, nc), run by
// `egresslab exec` as a policy user inside a lab with its listeners and DNS
// up: the candidate's rules apply to them, names resolve through them, and
// the command's own exit status comes back.
const execDir = "../testdata/exec"

var _ = Describe("egresslab exec and shell: real clients in the lab", Ordered, Label("exec"), func() {
	var bin string

	BeforeAll(func() {
		var err error
		bin, err = gexec.Build("github.com/egresslab/egresslab/cmd/egresslab")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(gexec.CleanupBuildArtifacts)
		for _, tool := range []string{"telnet", "swaks", "curl", "nc", "getent", "bash"} {
			_, err := exec.LookPath(tool)
			Expect(err).NotTo(HaveOccurred(), "%s is missing: make deps installs it", tool)
		}
	})

	// run runs egresslab with args and stdin, returning its exit status and
	// what it printed on stdout and stderr together.
	run := func(ctx SpecContext, stdin string, args ...string) (int, string) {
		GinkgoHelper()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Stdin = strings.NewReader(stdin)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		if err != nil {
			var ee *exec.ExitError
			Expect(err).To(BeAssignableToTypeOf(ee), "egresslab did not run: %s", out.String())
		}
		GinkgoWriter.Printf("$ egresslab %s\n%s", strings.Join(args, " "), out.String())
		return cmd.ProcessState.ExitCode(), out.String()
	}
	policy := func(name string) string { return filepath.Join(execDir, name) }

	It("shows the IPv6 bypass through a real telnet: www-data connects over IPv6 when only iptables rules load",
		SpecTimeout(time.Minute), func(ctx SpecContext) {
			// telnet leaves at its stdin's end, maybe before the greeting
			// comes: type QUIT, and end stdin only once the server has
			// greeted (it then says goodbye and closes), as a person would.
			cmd := exec.CommandContext(ctx, bin, "exec", "-f", policy("ipv4-only.yaml"), "--user", "www-data", "--",
				"telnet", "mx.example.test", "25")
			stdin, err := cmd.StdinPipe()
			Expect(err).NotTo(HaveOccurred())
			out := &watchWriter{want: "220 ", seen: make(chan struct{})}
			cmd.Stdout, cmd.Stderr = out, out
			Expect(cmd.Start()).To(Succeed())
			_, err = io.WriteString(stdin, "QUIT\n")
			Expect(err).NotTo(HaveOccurred())
			select {
			case <-out.seen:
			case <-ctx.Done():
			}
			stdin.Close()
			err = cmd.Wait()
			if err != nil {
				var ee *exec.ExitError
				Expect(err).To(BeAssignableToTypeOf(ee), "egresslab did not run: %s", out.String())
			}
			GinkgoWriter.Printf("$ egresslab exec ... telnet mx.example.test 25\n%s", out.String())
			status := cmd.ProcessState.ExitCode()
			Expect(out.String()).To(ContainSubstring("Trying 2001:db8::25...\nConnected to mx.example.test."))
			Expect(out.String()).To(ContainSubstring("220 mx.example.test ESMTP"))
			Expect(status).To(Equal(0))
		})

	It("shows the fix through the same telnet: refused on both families, telnet's own exit status 1",
		SpecTimeout(time.Minute), func(ctx SpecContext) {
			status, out := run(ctx, "", "exec", "-f", policy("mail.yaml"), "--user", "www-data", "--",
				"telnet", "mx.example.test", "25")
			Expect(out).To(ContainSubstring("Trying 2001:db8::25..."))
			Expect(out).To(ContainSubstring("Trying 192.0.2.25..."))
			Expect(out).To(ContainSubstring("Unable to connect to remote host: Connection refused"))
			Expect(out).NotTo(ContainSubstring("Connected to"))
			Expect(status).To(Equal(1))
		})

	It("sends mail with swaks as postfix, and swaks fails to connect as www-data", SpecTimeout(time.Minute), func(ctx SpecContext) {
		status, out := run(ctx, "", "exec", "-f", policy("mail.yaml"), "--user", "postfix", "--",
			"swaks", "--to", "root@example.test", "--server", "mx.example.test")
		Expect(out).To(ContainSubstring("<-  250 "))
		Expect(out).To(ContainSubstring("<-  221 "))
		Expect(status).To(Equal(0))

		status, out = run(ctx, "", "exec", "-f", policy("mail.yaml"), "--user", "www-data", "--",
			"swaks", "--to", "root@example.test", "--server", "mx.example.test")
		Expect(out).To(ContainSubstring("Connection refused"))
		Expect(status).To(Equal(2), "swaks' status for 'error connecting to remote server'")
	})

	It("talks SMTP with curl smtp:// as postfix, and curl cannot connect as www-data", SpecTimeout(time.Minute), func(ctx SpecContext) {
		status, out := run(ctx, "Subject: egresslab\r\n\r\nhello\r\n", "exec", "-f", policy("mail.yaml"), "--user", "postfix", "--",
			"curl", "-sS", "smtp://mx.example.test", "--mail-from", "postfix@example.test", "--mail-rcpt", "root@example.test", "-T", "-")
		Expect(out).To(BeEmpty())
		Expect(status).To(Equal(0))

		status, out = run(ctx, "", "exec", "-f", policy("mail.yaml"), "--user", "www-data", "--",
			"curl", "-sS", "smtp://mx.example.test")
		Expect(out).To(ContainSubstring("Failed to connect to mx.example.test port 25"))
		Expect(status).To(Equal(7), "curl's status for 'failed to connect to host'")
	})

	It("dials one address with nc: the IPv6 address leaks, the IPv4 one is refused", SpecTimeout(time.Minute), func(ctx SpecContext) {
		status, out := run(ctx, "", "exec", "-f", policy("ipv4-only.yaml"), "--user", "www-data", "--",
			"nc", "-vz", "-n", "-w", "3", "2001:db8::25", "25")
		Expect(out).To(MatchRegexp(`Connection to 2001:db8::25 25 port \[tcp/\*\] succeeded!`))
		Expect(status).To(Equal(0))

		status, out = run(ctx, "", "exec", "-f", policy("ipv4-only.yaml"), "--user", "www-data", "--",
			"nc", "-vz", "-n", "-w", "3", "192.0.2.25", "25")
		Expect(out).To(ContainSubstring("connect to 192.0.2.25 port 25 (tcp) failed: Connection refused"))
		Expect(status).To(Equal(1))
	})

	It("runs as the user's whole identity (uid, gid, supplementary groups) and returns the command's status",
		SpecTimeout(time.Minute), func(ctx SpecContext) {
			status, out := run(ctx, "", "exec", "-f", policy("mail.yaml"), "--user", "www-data", "--",
				"sh", "-c", "id; exit 7")
			Expect(out).To(Equal("uid=33(www-data) gid=33(www-data) groups=33(www-data),1001(mailers)\n"))
			Expect(status).To(Equal(7))
		})

	It("resolves names through the candidate's rules: a ruleset that rejects www-data's DNS leaves getent with nothing",
		SpecTimeout(time.Minute), func(ctx SpecContext) {
			status, out := run(ctx, "", "exec", "-f", policy("dns-blocked.yaml"), "--user", "www-data", "--",
				"getent", "ahosts", "mx.example.test")
			Expect(out).To(BeEmpty())
			Expect(status).To(Equal(2), "getent's status for 'key not found'")

			status, out = run(ctx, "", "exec", "-f", policy("dns-blocked.yaml"), "--user", "root", "--",
				"getent", "ahosts", "mx.example.test")
			Expect(out).To(ContainSubstring("2001:db8::25"))
			Expect(out).To(ContainSubstring("192.0.2.25"))
			Expect(status).To(Equal(0))
		})

	It("refuses a user the policy does not name, as bad input (2)", func(ctx SpecContext) {
		status, out := run(ctx, "", "exec", "-f", policy("mail.yaml"), "--user", "mallory", "--", "true")
		Expect(out).To(ContainSubstring(`no user "mallory" in policy exec-mail`))
		Expect(status).To(Equal(2))
	})

	It("opens a shell in the lab whose prompt names the lab and the user, and ends with it", SpecTimeout(time.Minute), func(ctx SpecContext) {
		status, out := run(ctx, "id -un\necho \"$IPTABLES\"\nexit 4\n", "shell", "-f", policy("mail.yaml"), "--user", "www-data")
		Expect(out).To(ContainSubstring("[egresslab exec-mail as www-data] "))
		Expect(out).To(ContainSubstring("\nwww-data\n"), "id -un, as www-data")
		Expect(out).To(ContainSubstring("\niptables-nft\n"), "$IPTABLES names the lab's flavour")
		Expect(status).To(Equal(4))
	})
})

// watchWriter keeps what is written and closes seen once want appears.
type watchWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	seen chan struct{}
	done bool
}

func (w *watchWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(p)
	if !w.done && strings.Contains(w.buf.String(), w.want) {
		w.done = true
		close(w.seen)
	}
	return n, err
}

func (w *watchWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
