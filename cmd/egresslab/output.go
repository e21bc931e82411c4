package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/egresslab/egresslab/netns/ruleset"
	"github.com/egresslab/egresslab/scenarios"
	"github.com/egresslab/egresslab/scenarios/report"
	"github.com/egresslab/egresslab/scenarios/report/github"
)

// formats are verify's --format values.
var formats = []string{"table", "json", "github"}

// writeReport prints rep in format. github also appends the Markdown
// summary to $GITHUB_STEP_SUMMARY when the job sets it.
func writeReport(out io.Writer, format string, rep *scenarios.Report) error {
	switch format {
	case "json":
		return rep.WriteJSON(out)
	case "github":
		if err := github.Write(out, rep); err != nil {
			return err
		}
		return appendStepSummary(func(w io.Writer) error { return github.WriteSummary(w, rep) })
	}
	return rep.WriteTable(out, useColor(os.Stdout))
}

// writeRunError prints, in format, a run that ended without a report: a
// JSON document with the error, or a GitHub annotation at the file and
// line the error names. The table format says nothing more: the message
// goes to stderr as always.
func writeRunError(out io.Writer, format, policy, file string, err error) {
	e := runError(err)
	switch format {
	case "json":
		_ = report.WriteJSONError(out, policy, e)
	case "github":
		var all scenarios.Errors
		if errors.As(err, &all) { // every policy error at its own place
			for _, pe := range all {
				_ = github.WriteError(out, policy, pe.File, pe.Line, scenarios.RunError{Status: e.Status, Message: pe.Msg})
			}
		} else {
			at, line := errorPlace(file, err)
			_ = github.WriteError(out, policy, at, line, e)
		}
		_ = appendStepSummary(func(w io.Writer) error { return github.WriteErrorSummary(w, policy, e) })
	}
}

// runError is err as reports carry it: its exit status and message.
func runError(err error) scenarios.RunError {
	if sig, status := interruption(); status != 0 && interrupted() {
		return scenarios.RunError{Status: status, Message: "interrupted by " + sig}
	}
	code, msg := describe(err)
	return scenarios.RunError{Status: code, Message: msg}
}

// interrupted reports whether a signal ended the run.
func interrupted() bool {
	_, status := interruption()
	return status != 0
}

// errorPlace is the file and line an error names: the policy's, a
// ruleset's as the tool reported it, or else the policy file itself.
func errorPlace(file string, err error) (string, int) {
	var perr *scenarios.Error
	var rerr *ruleset.RulesetError
	switch {
	case errors.As(err, &perr):
		return perr.File, perr.Line
	case errors.As(err, &rerr):
		return filepath.Join(filepath.Dir(file), rerr.File), rerr.Line
	case errors.Is(err, context.Canceled):
		return "", 0
	}
	return file, 0
}

// appendStepSummary appends to the file GitHub names in
// $GITHUB_STEP_SUMMARY (each step's summary is appended to, never
// replaced); without it, nothing.
func appendStepSummary(write func(io.Writer) error) error {
	path := os.Getenv("GITHUB_STEP_SUMMARY")
	if path == "" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("write the step summary: %w", err)
	}
	err = write(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write the step summary %s: %w", path, err)
	}
	return nil
}
