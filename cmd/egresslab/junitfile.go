package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/egresslab/egresslab/scenarios"
	"github.com/egresslab/egresslab/scenarios/report"
)

// junitFile is --junit FILE: written exactly once, whatever ends the run
// (a result, an error, a signal), and atomically: the report goes to a
// temporary file beside FILE, renamed over it when complete, so that a CI
// job never finds it empty or cut short.
type junitFile struct {
	path string
	mu   sync.Mutex
	tmp  *os.File // nil once written
}

// createJUnit checks that FILE can be written (a temporary file in its
// directory, before any lab starts: a path that cannot be written is bad
// input) and arranges for a report to be written should a signal end the
// process before the run says how it ended.
func createJUnit(path string, policy *string) (*junitFile, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return nil, fmt.Errorf("--junit %s: %w", path, err)
	}
	j := &junitFile{path: path, tmp: tmp}
	onExit(func(sig string) {
		_ = j.write(func(f *os.File) error {
			return report.WriteJUnitNotRun(f, *policy, "interrupted", "interrupted by "+sig+" before the run ended")
		})
	})
	return j, nil
}

// finish writes the run's report, or, when no run happened, one failing
// test case saying why.
func (j *junitFile) finish(rep *scenarios.Report, policy string, runErr error) error {
	return j.write(func(f *os.File) error {
		if rep != nil {
			return rep.WriteJUnit(f)
		}
		kind := "the lab could not run"
		switch {
		case runErr == nil:
			kind, runErr = "no run", errors.New("no run happened")
		case interrupted():
			sig, _ := interruption()
			kind, runErr = "interrupted", fmt.Errorf("interrupted by %s before the run ended", sig)
		case isBadInput(runErr):
			kind = "bad input"
		}
		return report.WriteJUnitNotRun(f, policy, kind, runErr.Error())
	})
}

// write writes the report with fill and renames it into place, once: a
// later call (a signal's exit racing the run's own ending) does nothing.
func (j *junitFile) write(fill func(f *os.File) error) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.tmp == nil {
		return nil
	}
	tmp := j.tmp
	j.tmp = nil
	err := fill(tmp)
	if err == nil {
		err = tmp.Chmod(0o644) // CreateTemp's 0600 would hide it from a CI step run as another user
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), j.path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write JUnit report %s: %w", j.path, err)
	}
	return nil
}
