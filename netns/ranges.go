package netns

import (
	"fmt"
	"net/netip"
)

// RangeService is a range of ports on one address that the lab serves.
type RangeService struct {
	Host        string
	Addr        netip.Addr
	First, Last uint16
	Proto       string   // "tcp" or "udp"
	ServedBy    Identity // as Service.ServedBy
}

func (r RangeService) String() string {
	return fmt.Sprintf("%s %s-%d/%s", r.Host, netip.AddrPortFrom(r.Addr, r.First), r.Last, r.Proto)
}

// ServeRanges serves every port of each range.
func (l *Lab) ServeRanges(ranges []RangeService) error {
	var services []Service
	for _, r := range ranges {
		for n := int(r.First); n <= int(r.Last); n++ {
			services = append(services, Service{Host: r.Host, Addr: r.Addr, Port: uint16(n), Proto: r.Proto, ServedBy: r.ServedBy})
		}
	}
	return l.Serve(services)
}
