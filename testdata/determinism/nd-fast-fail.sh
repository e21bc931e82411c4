#!/bin/sh
# issue 16: the input policy drops IPv6 answers and neighbour advertisements
# (as nft-ip-protocol-in-inet), and the host gives up on a neighbour after a
# single solicitation, 10 ms later: every IPv6 probe's discovery ends with the
# kernel's address unreachable (ICMPv6 1/3) while the probe still waits, as
# when a probe joins a discovery that a real client started seconds before.
set -e
nft -f - <<'NFT'
table inet filter {
	chain input {
		type filter hook input priority filter; policy drop;
		iif "lo" accept
		ip protocol { tcp, udp } ct state established,related accept
	}
}
NFT
sysctl -q -w net.ipv6.neigh.eth0.mcast_solicit=1 net.ipv6.neigh.eth0.retrans_time_ms=10
