ipset create blocked hash:net
ipset add blocked 198.51.100.0/24
ipset add blocked 203.0.113.7
ipset create blocked6 hash:net family inet6
ipset add blocked6 2001:db8:bad::/48
ipset create mailports bitmap:port range 0-1024
ipset add mailports 25
ipset add mailports 587
iptables-legacy -A OUTPUT -m set --match-set blocked dst -j DROP
iptables-legacy -A OUTPUT -p tcp -m set --match-set mailports dst -m owner --uid-owner 107 -j ACCEPT
iptables-legacy -A OUTPUT -p tcp -m set --match-set mailports dst -j REJECT
ip6tables-legacy -A OUTPUT -m set ! --match-set blocked6 dst -p udp -j ACCEPT
ip6tables-legacy -A OUTPUT -j DROP
