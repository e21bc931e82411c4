package suites_test

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// Real clients finish against the lab's listeners: curl over HTTPS (the
// lab's CA is in the lab's trust store and environment), HTTP and SMTP,
// swaks, dig. As the allowed user each exits 0; as the user the candidate
// turns away, each fails with its own "refused".
const clientsDir = "../testdata/clients"

var _ = Describe("real clients finish against the lab's listeners", Label("exec", "clients"), func() {
	BeforeEach(func() {
		for _, tool := range []string{"curl", "swaks", "dig"} {
			_, err := exec.LookPath(tool)
			Expect(err).NotTo(HaveOccurred(), "%s is missing: make deps installs it", tool)
		}
	})

	// inLab runs argv as user in a lab of clients.yaml, with stdin.
	inLab := func(ctx SpecContext, user, stdin string, argv ...string) (int, string) {
		GinkgoHelper()
		ctx2, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx2, egresslabBinary(), append([]string{"exec", "-f", "clients.yaml", "--user", user, "--"}, argv...)...)
		cmd.Dir = clientsDir
		cmd.Stdin = strings.NewReader(stdin)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		GinkgoWriter.Printf("$ egresslab exec --user %s -- %s\n%s", user, strings.Join(argv, " "), out.String())
		if err != nil {
			var ee *exec.ExitError
			Expect(err).To(BeAssignableToTypeOf(ee), "egresslab did not run: %s", out.String())
			return err.(*exec.ExitError).ExitCode(), out.String()
		}
		return 0, out.String()
	}
	message := "Subject: egresslab\r\n\r\nhello from the lab\r\n"

	DescribeTable("as the allowed user, each client exits 0",
		func(ctx SpecContext, stdin, want string, argv ...string) {
			status, out := inLab(ctx, "app", stdin, argv...)
			Expect(status).To(Equal(0), out)
			Expect(out).To(ContainSubstring(want))
		},
		Entry("curl https:// (TLS with the lab's CA, HTTP behind it)", "", "egresslab: web.example.test answered GET /\n200",
			"curl", "-sS", "-w", "%{http_code} ", "https://web.example.test/"),
		Entry("curl https:// over IPv6", "", "200", "curl", "-sS", "-6", "-w", "%{http_code}", "-o", "/dev/null", "https://web.example.test/"),
		Entry("curl http://", "", "200", "curl", "-sS", "-w", "%{http_code}", "-o", "/dev/null", "http://web.example.test/"),
		Entry("curl http:// on 8080", "", "200", "curl", "-sS", "-w", "%{http_code}", "-o", "/dev/null", "http://web.example.test:8080/any/path"),
		Entry("curl smtp:// (HELP)", "", "214 ", "curl", "-sS", "smtp://mx.example.test"),
		Entry("curl smtp:// sending a message", message, "",
			"curl", "-sS", "smtp://mx.example.test", "--mail-from", "app@example.test", "--mail-rcpt", "root@example.test", "-T", "-"),
		Entry("curl smtp:// with STARTTLS on 587", message, "",
			"curl", "-sS", "--ssl-reqd", "smtp://mx.example.test:587", "--mail-from", "app@example.test", "--mail-rcpt", "root@example.test", "-T", "-"),
		Entry("swaks to the domain's MX", "", "<-  221 ", "swaks", "--to", "root@example.test"),
		Entry("swaks with STARTTLS", "", "=== TLS started", "swaks", "--to", "root@example.test", "--server", "mx.example.test", "--port", "587", "--tls"),
		Entry("dig through the lab's resolver", "", "2001:db8::80", "dig", "+short", "web.example.test", "AAAA"),
	)

	DescribeTable("as the user the candidate turns away, each client shows the denial",
		func(ctx SpecContext, wantStatus int, want string, argv ...string) {
			status, out := inLab(ctx, "guest", "", argv...)
			Expect(status).To(Equal(wantStatus), out)
			Expect(out).To(ContainSubstring(want))
		},
		Entry("curl https:// is refused (7: failed to connect)", 7, "Couldn't connect to server", "curl", "-sS", "https://192.0.2.80/"),
		Entry("curl http:// over IPv6 is refused", 7, "Couldn't connect to server", "curl", "-sS", "http://[2001:db8::80]/"),
		Entry("curl smtp:// is refused", 7, "Couldn't connect to server", "curl", "-sS", "smtp://192.0.2.25"),
		Entry("curl by name cannot even resolve (6): the lab's DNS is turned away too", 6, "Could not resolve host: web.example.test",
			"curl", "-sS", "https://web.example.test/"),
		Entry("swaks is refused (2: connection error)", 2, "connect: Connection refused", "swaks", "--to", "root@example.test", "--server", "192.0.2.25"),
		Entry("dig reaches no server (9)", 9, "no servers could be reached", "dig", "web.example.test"),
	)
})
