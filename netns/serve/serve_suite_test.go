package serve

import (
	"os"
	"testing"

	"github.com/egresslab/egresslab/netns"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// TestMain calls netns.Init first: a lab's holder is this test binary,
// re-executed, and Init is where it takes over.
func TestMain(m *testing.M) {
	netns.CloseInheritedFiles()
	netns.Init()
	os.Exit(m.Run())
}

func TestServe(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "netns/serve")
}

var _ = BeforeSuite(func() {
	// Labs need root; a suite that cannot run fails loudly, it never skips.
	Expect(os.Geteuid()).To(BeZero(), "labs need root: run the suite as root (sudo go test ./...)")
})
