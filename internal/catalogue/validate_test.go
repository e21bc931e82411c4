package catalogue

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("a variant's documented cells", func() {
	var v Variant
	BeforeEach(func() {
		s, err := Find("quic-udp-443")
		Expect(err).NotTo(HaveOccurred())
		v = s.Variants[0]
		v.Bypass, v.Broken, v.Answered = nil, nil, nil
	})
	DescribeTable("are refused when they cannot mean anything",
		func(set func(*Variant), want string) {
			set(&v)
			Expect(v.validate()).To(MatchError(ContainSubstring(want)))
		},
		Entry("a cell that matches no probe", func(v *Variant) { v.Bypass = []Cell{{User: "bob", Host: "www.example.test", Family: "ipv6"}} }, "matches no probe"),
		Entry("a family that is not one", func(v *Variant) { v.Bypass = []Cell{{User: "alice", Host: "www.example.test", Family: "v6"}} }, `family "v6"`),
		Entry("a port the host does not serve", func(v *Variant) {
			v.Bypass = []Cell{{User: "alice", Host: "www.example.test", Family: "ipv6", Port: "80/udp"}}
		}, "matches no probe"),
		Entry("a port that is not one", func(v *Variant) {
			v.Bypass = []Cell{{User: "alice", Host: "www.example.test", Family: "ipv6", Port: "443/sctp"}}
		}, `port "443/sctp"`),
		Entry("a broken cell observed connecting", func(v *Variant) {
			v.Broken = []Cell{{User: "alice", Host: "www.example.test", Family: "ipv6", Observed: "connected"}}
		}, "want dropped, rejected or refused"),
		Entry("a bypass that names an outcome", func(v *Variant) {
			v.Bypass = []Cell{{User: "alice", Host: "www.example.test", Family: "ipv6", Observed: "dropped"}}
		}, "a bypass connects"),
		Entry("a cell naming both a user and a client", func(v *Variant) {
			v.Bypass = []Cell{{User: "alice", Client: "web", Host: "www.example.test", Family: "ipv6"}}
		}, "want one of user and client"),
		Entry("a cell naming neither", func(v *Variant) { v.Bypass = []Cell{{Host: "www.example.test", Family: "ipv6"}} }, "want one of user and client"),
		Entry("a client the policy lacks", func(v *Variant) {
			v.Bypass = []Cell{{Client: "alice", Host: "www.example.test", Family: "ipv6"}}
		}, "matches no probe"),
		Entry("an answer by a host the policy lacks", func(v *Variant) {
			v.Answered = []Cell{{User: "alice", Host: "www.example.test", Family: "ipv6", By: "nowhere.example.test"}}
		}, `by "nowhere.example.test"`),
	)
	It("takes a port written as a bare number as tcp", func() {
		v.Bypass = []Cell{{User: "alice", Host: "www.example.test", Family: "ipv6", Port: "443"}}
		Expect(v.validate()).To(Succeed())
	})
})
