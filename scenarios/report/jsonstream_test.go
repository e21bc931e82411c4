package report

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"testing"

	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios/policy"
)

// wholeJSON is WriteJSON's document encoded at once, as before streaming.
func wholeJSON(t *testing.T, r *Report) []byte {
	t.Helper()
	doc := jsonReport{Policy: r.Policy, Pass: r.Pass(), Summary: r.Summary(), Probes: []jsonProbe{}, Parity: r.Parity}
	for _, res := range r.Results {
		doc.Probes = append(doc.Probes, toJSONProbe(res))
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestWriteJSONStreamsTheSameBytes: writing the probes one at a time gives
// the document encoding/json gives for all of them at once, with and without
// parity cells, for no probe, one, and many.
func TestWriteJSONStreamsTheSameBytes(t *testing.T) {
	u := policy.User{Name: "www-data", UID: 33, GID: 33}
	var results []Result
	for n := range 300 {
		results = append(results, Result{
			Probe:    policy.Probe{User: u, Host: "sweep.example.test", Address: netip.MustParseAddr("2001:db8:5::7"), Port: policy.Port{Number: uint16(n + 1), Proto: "tcp"}, Expect: policy.Drop, Line: 7},
			Observed: probe.Dropped, Detail: "220 <postmaster@example.test> \"quoted\"\n",
			Evidence: probe.Evidence{Kind: probe.Egress, Where: probe.Output},
		})
	}
	parity := []ParityCell{{}}
	for _, r := range []*Report{
		{Policy: "none"},
		{Policy: "one", Results: results[:1]},
		{Policy: "many", Results: results},
		{Policy: "parity", Results: results[:2], Parity: parity},
		{Policy: "parity-none", Parity: parity},
	} {
		var got bytes.Buffer
		if err := r.WriteJSON(&got); err != nil {
			t.Fatalf("%s: %v", r.Policy, err)
		}
		if want := wholeJSON(t, r); !bytes.Equal(got.Bytes(), want) {
			t.Errorf("%s: streamed JSON differs from encoding/json's:\n%s\nwant:\n%s", r.Policy, got.Bytes(), want)
		}
		if !json.Valid(got.Bytes()) {
			t.Errorf("%s: not valid JSON", r.Policy)
		}
	}
}
