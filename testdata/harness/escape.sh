#!/bin/sh
# Runs inside the lab as the lab's root and tries to reach the host. Each step
# must fail or stay inside the lab; the suite compares the host before and after.
echo 'root::0:0::/:/bin/sh' >> /etc/passwd 2>/dev/null
echo x > /etc/egresslab-escape 2>/dev/null
echo x > /tmp/egresslab-escape-was-here
iptables -F; ip6tables -F; iptables-legacy -F; ip6tables-legacy -F
nft flush ruleset
ip link set lo down
ip link del eth0 2>/dev/null
# PID 1 is the host's init unless the lab has a /proc of its own; entering a
# namespace that is not the lab's is an escape.
for ns in net mnt ipc uts; do
  if [ "$(readlink /proc/1/ns/$ns)" != "$(readlink /proc/self/ns/$ns)" ] &&
     nsenter -t 1 --$( [ $ns = mnt ] && echo mount || echo $ns ) true 2>/dev/null; then
    echo "ESCAPED into pid 1's $ns namespace" >&2
  fi
done
ipcmk -M 4096 >/dev/null 2>&1; ipcmk -Q >/dev/null 2>&1; ipcmk -S 1 >/dev/null 2>&1
hostname egresslab-owned 2>/dev/null
(sleep 3600 &)
exit 0
