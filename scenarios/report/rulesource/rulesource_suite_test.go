package rulesource_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestRuleSource(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "RuleSource Suite")
}
