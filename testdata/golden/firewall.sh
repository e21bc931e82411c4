#!/bin/sh
# ipt46: one rule, both families.
for ipt in "$IPTABLES" "$IP6TABLES"; do
	"$ipt" -A OUTPUT -p udp --dport 53 -j ACCEPT
done
