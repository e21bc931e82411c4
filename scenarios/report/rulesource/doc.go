// Package rulesource finds where the rule that decided a probe was written:
// a file of the candidate ruleset and its line.
//
// The trace names a rule by its place in the kernel's chain; the line is
// found by replaying the ruleset file in order (iptables-restore's -A, -I,
// -F, :CHAIN POLICY; nft's table and chain blocks, add rule, insert rule) to
// the same place, then checked: the line must carry the rule's verdict.
// Where the replay cannot be exact (a user's script, an nft include or a
// rule placed by handle or index, a delete by rule text) no line is given:
// the rule's text still says which.
//
// It reads the policy's ruleset text only: no tool, no kernel, no lab.
package rulesource
