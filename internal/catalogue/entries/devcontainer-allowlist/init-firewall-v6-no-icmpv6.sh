#!/bin/sh
# A fix that copies the IPv4 rules to ip6tables line by line: the allowlist
# is right, but nothing accepts ICMPv6, so the neighbour solicitations that
# every IPv6 connection needs first are rejected with everything else.
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

$IP6TABLES -F OUTPUT
$IP6TABLES -F INPUT
ipset create allowed-domains-v6 hash:net family inet6
ipset add allowed-domains-v6 2001:db8::10     # api.github.example's AAAA record

$IP6TABLES -A OUTPUT -p udp --dport 53 -j ACCEPT
$IP6TABLES -A INPUT  -p udp --sport 53 -j ACCEPT
$IP6TABLES -A INPUT  -i lo -j ACCEPT
$IP6TABLES -A OUTPUT -o lo -j ACCEPT

$IP6TABLES -P INPUT DROP
$IP6TABLES -P FORWARD DROP
$IP6TABLES -P OUTPUT DROP
$IP6TABLES -A INPUT  -m state --state ESTABLISHED,RELATED -j ACCEPT
$IP6TABLES -A OUTPUT -m state --state ESTABLISHED,RELATED -j ACCEPT
$IP6TABLES -A OUTPUT -m set --match-set allowed-domains-v6 dst -j ACCEPT
$IP6TABLES -A OUTPUT -j REJECT --reject-with icmp6-adm-prohibited
