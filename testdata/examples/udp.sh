#!/bin/sh
# UDP egress, both families. Run with IPTABLES=iptables IP6TABLES=ip6tables on the host.
set -e
for ipt in "$IPTABLES" "$IP6TABLES"; do
	$ipt -A OUTPUT -p udp --dport 123 -m owner --uid-owner chrony -j ACCEPT
	$ipt -A OUTPUT -p udp --dport 53 -j ACCEPT
	$ipt -A OUTPUT -p udp --dport 514 -j DROP
done
$IPTABLES -A OUTPUT -p udp -j REJECT --reject-with icmp-admin-prohibited
$IP6TABLES -A OUTPUT -p udp -j REJECT --reject-with icmp6-adm-prohibited
