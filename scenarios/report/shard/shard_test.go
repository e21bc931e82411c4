package shard_test

import (
	"net/netip"

	"github.com/egresslab/egresslab/scenarios/policy"
	"github.com/egresslab/egresslab/scenarios/report/shard"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("shards", func() {
	DescribeTable("--shard K/N",
		func(in string, want shard.Spec, bad bool) {
			got, err := shard.Parse(in)
			if bad {
				Expect(err).To(MatchError(`--shard "` + in + `": want K/N with 1 <= K <= N, e.g. 2/3`))
				return
			}
			Expect(err).NotTo(HaveOccurred())
			Expect(got).To(Equal(want))
		},
		Entry("1/1", "1/1", shard.Spec{K: 1, N: 1}, false),
		Entry("3/3", "3/3", shard.Spec{K: 3, N: 3}, false),
		Entry("K above N", "4/3", shard.Spec{}, true),
		Entry("K 0", "0/3", shard.Spec{}, true),
		Entry("N 0", "0/0", shard.Spec{}, true),
		Entry("no slash", "2", shard.Spec{}, true),
		Entry("not numbers", "a/b", shard.Spec{}, true),
		Entry("negative", "-1/3", shard.Spec{}, true),
	)

	It("a cell's shard depends on what it is, not where it is, and does not change between versions", func() {
		cell := policy.Probe{User: policy.User{Name: "www-data", UID: 33}, Host: "mx.example.test",
			Address: netip.MustParseAddr("2001:db8::25"), Port: policy.Port{Number: 25, Proto: "tcp"}}
		moved := cell
		moved.Rule, moved.Line, moved.Expect = 7, 99, policy.Deny // another policy's place and verdict for it
		Expect(shard.Of(moved, 3)).To(Equal(shard.Of(cell, 3)))
		// FNV-1a 64 of "www-data\x00mx.example.test\x002001:db8::25\x0025\x00tcp":
		// shards already written name this split; a change here breaks
		// merging them with new ones.
		Expect([]int{shard.Of(cell, 2), shard.Of(cell, 3), shard.Of(cell, 7)}).To(Equal([]int{1, 2, 1}), "computed independently (Python) from FNV-1a 64")
	})
})
