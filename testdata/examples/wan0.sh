#!/bin/sh
# Default deny out; loopback free; HTTPS out of the uplink.
set -e
for ipt in "$IPTABLES" "$IP6TABLES"; do
	$ipt -P OUTPUT DROP
	$ipt -A OUTPUT -o lo -j ACCEPT
	$ipt -A OUTPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
	$ipt -A OUTPUT -o wan0 -p tcp --dport 443 -j ACCEPT
done
# IPv6 needs neighbour discovery to reach anything off the host
$IP6TABLES -I OUTPUT 1 -p ipv6-icmp --icmpv6-type neighbour-solicitation -j ACCEPT
$IP6TABLES -I OUTPUT 1 -p ipv6-icmp --icmpv6-type neighbour-advertisement -j ACCEPT
