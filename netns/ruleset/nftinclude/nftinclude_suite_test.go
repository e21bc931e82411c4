package nftinclude_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestNFTInclude(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "nftinclude")
}
