package netns
import ("os";"testing";"net/netip")
func TestZZDumpTrace(t *testing.T){ os.WriteFile("/tmp/trace2.nft", []byte(traceRuleset([]Destination{{Addr: netip.MustParseAddr("192.0.2.1"), First: 1, Last: 1023},{Addr: netip.MustParseAddr("192.0.2.1"), First: 25, Last: 25},{Addr: netip.MustParseAddr("2001:db8::1"), First: 443, Last: 443}})), 0644) }
