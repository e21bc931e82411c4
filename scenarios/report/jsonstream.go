package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
)

// emptyProbes is how the encoder writes the document's empty probes list.
var emptyProbes = []byte(`"probes": []`)

// writeProbesInto writes doc, the encoded document with an empty probes
// list, with the results written into that list one by one, byte for byte
// as encoding/json would indent them all at once.
func writeProbesInto(w io.Writer, doc []byte, results []Result) error {
	at := bytes.Index(doc, emptyProbes)
	if at < 0 {
		return errors.New("write json: no probes list in the document")
	}
	if len(results) == 0 {
		_, err := w.Write(doc)
		return err
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	bw.Write(doc[:at+len(`"probes": [`)])
	var one bytes.Buffer
	enc := json.NewEncoder(&one)
	enc.SetIndent("    ", "  ") // a probe sits two levels deep
	enc.SetEscapeHTML(false)
	for i, res := range results {
		one.Reset()
		if err := enc.Encode(toJSONProbe(res)); err != nil {
			return err
		}
		bw.WriteString("\n    ")
		bw.Write(bytes.TrimSuffix(one.Bytes(), []byte("\n")))
		if i < len(results)-1 {
			bw.WriteByte(',')
		}
	}
	bw.WriteString("\n  ]")
	bw.Write(doc[at+len(emptyProbes):])
	return bw.Flush()
}
