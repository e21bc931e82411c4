// Package github writes a report (package report) as GitHub Actions reads
// it (--format github): the truth table inside ::stop-commands::, an error
// annotation per failed probe, and the Markdown of the job's summary page.
// Annotations are workflow commands on stdout that the runner turns into
// annotations, as GitHub documents them
// (docs.github.com/en/actions/reference/workflows-and-actions/workflow-commands):
//
//	::error file={name},line={line},title={title}::{message}
//
// with the escapes of actions/toolkit's command.ts: in the message %, CR and
// LF become %25, %0D and %0A; in a property value also : and , become %3A
// and %2C. A policy and its rulesets come from a pull request: escaping is
// what keeps a server's greeting or a host name from ending the command and
// starting another.
package github
