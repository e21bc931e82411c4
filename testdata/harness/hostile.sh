# Runs inside the lab as the lab's root: powerful over the lab, nobody outside.
nft flush ruleset
$IPTABLES -F
$IPTABLES -A OUTPUT -o lo -p tcp --tcp-flags SYN,ACK SYN,ACK -j DROP   # loopback replies vanish: the return path
$IP6TABLES -A OUTPUT -p icmpv6 -j ACCEPT
iptables-legacy -A INPUT -p tcp --dport 9 -j DROP
nft add table inet hostile
echo "root::0:0::/:/bin/sh" >> /etc/passwd 2>/dev/null || true
(echo x > /etc/egresslab-hostile-was-here) 2>/dev/null || true
echo x > /tmp/egresslab-hostile-was-here
ip link add dummy0 type dummy 2>/dev/null || true
(sleep 3600 &)
true
