// Package nftlist reads `nft -a list ruleset`: the text of each rule by its
// handle, for lint's findings and the lab's deciding rule alike.
package nftlist

import (
	"fmt"
	"strings"
)

// Key names a rule as RuleTexts indexes it.
func Key(family, table, chain string, handle int) string {
	return fmt.Sprintf("%s %s %s %d", family, table, chain, handle)
}

// RuleTexts maps Key(family, table, chain, handle) to the rule as nft prints
// it (without its handle comment).
func RuleTexts(listing string) map[string]string {
	out := map[string]string{}
	var family, table, chain string
	for _, line := range strings.Split(listing, "\n") {
		body, handle, hasHandle := strings.Cut(strings.TrimSpace(line), " # handle ")
		f := strings.Fields(body)
		switch {
		case len(f) >= 3 && f[0] == "table":
			family, table, chain = f[1], f[2], ""
		case len(f) >= 2 && f[0] == "chain" && f[len(f)-1] == "{":
			chain = f[1]
		case hasHandle && chain != "" && !strings.HasSuffix(body, "{"):
			out[fmt.Sprintf("%s %s %s %s", family, table, chain, strings.TrimSpace(handle))] = body
		case body == "}":
			chain = ""
		}
	}
	return out
}
