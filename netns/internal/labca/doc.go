// Package labca is a lab's own certificate authority, made in memory when
// the lab starts and gone with it: the lab's TLS listeners serve
// certificates it signs, and the lab's trust store holds it alone.
//
// Thread and namespace rules: none; it touches no namespace, and a CA may
// be used from any goroutine.
package labca
