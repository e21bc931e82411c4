package report

import (
	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios/report/words"
)

// jsonEvidence is the evidence as the JSON report has it: typed values, and
// the report's words for the host's state ("cause") and the service that
// answered ("answered_by").
type jsonEvidence struct {
	Kind       string      `json:"kind"`
	Where      string      `json:"where,omitempty"`
	Packet     string      `json:"packet,omitempty"`
	ICMP       *probe.ICMP `json:"icmp,omitempty"`
	Errno      string      `json:"errno,omitempty"`
	Cause      string      `json:"cause,omitempty"`
	Neighbour  string      `json:"neighbour,omitempty"`
	AnsweredBy string      `json:"answered_by,omitempty"`
}

// evidenceJSON words a result's evidence for the JSON report; a result read
// back from a report keeps the words it was read with.
func evidenceJSON(res Result) jsonEvidence {
	if res.apart != nil && res.apart.reported != nil {
		return *res.apart.reported
	}
	ev := res.Evidence
	return jsonEvidence{Kind: ev.Kind.String(), Where: ev.Where.String(), Packet: ev.Packet.String(), ICMP: ev.ICMP, Errno: ev.Errno,
		Cause: words.Cause(ev), Neighbour: ev.Neighbour, AnsweredBy: words.AnsweredBy(ev)}
}

// typed is the evidence's typed part, read back from a report. A word this
// version does not know stays zero there (the result keeps its words).
func (j jsonEvidence) typed() probe.Evidence {
	ev := probe.Evidence{ICMP: j.ICMP, Errno: j.Errno, Neighbour: j.Neighbour}
	_ = ev.Kind.UnmarshalText([]byte(j.Kind))
	_ = ev.Where.UnmarshalText([]byte(j.Where))
	_ = ev.Packet.UnmarshalText([]byte(j.Packet))
	return ev
}
