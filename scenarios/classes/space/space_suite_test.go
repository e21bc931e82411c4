package space_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestSpace(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "space")
}
