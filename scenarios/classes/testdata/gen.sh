#!/bin/sh
# gen.sh regenerates the listing fixtures with the real tools, inside a
# network and mount namespace of its own (never the host's): run as root,
#   unshare --net --mount sh gen.sh
# Each NAME.rules is loaded once through iptables-nft (NAME.nft.json, nft's
# own JSON listing, and NAME.nftsave.v4/.v6, which decodes the xt matches the
# JSON shows only by name) and once through iptables-legacy (NAME.legacy.v4/.v6).
set -eu
cd "$(dirname "$0")"
mount -t tmpfs tmpfs /run   # iptables-legacy's lock file, private to this namespace
ip link set lo up
fresh() { nft flush ruleset; for t in iptables-legacy ip6tables-legacy; do for tb in filter nat mangle raw; do $t -t $tb -F; $t -t $tb -X; done; done; ipset destroy 2>/dev/null || true; }
both() { # NAME FILE: load FILE into v4 (and v6 with -6)
	name=$1 file=$2 six=${3:-}
	fresh
	iptables-nft-restore < "$file"
	[ -n "$six" ] && ip6tables-nft-restore < "$file"
	nft -j list ruleset > "$name.nft.json"
	iptables-nft-save | grep -v '^#' > "$name.nftsave.v4"
	if [ -n "$six" ]; then ip6tables-nft-save | grep -v '^#' > "$name.nftsave.v6"; fi
	fresh
	iptables-legacy-restore < "$file"
	iptables-legacy-save | grep -v '^#' > "$name.legacy.v4"
	if [ -n "$six" ]; then ip6tables-legacy-restore < "$file"; ip6tables-legacy-save | grep -v '^#' > "$name.legacy.v6"; fi
	fresh
}
both seed seed.rules
both uidrange uidrange.rules -6
both ports ports.rules
both unsplit unsplit.rules
both tails tails/tails-1.5.iptables-save
fresh
nft -f sets.nft
nft -j list ruleset > sets.nft.json
fresh
sh ipset.sh
ipset save > ipset.save
iptables-legacy-save | grep -v '^#' > ipset.legacy.v4
ip6tables-legacy-save | grep -v '^#' > ipset.legacy.v6
nft -j list ruleset > ipset.nft.json
fresh
