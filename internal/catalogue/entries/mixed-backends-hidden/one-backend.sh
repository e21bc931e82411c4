#!/bin/sh
# The same intent in one backend: the exception first, then the DROP.
set -e
for ipt in iptables-nft ip6tables-nft; do
	$ipt -A OUTPUT -p tcp --dport 443 -j DROP
done
iptables-nft  -I OUTPUT -p tcp -d 192.0.2.90 --dport 443 -j ACCEPT
ip6tables-nft -I OUTPUT -p tcp -d 2001:db8::90 --dport 443 -j ACCEPT
