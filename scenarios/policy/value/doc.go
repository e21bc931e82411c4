// Package value parses and checks the single values a policy file writes:
// account, DNS, uplink and network names, addresses and prefixes (each kind
// with the rule for where it appears), and ports and port ranges. Its
// errors carry no position: the decoder of package policy places them. It
// imports nothing of the project.
package value
