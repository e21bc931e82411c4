// Package probe dials one address as one identity from inside a lab and
// classifies what happened (connected, refused, rejected, dropped, error), and
// shows the client's view: which address a resolver-ordered client such as
// telnet tries first.
package probe
