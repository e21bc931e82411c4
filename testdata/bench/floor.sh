#!/usr/bin/env bash
# floor.sh: what a lab costs at the least (issue 12). A user + network + mount
# namespace made by `unshare`, and the real tools loading the candidate in
# both families: iptables-restore RULES_V4, ip6tables-restore RULES_V6.
# Nothing else: no uplink, no world, no listeners, no probes. `make bench`
# times egresslab against it.
#
# The user namespace maps ids 1-65535 as egresslab's labs do (host
# 0x70000001 up), so that owner matches on numeric uids load; its root is the
# caller, which is what lets the tools, started as root inside, hold the
# namespace's capabilities. Needs root. The namespaces die with the process.
#
# Usage: floor.sh [RULES_V4 [RULES_V6]]   (default: verify20.rules for both)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
v4=${1:-$here/verify20.rules}
v6=${2:-$v4}
base=$((0x70000000))

if [ "$(id -u)" -ne 0 ]; then
	echo "floor.sh: needs root (it writes a user namespace's id maps)" >&2
	exit 3
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkfifo "$tmp/ready" "$tmp/go"
printf '0 0 1\n1 %d 65535\n' $((base + 1)) >"$tmp/map"

# The child unshares, says so, waits for its id maps, then runs the tools as
# its namespace's root.
unshare --user --net --mount -- sh -c '
	echo >"$1"; read _ <"$2"
	exec sh -c "iptables-restore <\"\$0\" && ip6tables-restore <\"\$1\"" "$3" "$4"
' sh "$tmp/ready" "$tmp/go" "$v4" "$v6" &
child=$!
read -r _ <"$tmp/ready"
cat "$tmp/map" >"/proc/$child/uid_map" # one write(2) each, as the kernel wants
cat "$tmp/map" >"/proc/$child/gid_map"
echo >"$tmp/go"
wait "$child"
