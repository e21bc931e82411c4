package scenarios_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/egresslab/egresslab/scenarios"
)

// FuzzLoad: no input makes Load panic, and every failure is a positioned
// *Error. go test runs the seeds; go test -fuzz=FuzzLoad ./scenarios/ explores.
func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob("../testdata/bad/*.yaml")
	seeds = append(seeds, "../testdata/golden/mail.yaml", "../testdata/golden/full.yaml")
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fsys := fstest.MapFS{
			"p.yaml":   {Data: data},
			"rules.v4": {Data: []byte("*filter\nCOMMIT\n")},
		}
		_, err := scenarios.LoadFS(fsys, "p.yaml")
		var perr *scenarios.Error
		if err != nil && (!errors.As(err, &perr) || perr.Line <= 0) {
			t.Fatalf("want a positioned *scenarios.Error, got %v", err)
		}
	})
}
