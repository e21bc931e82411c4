#!/bin/sh
# Direct web traffic is refused (a reset, so browsers give up at once and
# use the proxy), in both families; the proxy itself listens on 3128.
set -e
for ipt in "$IPTABLES" "$IP6TABLES"; do
	$ipt -A OUTPUT -p tcp -m multiport --dports 80,443 -j REJECT --reject-with tcp-reset
done
