#!/bin/bash
# plainlab.sh: the truth egresslab's forwarded-traffic lab is compared with.
# Without egresslab, it builds a router host and its clients in network
# namespaces of its own, loads a ruleset into the host with the real tools,
# and dials each destination from each client with a real client (bash's
# /dev/tcp), printing one line per dial:
#
#   CLIENT ADDRESS PORT OUTCOME
#
# OUTCOME is connected, refused (a reset or ICMP port unreachable),
# unreachable (another ICMP error: host/net unreachable, prohibited) or
# timeout (nothing came back within the wait: the packet was dropped).
#
# Usage (as root):
#   plainlab.sh -n docker0 -a 172.17.0.1/16 -a fd00:db8:17::1/64 \
#     -c web=172.17.0.2,fd00:db8:17::2 -c php=172.17.0.3 \
#     -l 192.0.2.25:25 -l '[2001:db8::25]:25' \
#     -d 192.0.2.25:25 -d '[2001:db8::25]:25' -d 192.0.2.25:26 \
#     [-4 rules.v4] [-6 rules.v6] [-N rules.nft] [-S script] [-w SECONDS]
#
#   -n  the network: the host's bridge of that name (as the ruleset names it)
#   -a  the host's address on the network, with prefix (one per family)
#   -c  a client: NAME=ADDR[,ADDR]; its default route in each family it has
#       goes via the network's address of that family
#   -l  a destination the world serves (nc -l); the world routes the
#       network's prefixes back to the host, as an upstream router does
#   -d  a destination every client dials (listened on or not)
#   -4, -6, -N, -S  iptables-restore, ip6tables-restore and nft -f input, and
#       a script (run as its #! line says, sh without one, with $IPTABLES,
#       $IP6TABLES, $IPTABLES_RESTORE and $IP6TABLES_RESTORE naming the tools,
#       as egresslab's lab names them), loaded in that order into the host's
#       namespace
#   -w  how long a dial waits before it is a timeout (default 2)
#
# The host is the namespace pl<PID>h, its uplink eth0 (203.0.113.10/24,
# 2001:db8:1::10/64) into the world pl<PID>w (203.0.113.1, 2001:db8:1::1).
# Every namespace it makes is deleted on exit, whatever the exit; nothing is
# done in the caller's namespaces.
set -euo pipefail

# Its named namespaces live under a /run of its own, in a mount namespace of
# its own: the host's /run/netns never lists them, and a killed run leaves
# nothing there (they go with the mount namespace).
if [[ -z ${PLAINLAB_PRIVATE_RUN:-} ]]; then
	exec env PLAINLAB_PRIVATE_RUN=1 unshare --mount --propagation private \
		bash -c 'mount -t tmpfs plainlab /run && exec "$0" "$@"' "$0" "$@"
fi

network="" wait=2 v4="" v6="" nftf="" script=""
addrs=() clients=() listens=() dests=()
while getopts "n:a:c:l:d:4:6:N:S:w:" opt; do
	case $opt in
	n) network=$OPTARG ;;
	a) addrs+=("$OPTARG") ;;
	c) clients+=("$OPTARG") ;;
	l) listens+=("$OPTARG") ;;
	d) dests+=("$OPTARG") ;;
	4) v4=$OPTARG ;;
	6) v6=$OPTARG ;;
	N) nftf=$OPTARG ;;
	S) script=$OPTARG ;;
	w) wait=$OPTARG ;;
	*) echo "usage: see the head of $0" >&2; exit 2 ;;
	esac
