// Package probe dials one address as one identity from inside a lab and
// decides what happened (connected, refused, rejected, dropped, error), and
// shows the client's view: which address a resolver-ordered client such as
// telnet tries first.
//
// A probe gathers its flow's facts (gather.go, socket.go: the kernel's
// answers, the lab's evidence) and a pure decide (decide.go) gives the
// outcome and typed evidence. Probe makes no sentences: reports word a
// Result from its Evidence and Facts.
package probe
