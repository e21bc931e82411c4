// Package rulesetfile reads the files a policy names: the policy file
// itself, its ruleset files and the files an nft ruleset includes (bounded,
// confined beneath the policy's directory), and finds the user and group
// names a ruleset's owner matches resolve (OwnerNames). lint reads the
// rulesets named on its command line through it too (ReadNamed).
//
// It reads files only: no YAML, no lab, no tool.
package rulesetfile
