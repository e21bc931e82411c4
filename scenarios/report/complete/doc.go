// Package complete renders verify --complete's part of a report: the table
// of the loaded ruleset's classes below the policy's, the completeness line,
// the classes' JSON and JUnit text, and diff --complete's changed classes.
//
// It knows a class (scenarios/classes) and what its representative's probe
// gave, as a Row package report fills in: package report owns the probes'
// words and evidence, this package only lays the classes out.
package complete
