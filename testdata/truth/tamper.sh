( until nft delete table inet egresslab_sentinel 2>/dev/null; do :; done ) >/dev/null 2>&1 &
