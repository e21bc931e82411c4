package yamlnode

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// Limits on the shape of a policy, checked on the text before go-yaml sees
// it: its parser recurses, so a hostile file of a million brackets would
// exhaust memory long before the depth check of walk. Real policies stay far
// below all three.
const (
	maxFlowNesting   = 32  // open [ and { at once
	maxIndent        = 160 // columns of leading spaces
	maxCompactNested = 16  // "- - - x": sequences opened on one line
)

// CheckText refuses, before parsing, what is not a text file or is nested
// beyond the limits above. It counts brackets everywhere, quoted or not: it
// may overcount, never undercount.
func (d *Decoder) CheckText(data []byte) *Error {
	at := func(line, col int, format string, args ...any) *Error {
		return &Error{File: d.File, Line: line, Column: col, Msg: fmt.Sprintf(format, args...)}
	}
	if !utf8.Valid(data) {
		return at(1, 1, "not a text file: want UTF-8 YAML")
	}
	depth, line, col, lineStart := 0, 1, 1, true
	indent, compact := 0, 0
	for i := 0; i < len(data); i++ {
		c := data[i]
		switch {
		case c == '\n':
			line, col, lineStart, indent, compact = line+1, 1, true, 0, 0
			continue
		case c < 0x20 && c != '\t' && c != '\r':
			return at(line, col, "not a text file: control character 0x%02x", c)
		case c == '[' || c == '{':
			if depth++; depth > maxFlowNesting {
				return at(line, col, "nesting deeper than %d levels: a policy needs a few", maxFlowNesting)
			}
		case c == ']' || c == '}':
			depth = max(depth-1, 0)
		}
		if lineStart {
			switch {
			case c == ' ':
				if indent++; indent > maxIndent {
					return at(line, col, "indented more than %d columns: a policy needs a few levels", maxIndent)
				}
			case (c == '-' || c == '?') && i+1 < len(data) && (data[i+1] == ' ' || data[i+1] == '\t'):
				if compact++; compact > maxCompactNested {
					return at(line, col, "more than %d nested lists on one line: a policy needs a few levels", maxCompactNested)
				}
				i, col = i+1, col+1
			default:
				lineStart = c == '\t'
			}
		}
		col++
	}
	return nil
}

// Parse parses one YAML document and returns its body (nil when empty).
func (d *Decoder) Parse(data []byte) (body ast.Node, err error) {
	if e := d.CheckText(data); e != nil {
		return nil, e
	}
	var f *ast.File
	func() {
		// go-yaml is not ours: if it ever panics on hostile input, that is a
		// policy error like any other, never a crash of the caller.
		defer func() {
			if r := recover(); r != nil {
				err = &Error{File: d.File, Line: 1, Column: 1, Msg: fmt.Sprintf("cannot parse YAML: %v", r)}
			}
		}()
		// Duplicate keys are found below, with a message naming both places.
		f, err = parser.ParseBytes(data, 0, parser.AllowDuplicateMapKey())
	}()
	if err != nil {
		if e, ok := err.(*Error); ok {
			return nil, e
		}
		var ye yaml.Error
		if errors.As(err, &ye) {
			e := &Error{File: d.File, Msg: "bad YAML: " + ye.GetMessage()}
			if tk := ye.GetToken(); tk != nil && tk.Position != nil {
				e.Line, e.Column = tk.Position.Line, tk.Position.Column
			}
			return nil, e
		}
		return nil, &Error{File: d.File, Msg: "bad YAML: " + err.Error()}
	}
	var docs []*ast.DocumentNode
	for _, doc := range f.Docs {
		if doc != nil && (!IsNil(doc.Body) || doc.Start != nil) {
			docs = append(docs, doc)
		}
	}
	if len(docs) == 0 {
		return nil, nil
	}
	if len(docs) > 1 {
		return nil, d.Errorf(docs[1], "a second YAML document: want one policy per file")
	}
	body = docs[0].Body
	if IsNil(body) {
		return nil, nil
	}
	d.aliases = map[*ast.AliasNode]ast.Node{}
	if err := d.walk(body, map[string]ast.Node{}, 0); err != nil {
		return nil, err
	}
	return body, nil
}

// walk resolves aliases in document order and refuses the YAML features a
// policy has no use for, so that the decoding below sees plain data.
func (d *Decoder) walk(n ast.Node, anchors map[string]ast.Node, depth int) error {
	if IsNil(n) {
		return nil
	}
	if depth > 100 {
		return d.Errorf(n, "nesting too deep")
	}
	depth++
	switch n := n.(type) {
	case *ast.MappingNode:
		for _, mv := range n.Values {
			if err := d.walk(mv, anchors, depth); err != nil {
				return err
			}
		}
	case *ast.MappingValueNode:
		if err := d.walk(n.Key, anchors, depth); err != nil {
			return err
		}
		return d.walk(n.Value, anchors, depth)
	case *ast.SequenceNode:
		for _, v := range n.Values {
			if err := d.walk(v, anchors, depth); err != nil {
				return err
			}
		}
	case *ast.AnchorNode:
		if err := d.walk(n.Value, anchors, depth); err != nil {
			return err
		}
		anchors[NodeName(n.Name)] = n.Value
	case *ast.AliasNode:
		name := NodeName(n.Value)
		target, ok := anchors[name]
		if !ok {
			return d.Errorf(n, "alias *%s names no anchor defined before it: want &%s on an earlier value", name, name)
		}
		d.aliases[n] = target
	case *ast.TagNode:
		return d.Errorf(n, "tag %s: tags are not supported, write the plain value", n.Start.Value)
	case *ast.MergeKeyNode:
		return d.Errorf(n, "merge key <<: not supported, write the keys out")
	case *ast.MappingKeyNode:
		return d.Errorf(n, "complex key (?): want a plain name as key")
	case *ast.DirectiveNode:
		return d.Errorf(n, "directive %%%s: not supported", NodeName(n.Name))
	}
	return nil
}
