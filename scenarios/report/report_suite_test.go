package report_test

import (
	"testing"
	"testing/fstest"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/egresslab/egresslab/scenarios/policy"
)

func TestReport(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Report Suite")
}

// load parses a policy written inline.
func load(text string) *policy.Policy {
	GinkgoHelper()
	p, err := policy.LoadFS(fstest.MapFS{"p.yaml": {Data: []byte(text)}}, "p.yaml")
	Expect(err).NotTo(HaveOccurred())
	return p
}