done
if [[ -z $network || ${#addrs[@]} -eq 0 || ${#clients[@]} -eq 0 || ${#dests[@]} -eq 0 ]]; then
	echo "plainlab.sh: need -n NETWORK, -a ADDRESS/LEN, -c NAME=ADDR and -d ADDR:PORT; see the head of $0" >&2
	exit 2
fi
if [[ $EUID -ne 0 ]]; then
	echo "plainlab.sh: must run as root (it adds network namespaces)" >&2
	exit 3
fi
for f in "$v4" "$v6" "$nftf" "$script"; do
	if [[ -n $f && ! -r $f ]]; then
		echo "plainlab.sh: cannot read ruleset $f" >&2
		exit 2
	fi
done

id="pl$$"
host="${id}h" world="${id}w"
made=()
cleanup() {
	# Listeners die with their namespace's processes; namespaces go last.
	local ns pid
	for ns in "${made[@]}"; do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
	done
	for ns in "${made[@]}"; do ip netns delete "$ns" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Links made in a namespace start without duplicate address detection: a
# tentative link-local address would hold the first neighbour discovery,
# and so the first dial, for a second or more.
newns() {
	ip netns add "$1"
	made+=("$1")
	ip netns exec "$1" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
	ip -n "$1" link set lo up
}
inns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

family() { [[ $1 == *:* ]] && echo 6 || echo 4; }
# split HOST:PORT or [HOST]:PORT into "HOST PORT".
hostport() {
	local s=$1
	if [[ $s == \[* ]]; then
		local a=${s#\[}
		echo "${a%%\]*} ${s##*\]:}"
	else
		echo "${s%:*} ${s##*:}"
	fi
}

newns "$host"
newns "$world"
inns "$host" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1

# The uplink: the host's eth0 and the world's up0, default routes via the world.
ip link add eth0 netns "$host" type veth peer name up0 netns "$world"
ip -n "$host" addr add 203.0.113.10/24 dev eth0
ip -n "$host" addr add 2001:db8:1::10/64 dev eth0 nodad
ip -n "$world" addr add 203.0.113.1/24 dev up0
ip -n "$world" addr add 2001:db8:1::1/64 dev up0 nodad
ip -n "$host" link set eth0 up
ip -n "$world" link set up0 up
ip -n "$host" route add default via 203.0.113.1
ip -n "$host" -6 route add default via 2001:db8:1::1

# The network: a bridge of its name holding the host's addresses on it; the
# world routes its prefixes back to the host.
ip -n "$host" link add "$network" type bridge
ip -n "$host" link set "$network" up
declare -A gateway
for a in "${addrs[@]}"; do
	fam=$(family "$a")
	ip -n "$host" addr add "$a" dev "$network" $([[ $fam == 6 ]] && echo nodad)
	gateway[$fam]=${a%/*}
done
# The kernel's own connected routes name the prefixes (not link-local).
while read -r prefix _; do
	fam=$(family "$prefix")
	ip -n "$world" -"$fam" route add "$prefix" via "$([[ $fam == 6 ]] && echo 2001:db8:1::10 || echo 203.0.113.10)"
done < <(ip -n "$host" -4 route show dev "$network" proto kernel scope link; ip -n "$host" -6 route show dev "$network" proto kernel | grep -v '^fe80:')
prefixlen() { # the prefix length of the network's address of $1's family
	local a
	for a in "${addrs[@]}"; do
		if [[ $(family "$a") == $(family "$1") ]]; then echo "${a#*/}"; return; fi
	done
	echo "plainlab.sh: client address $1 has no network address of its family" >&2
	exit 2
}

# The clients: a namespace each, a veth into the bridge, default routes via
# the network's gateway in each family the client has.
names=()
n=0
for c in "${clients[@]}"; do
	name=${c%%=*} ns="${id}c$n" port="${id}p$n"
	n=$((n + 1))
	newns "$ns"
	names+=("$name:$ns")
	ip link add "$port" netns "$host" type veth peer name eth0 netns "$ns"
	ip -n "$host" link set "$port" master "$network" up
	ip -n "$ns" link set eth0 up
	IFS=, read -ra caddrs <<<"${c#*=}"
	for a in "${caddrs[@]}"; do
		fam=$(family "$a")
		ip -n "$ns" addr add "$a/$(prefixlen "$a")" dev eth0 $([[ $fam == 6 ]] && echo nodad)
		ip -n "$ns" -"$fam" route add default via "${gateway[$fam]}"
	done
done

# The world's listeners, on addresses of its own; wait until each listens.
declare -A listener served
for l in "${listens[@]}"; do
	read -r addr port <<<"$(hostport "$l")"
	fam=$(family "$addr")
	if [[ -z ${served[$addr]:-} ]]; then
		# nodad: even on lo an IPv6 address is tentative until the kernel's
		# DAD work runs, and a listener that binds before then fails.
		if [[ $fam == 6 ]]; then
			ip -n "$world" addr add "$addr/128" dev lo nodad
		else
			ip -n "$world" addr add "$addr/32" dev lo
		fi
		served[$addr]=1
	fi
	inns "$world" nc -"$fam" -lk "$addr" "$port" </dev/null >/dev/null 2>&1 &
	listener[$l]=$!
done
for l in "${listens[@]}"; do
	read -r addr port <<<"$(hostport "$l")"
	# The kernel's table of listening sockets is the signal.
	until [[ -n $(inns "$world" ss -Hltn "( sport = :$port )" | awk -v a="$addr" -v p="$port" '$4 == a ":" p || $4 == "[" a "]:" p') ]]; do
		kill -0 "${listener[$l]}" 2>/dev/null || { echo "plainlab.sh: the listener on $l died" >&2; exit 3; }
	done
done

# The candidate, with the real tools, into the host only.
[[ -z $v4 ]] || inns "$host" iptables-restore <"$v4"
[[ -z $v6 ]] || inns "$host" ip6tables-restore <"$v6"
[[ -z $nftf ]] || inns "$host" nft -f "$nftf"
if [[ -n $script ]]; then
	tools=(env IPTABLES=iptables IP6TABLES=ip6tables IPTABLES_RESTORE=iptables-restore IP6TABLES_RESTORE=ip6tables-restore)
	if [[ $(head -c2 "$script") == '#!' ]]; then
		interp=$(head -n1 "$script")
		# The #! line names the interpreter and at most one argument.
		read -ra interp <<<"${interp#\#!}"
		inns "$host" "${tools[@]}" "${interp[@]}" "$script"
	else
		inns "$host" "${tools[@]}" sh "$script"
	fi
fi

# One real client per client and destination.
for entry in "${names[@]}"; do
	name=${entry%%:*} ns=${entry#*:}
	for d in "${dests[@]}"; do
		read -r addr port <<<"$(hostport "$d")"
		err=$(inns "$ns" timeout "$wait" bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$addr" "$port" 2>&1) && rc=0 || rc=$?
		case $rc:$err in
		0:*) outcome=connected ;;
		124:*) outcome=timeout ;;
		*"Connection refused"*) outcome=refused ;;
		*"No route to host"* | *"Network is unreachable"* | *"Permission denied"*) outcome=unreachable ;;
		*) echo "plainlab.sh: $name -> $d: $err (exit $rc)" >&2; outcome=error ;;
		esac
		echo "$name $addr $port $outcome"
	done
done
