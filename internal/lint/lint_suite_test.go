package lint_test

import (
	"context"
	"os"
	"testing"

	"github.com/egresslab/egresslab/internal/lint"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// rootlessEnv makes this test binary, re-run as an unprivileged user by the
// rootless spec, lint the files it names and print the findings as JSON.
const rootlessEnv = "EGRESSLAB_LINT_TEST_ROOTLESS"

func TestMain(m *testing.M) {
	if os.Getenv(rootlessEnv) != "" {
		os.Exit(lintForRootlessSpec(os.Args[len(os.Args)-1]))
	}
	os.Exit(m.Run())
}

func lintForRootlessSpec(path string) int {
	src, err := lint.FromFiles([]string{path})
	if err == nil {
		var findings []lint.Finding
		if findings, err = lint.Lint(context.Background(), src, lint.Options{}); err == nil {
			_ = lint.WriteJSON(os.Stdout, findings)
			return 0
		}
	}
	os.Stderr.WriteString(err.Error() + "\n")
	return 3
}

func TestLint(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "lint")
}
