#!/bin/sh
# The shape of the devcontainer's init-firewall.sh, IPv4 only. The real script
# resolves each allowed domain with dig and reads GitHub's meta API; here the
# answers are written out. Nothing below touches ip6tables.
set -e
$IPTABLES -F OUTPUT
$IPTABLES -F INPUT
ipset create allowed-domains hash:net
ipset add allowed-domains 192.0.2.10          # api.github.example's A record

$IPTABLES -A OUTPUT -p udp --dport 53 -j ACCEPT     # DNS
$IPTABLES -A INPUT  -p udp --sport 53 -j ACCEPT
$IPTABLES -A OUTPUT -p tcp --dport 22 -j ACCEPT     # SSH
$IPTABLES -A INPUT  -p tcp --sport 22 -m state --state ESTABLISHED -j ACCEPT
$IPTABLES -A INPUT  -i lo -j ACCEPT                 # localhost
$IPTABLES -A OUTPUT -o lo -j ACCEPT

$IPTABLES -P INPUT DROP
$IPTABLES -P FORWARD DROP
$IPTABLES -P OUTPUT DROP
$IPTABLES -A INPUT  -m state --state ESTABLISHED,RELATED -j ACCEPT
$IPTABLES -A OUTPUT -m state --state ESTABLISHED,RELATED -j ACCEPT
$IPTABLES -A OUTPUT -m set --match-set allowed-domains dst -j ACCEPT
$IPTABLES -A OUTPUT -j REJECT --reject-with icmp-admin-prohibited
