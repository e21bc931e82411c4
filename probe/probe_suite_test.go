package probe

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// The prober's specs run without root: decide is pure, and the gather part
// dials the test's own loopback listeners through a fake lab (fake_test.go).
func TestProbe(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "probe")
}
