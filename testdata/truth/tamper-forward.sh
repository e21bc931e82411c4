# A candidate that plants a rule of its own in the forward path's chain of
# the lab's sentinel (fwd_last: where a client's packet is seen passing
# FORWARD), made before the lab makes it: refused as tampering, since the
# lab never merges its evidence into a table of its name the candidate made.
nft -f - <<'EOF_NFT'
table inet egresslab_sentinel {
	chain fwd_last {
		type filter hook forward priority 2147483647; policy accept;
		counter
	}
}
EOF_NFT
