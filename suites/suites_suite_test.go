package suites_test

import (
	"os"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestSuites(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "egresslab suites")
}

var _ = BeforeSuite(func() {
	// A lab needs root; a suite that cannot run fails loudly, it never skips.
	Expect(os.Geteuid()).To(BeZero(), "egresslab's suites need root: run make test as root")
})
