// Package words makes the sentences a report says about one probe: what it
// saw and why its outcome is what it is (Detail), the host's state that
// decided it (Cause), the service that answered (AnsweredBy), a client's
// view as telnet would print it (WriteTelnet), and the deciding rule as a
// reader names it (RuleVerdict, DecidedBy, RuleNote). Each is made from the
// prober's and the trace's typed values; nothing below builds prose.
package words
