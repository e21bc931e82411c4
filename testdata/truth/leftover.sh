# A candidate that loads a ruleset letting everything out, and leaves a
# daemon behind (a session of its own, as a double-forked daemon has) that
# would change that ruleset later: once the lab's sentinel appears, after the
# load, it would drop every connection to port 80 and stay. The lab ends it
# when the script ends; the verdicts are those of the ruleset as loaded.
nft add table inet candidate
nft add chain inet candidate output '{ type filter hook output priority 0; policy accept; }'
setsid sh -c '
	until nft list table inet egresslab_sentinel >/dev/null 2>&1; do sleep 0.01; done
	nft insert rule inet candidate output tcp dport 80 drop
	exec sleep infinity
' </dev/null >/dev/null 2>&1 &
