package scenarios_test

import (
	"os"
	"testing"

	"github.com/egresslab/egresslab/netns"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestMain(m *testing.M) {
	// No CloseInheritedFiles here: go test's fuzzing workers are this
	// binary, talking to their coordinator over inherited descriptors.
	netns.Init() // labs re-execute this test binary as their holder
	os.Exit(m.Run())
}

func TestScenarios(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Scenarios Suite")
}
