#!/bin/sh
# The same, and UDP 80 and 443 refused too: QUIC fails at once and browsers
# fall back to TCP, which the proxy sees.
set -e
for ipt in "$IPTABLES" "$IP6TABLES"; do
	$ipt -A OUTPUT -p tcp -m multiport --dports 80,443 -j REJECT --reject-with tcp-reset
	$ipt -A OUTPUT -p udp -m multiport --dports 80,443 -j REJECT
done
