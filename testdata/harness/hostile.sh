# Runs inside the lab as the lab's root: powerful over the lab, nobody outside.
nft flush ruleset
$IPTABLES -F
# The relay's replies vanish at lo's ingress, before any hook of the lab's own
# (all at the IP layer) can see them,
# so the probe waits out its backstop: the run is reliably mid-way for a while.
nft add table netdev early
nft add chain netdev early in '{ type filter hook ingress device lo priority 0; }'
nft add rule netdev early in ip saddr 127.0.0.1 tcp sport 25 drop
$IP6TABLES -A OUTPUT -p icmpv6 -j ACCEPT
iptables-legacy -A INPUT -p tcp --dport 9 -j DROP
nft add table inet hostile
echo "root::0:0::/:/bin/sh" >> /etc/passwd 2>/dev/null || true
(echo x > /etc/egresslab-hostile-was-here) 2>/dev/null || true
echo x > /tmp/egresslab-hostile-was-here
ip link add dummy0 type dummy 2>/dev/null || true
(sleep 3600 &)
true
