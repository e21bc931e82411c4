// Package serve owns the lab's destinations: the listeners that answer for
// every host of a policy (SMTP, HTTP, HTTPS and DNS ports as such, other TCP
// ports accept, UDP ports echo), whole port ranges behind one socket each,
// the lab's DNS, and the record of which listener saw which client.
//
// Listeners on loopback addresses are opened inside the lab's network
// namespace (as their ServedBy identity, through netns.Lab.As), every other
// address's in the world beyond the uplink (netns.Lab.DoWorld); once open,
// they are served from ordinary goroutines. Everything a Server starts is
// closed with its lab (netns.Lab.OnClose).
package serve
