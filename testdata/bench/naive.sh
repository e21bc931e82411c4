#!/usr/bin/env bash
# naive.sh: the baseline that egresslab is measured against (issue 4). It checks
# the 100-probe policy of matrix100.yaml the way an admin would by hand:
# `ip netns add`, a veth to a second namespace for the addresses beyond the
# uplink, iptables-restore and ip6tables-restore of the same ruleset, socat
# listeners, and then one probe at a time:
#
#   timeout 1 ip netns exec LAB setpriv --reuid U --regid G --clear-groups \
#       bash -c 'echo > /dev/tcp/ADDR/PORT'
#
# A probe that connects exits 0, a refused one fails at once, a dropped one
# is killed by timeout (status 124): that is how the admin tells them apart,
# and why a drop costs a whole second. The topology below is matrix100.yaml's,
# written out by hand; change both together.
#
# Needs root. Everything it creates lives in two namespaces of its own,
# deleted on exit (trap), whatever happens; the host's own rules and links are
# never touched. Prints its counts and its own wall time; the last line,
# "naive: ...", is what compare.sh reads.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
rules=$here/matrix100.rules

t0=$EPOCHREALTIME

if [ "$(id -u)" -ne 0 ]; then
	echo "naive.sh: needs root (ip netns add, iptables-restore)" >&2
	exit 3
fi
if ! command -v socat >/dev/null; then
	echo "naive.sh: socat is missing; installing it (apt-get install -y socat)" >&2
	apt-get install -y socat >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y socat >/dev/null; }
	t0=$EPOCHREALTIME # the install is not the baseline's cost
fi

lab=egl-naive-lab-$$
world=egl-naive-world-$$
listeners=()

cleanup() {
	local pid
	for pid in "${listeners[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	ip netns del "$lab" 2>/dev/null || true
	ip netns del "$world" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The lab (this "host") and the world one hop beyond its eth0.
ip netns add "$lab"
ip netns add "$world"
ip -n "$lab" link set lo up
ip -n "$world" link set lo up
ip -n "$lab" link add eth0 type veth peer name uplink netns "$world"
ip -n "$lab" addr add 203.0.113.10/24 dev eth0
ip -n "$lab" addr add 2001:db8:1::10/64 dev eth0 nodad
ip -n "$world" addr add 203.0.113.1/24 dev uplink
ip -n "$world" addr add 2001:db8:1::1/64 dev uplink nodad
ip -n "$world" addr add 192.0.2.80/32 dev lo # app.example.test
ip -n "$world" addr add 2001:db8::80/128 dev lo
ip -n "$lab" link set eth0 up
ip -n "$world" link set uplink up
ip -n "$lab" route add default via 203.0.113.1
ip -n "$lab" -6 route add default via 2001:db8:1::1

# The candidate ruleset, both families.
ip netns exec "$lab" iptables-restore <"$rules"
ip netns exec "$lab" ip6tables-restore <"$rules"

# Listeners: app.example.test in the world, svc.localhost on the lab's lo.
ports=(25 80 443 5432 8080)
for port in "${ports[@]}"; do
	ip netns exec "$world" socat TCP4-LISTEN:"$port",bind=192.0.2.80,reuseaddr,fork /dev/null &
	listeners+=($!)
	ip netns exec "$world" socat TCP6-LISTEN:"$port",bind='[2001:db8::80]',ipv6only=1,reuseaddr,fork /dev/null &
	listeners+=($!)
	ip netns exec "$lab" socat TCP4-LISTEN:"$port",bind=127.0.0.1,reuseaddr,fork /dev/null &
	listeners+=($!)
	ip netns exec "$lab" socat TCP6-LISTEN:"$port",bind='[::1]',ipv6only=1,reuseaddr,fork /dev/null &
	listeners+=($!)
done
# Wait until all 20 listen (no sleep-and-hope).
for _ in $(seq 200); do
	n=$(($(ip netns exec "$world" ss -Hltn | wc -l) + $(ip netns exec "$lab" ss -Hltn | wc -l)))
	[ "$n" -ge 20 ] && break
	sleep 0.01
done
if [ "$n" -lt 20 ]; then
	echo "naive.sh: only $n of 20 listeners came up" >&2
	exit 3
fi
t1=$EPOCHREALTIME

# Every user x host x address x port, in matrix100.yaml's order.
users=("postfix 107 114" "www-data 33 33" "backup 34 34" "alice 1000 1000" "bob 1001 1001")
addresses=(192.0.2.80 2001:db8::80 127.0.0.1 ::1)
connected=0 refused=0 timedout=0
for user in "${users[@]}"; do
	read -r _ uid gid <<<"$user"
	for addr in "${addresses[@]}"; do
		for port in "${ports[@]}"; do
			rc=0
			timeout 1 ip netns exec "$lab" setpriv --reuid "$uid" --regid "$gid" --clear-groups \
				bash -c "echo > /dev/tcp/$addr/$port" 2>/dev/null || rc=$?
			case $rc in
			0) connected=$((connected + 1)) ;;
			124) timedout=$((timedout + 1)) ;;
			*) refused=$((refused + 1)) ;;
			esac
		done
	done
done
t2=$EPOCHREALTIME

ms() { echo $((${2//[.,]/} / 1000 - ${1//[.,]/} / 1000)); }
probes=$((connected + refused + timedout))
echo "naive: setup $(ms "$t0" "$t1") ms, probes $(ms "$t1" "$t2") ms"
echo "naive: $probes probes: $connected connected, $refused refused, $timedout timed out (dropped); wall $(ms "$t0" "$t2") ms"
