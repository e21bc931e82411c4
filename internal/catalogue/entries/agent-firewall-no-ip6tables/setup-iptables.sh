#!/bin/sh
# The shape of the agent container's iptables setup. This host has no working
# ip6tables (no ip6_tables support, say): IP6TABLES names a tool that is not
# there, so the script's own check fails as it would on such a host.
set -e
IP6TABLES=/nonexistent/ip6tables

$IPTABLES -A OUTPUT -o lo -j ACCEPT
$IPTABLES -A OUTPUT -m state --state ESTABLISHED,RELATED -j ACCEPT
$IPTABLES -A OUTPUT -p tcp -d 192.0.2.30 --dport 3128 -j ACCEPT    # the proxy
$IPTABLES -A OUTPUT -p udp -d 192.0.2.53 --dport 53 -j ACCEPT      # trusted DNS
$IPTABLES -A OUTPUT -j DROP

if "$IP6TABLES" -L OUTPUT -n >/dev/null 2>&1; then
	$IP6TABLES -A OUTPUT -o lo -j ACCEPT
	$IP6TABLES -A OUTPUT -p ipv6-icmp -j ACCEPT
	$IP6TABLES -A OUTPUT -j DROP
else
	echo "warning: ip6tables is not available; IPv6 traffic is not filtered" >&2
fi
