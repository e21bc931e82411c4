package sentinel

import (
	"os/exec"
	"strings"
	"testing"
)

// nft takes the forward path's evidence as written, beside the sentinel.
func TestNftTakesTheForwardRuleset(t *testing.T) {
	cmd := exec.Command("unshare", "--net", "sh", "-c", "nft -f /dev/stdin <<'E1'\n"+sentinelRuleset()+"E1\nnft -f /dev/stdin <<'E2'\n"+forwardRuleset()+"E2\nnft list chain inet "+sentinelTable+" fwd_first")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("nft: %v\n%s\n%s", err, out, forwardRuleset())
	}
	if !strings.Contains(string(out), "ct original ip saddr . ct original proto-src") {
		t.Fatalf("fwd_first lists as:\n%s", out)
	}
}
