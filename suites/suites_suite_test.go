package suites_test

import (
	"os"
	"testing"

	"github.com/egresslab/egresslab/netns"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestMain(m *testing.M) {
	netns.CloseInheritedFiles()
	netns.Init() // labs re-execute this test binary as their holder
	os.Exit(m.Run())
}

func TestSuites(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "egresslab suites")
}

// hostAtStart is the host as the suite found it: the whole run must leave it so.
var hostAtStart map[string]string

var _ = BeforeSuite(func() {
	// A lab needs root; a suite that cannot run fails loudly, it never skips.
	Expect(os.Geteuid()).To(BeZero(), "egresslab's suites need root: run make test as root")
	hostAtStart = hostState()
})

var _ = AfterSuite(func() {
	removeBinary()
	if hostAtStart != nil {
		expectSameHost(hostAtStart)
	}
})
