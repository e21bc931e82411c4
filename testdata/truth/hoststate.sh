ip route add blackhole 198.51.100.0/24
ip route add unreachable 203.0.113.0/24
sysctl -qw net.ipv6.conf.all.disable_ipv6=1
