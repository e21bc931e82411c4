package scenarios_test

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/egresslab/egresslab/scenarios"
)

// dockerHost is a host with one user and two networks of clients.
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

var _ = Describe("networks and clients", func() {
	It("refuses to start a lab for a policy with networks, never skipping its client cells", func(ctx SpecContext) {
		_, err := scenarios.Open(context.Context(ctx), load(dockerHost))
		Expect(err).To(MatchError(scenarios.ErrForwardingNotBuilt))
		Expect(err.Error()).To(HavePrefix("forwarded traffic (networks:) is not built into this lab yet"))
	})
})
