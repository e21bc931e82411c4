#!/bin/sh
# Two source ports: a probe to a destination takes one that a probe before
# it had (the kernel freed it when a reset or an ICMP error ended that flow).
set -e
sysctl -q -w net.ipv4.ip_local_port_range="40000 40001"
$IPTABLES -A OUTPUT -m owner --uid-owner 3000 -j REJECT --reject-with icmp-host-prohibited
$IP6TABLES -A OUTPUT -m owner --uid-owner 3000 -j REJECT --reject-with icmp6-adm-prohibited
for t in "$IPTABLES" "$IP6TABLES"; do
	$t -A OUTPUT -p tcp -m owner --uid-owner 1000 -j REJECT --reject-with tcp-reset
	$t -A OUTPUT -p udp -m owner --uid-owner 1000 -j REJECT
	$t -A OUTPUT -m owner --uid-owner 2000 -j DROP
done
