#!/bin/sh
# Two generations of tooling on one host, as `iptables -V` would tell them
# apart: (legacy) and (nf_tables).
set -e
# An older tool, through iptables-legacy: no HTTPS out.
iptables-legacy  -A OUTPUT -p tcp --dport 443 -j DROP
ip6tables-legacy -A OUTPUT -p tcp --dport 443 -j DROP
# The admin, through iptables-nft (what `iptables -S` lists here): an
# exception for the update server. It is listed, and it changes nothing.
iptables-nft  -I OUTPUT -p tcp -d 192.0.2.90 --dport 443 -j ACCEPT
ip6tables-nft -I OUTPUT -p tcp -d 2001:db8::90 --dport 443 -j ACCEPT
