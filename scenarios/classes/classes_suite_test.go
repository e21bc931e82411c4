package classes_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestClasses(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "classes")
}
