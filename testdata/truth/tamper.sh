# A candidate that plants a rule of its own in the lab's drop sentinel: it
# makes the sentinel's table and egress chain before the lab does. The lab
# creates its table rather than merging into one of that name, so the
# install fails and the run is refused as tampering.
# (A process left behind to delete the sentinel later would never act: the
# lab ends it when the script ends.)
nft -f - <<'EOF_NFT'
table inet egresslab_sentinel {
	chain post {
		type filter hook postrouting priority 2147483647; policy accept;
		counter
	}
}
EOF_NFT
