// Package ruleset loads a candidate's ruleset into a lab with the real tools
// (iptables-restore and ip6tables-restore of the lab's flavour, nft -f, or a
// script with the lab's iptables tools first on its PATH), and turns a tool's
// refusal into a *RulesetError that names the policy's file and line.
//
// Every tool runs inside the lab, as the lab's root, through the lab's holder
// (netns.Lab.RunCandidate), bounded in time, output and the lab's limits;
// input files are staged in the lab's private /run (netns.Lab.WriteFile).
// Nothing here enters a namespace itself; the functions may be called from
// any goroutine, one load at a time per lab.
package ruleset
