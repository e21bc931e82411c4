package lint

import (
	"encoding/json"
	"fmt"
	"io"
)

// WriteText writes the findings for people: file:line: check: message, then
// the rule as the tool read it back and the suggested fix.
func WriteText(w io.Writer, findings []Finding) error {
	for _, f := range findings {
		if _, err := fmt.Fprintln(w, f.String()); err != nil {
			return err
		}
	}
	noun := "findings"
	if len(findings) == 1 {
		noun = "finding"
	}
	_, err := fmt.Fprintf(w, "%d %s\n", len(findings), noun)
	return err
}

// WriteJSON writes {"pass": bool, "findings": [...]}, indented.
func WriteJSON(w io.Writer, findings []Finding) error {
	if findings == nil {
		findings = []Finding{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(struct {
		Pass     bool      `json:"pass"`
		Findings []Finding `json:"findings"`
	}{len(findings) == 0, findings})
}
