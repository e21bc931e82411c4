package main

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

func TestEgresslab(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "egresslab command")
}
