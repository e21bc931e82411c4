package policy

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// The policy is read from go-yaml's AST rather than unmarshalled, because
// every node carries its position and every error must name line and column.

// decoder turns AST nodes into values, with positioned errors.
type decoder struct {
	file    string
	aliases map[*ast.AliasNode]ast.Node
}

func (d *decoder) errorf(n ast.Node, format string, args ...any) *Error {
	line, col := position(n)
	return &Error{File: d.file, Line: line, Column: col, Msg: fmt.Sprintf(format, args...)}
}

// Limits on the shape of a policy, checked on the text before go-yaml sees
// it: its parser recurses, so a hostile file of a million brackets would
// exhaust memory long before the depth check of walk. Real policies stay far
// below all three.
const (
	maxFlowNesting   = 32  // open [ and { at once
	maxIndent        = 160 // columns of leading spaces
	maxCompactNested = 16  // "- - - x": sequences opened on one line
)

// checkText refuses, before parsing, what is not a text file or is nested
// beyond the limits above. It counts brackets everywhere, quoted or not: it
// may overcount, never undercount.
func (d *decoder) checkText(data []byte) *Error {
	at := func(line, col int, format string, args ...any) *Error {
		return &Error{File: d.file, Line: line, Column: col, Msg: fmt.Sprintf(format, args...)}
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

// parseYAML parses one YAML document and returns its body (nil when empty).
func (d *decoder) parseYAML(data []byte) (body ast.Node, err error) {
	if e := d.checkText(data); e != nil {
		return nil, e
	}
	var f *ast.File
	func() {
		// go-yaml is not ours: if it ever panics on hostile input, that is a
		// policy error like any other, never a crash of the caller.
		defer func() {
			if r := recover(); r != nil {
				err = &Error{File: d.file, Line: 1, Column: 1, Msg: fmt.Sprintf("cannot parse YAML: %v", r)}
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
			e := &Error{File: d.file, Msg: "bad YAML: " + ye.GetMessage()}
			if tk := ye.GetToken(); tk != nil && tk.Position != nil {
				e.Line, e.Column = tk.Position.Line, tk.Position.Column
			}
			return nil, e
		}
		return nil, &Error{File: d.file, Msg: "bad YAML: " + err.Error()}
	}
	var docs []*ast.DocumentNode
	for _, doc := range f.Docs {
		if doc != nil && (!isNil(doc.Body) || doc.Start != nil) {
			docs = append(docs, doc)
		}
	}
	if len(docs) == 0 {
		return nil, nil
	}
	if len(docs) > 1 {
		return nil, d.errorf(docs[1], "a second YAML document: want one policy per file")
	}
	body = docs[0].Body
	if isNil(body) {
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
func (d *decoder) walk(n ast.Node, anchors map[string]ast.Node, depth int) error {
	if isNil(n) {
		return nil
	}
	if depth > 100 {
		return d.errorf(n, "nesting too deep")
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
		anchors[nodeName(n.Name)] = n.Value
	case *ast.AliasNode:
		name := nodeName(n.Value)
		target, ok := anchors[name]
		if !ok {
			return d.errorf(n, "alias *%s names no anchor defined before it: want &%s on an earlier value", name, name)
		}
		d.aliases[n] = target
	case *ast.TagNode:
		return d.errorf(n, "tag %s: tags are not supported, write the plain value", n.Start.Value)
	case *ast.MergeKeyNode:
		return d.errorf(n, "merge key <<: not supported, write the keys out")
	case *ast.MappingKeyNode:
		return d.errorf(n, "complex key (?): want a plain name as key")
	case *ast.DirectiveNode:
		return d.errorf(n, "directive %%%s: not supported", nodeName(n.Name))
	}
	return nil
}

// resolve looks through anchors and aliases to the value written.
func (d *decoder) resolve(n ast.Node) ast.Node {
	// An anchor's value may be an alias only in pathological files; a few
	// rounds are plenty and keep a cycle from looping.
	for range 8 {
		switch m := n.(type) {
		case *ast.AnchorNode:
			n = m.Value
		case *ast.AliasNode:
			n = d.aliases[m]
		default:
			return n
		}
	}
	return n
}

// field is one key: value pair of a mapping.
type field struct {
	key   string
	node  ast.Node // the key, for positions
	value ast.Node // resolved
}

// mapping returns the pairs of a mapping in file order; duplicate keys are an
// error. Null stands for an empty mapping when nullOK.
func (d *decoder) mapping(n ast.Node, what string, nullOK bool) ([]field, error) {
	n = d.resolve(n)
	if nullOK && isNull(n) {
		return nil, nil
	}
	m, ok := n.(*ast.MappingNode)
	if !ok {
		return nil, d.errorf(n, "%s: want a mapping, found %s", what, describe(n))
	}
	fields := make([]field, 0, len(m.Values))
	seen := map[string]ast.Node{}
	for _, mv := range m.Values {
		if mv == nil {
			continue
		}
		key, ok := scalarText(d.resolve(mv.Key))
		if !ok {
			return nil, d.errorf(mv.Key, "%s: want a plain name as key, found %s", what, describe(d.resolve(mv.Key)))
		}
		if first, dup := seen[key]; dup {
			line, _ := position(first)
			return nil, d.errorf(mv.Key, "duplicate key %q in %s (first on line %d)", key, what, line)
		}
		seen[key] = mv.Key
		fields = append(fields, field{key: key, node: mv.Key, value: d.resolve(mv.Value)})
	}
	return fields, nil
}

// list returns the items of a sequence, resolved.
func (d *decoder) list(n ast.Node, what string) ([]ast.Node, error) {
	s, ok := n.(*ast.SequenceNode)
	if !ok {
		return nil, d.errorf(n, "%s: want a list, found %s", what, describe(n))
	}
	items := make([]ast.Node, 0, len(s.Values))
	for _, v := range s.Values {
		items = append(items, d.resolve(v))
	}
	return items, nil
}

// str returns a string value. Numbers and booleans are not strings here:
// a policy that means text writes text.
func (d *decoder) str(n ast.Node, what string) (string, error) {
	s, ok := n.(*ast.StringNode)
	if !ok {
		return "", d.errorf(n, "%s: want a string, found %s", what, describe(n))
	}
	return s.Value, nil
}

// number returns a decimal integer from 0 to max. The text is read as
// written: YAML's octal, hex and underscore forms are refused, since 0114
// meaning 76 is a trap nobody wants in a uid.
func (d *decoder) number(n ast.Node, what string, max uint64) (uint64, error) {
	i, ok := n.(*ast.IntegerNode)
	if !ok || i.Token == nil {
		return 0, d.errorf(n, "%s: want a number from 0 to %d, found %s", what, max, describe(n))
	}
	v, err := decimal(i.Token.Value, max)
	if err != nil {
		return 0, d.errorf(n, "%s: %v", what, err)
	}
	return v, nil
}

// decimal parses a plain decimal number from 0 to max.
func decimal(s string, max uint64) (uint64, error) {
	if s == "" || strings.Trim(s, "0123456789") != "" || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf("want a decimal number from 0 to %d, found %s", max, s)
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v > max {
		return 0, fmt.Errorf("%s is out of range: want 0 to %d", s, max)
	}
	return v, nil
}

// scalarText is the text of a scalar as written (keys may be any scalar).
func scalarText(n ast.Node) (string, bool) {
	switch n := n.(type) {
	case *ast.StringNode:
		return n.Value, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.NullNode, *ast.InfinityNode, *ast.NanNode:
		if tk := n.GetToken(); tk != nil {
			return tk.Value, true
		}
	}
	return "", false
}

// kind names what was found without quoting it.
func kind(n ast.Node) string {
	switch n.(type) {
	case *ast.StringNode:
		return "a string"
	case *ast.IntegerNode, *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		return "a number"
	case *ast.BoolNode:
		return "a boolean"
	}
	return describe(n)
}

// describe names what was found, for "want X, found Y" messages.
func describe(n ast.Node) string {
	if isNull(n) {
		return "nothing"
	}
	switch n := n.(type) {
	case *ast.MappingNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.StringNode:
		if v := []rune(n.Value); len(v) > 40 {
			return fmt.Sprintf("string %q...", string(v[:40]))
		}
		return fmt.Sprintf("string %q", n.Value)
	case *ast.IntegerNode, *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		return "number " + nodeName(n)
	case *ast.BoolNode:
		return "boolean " + nodeName(n)
	case *ast.LiteralNode:
		return "a block of text"
	}
	return "something else"
}

func isNull(n ast.Node) bool {
	if isNil(n) {
		return true
	}
	_, ok := n.(*ast.NullNode)
	return ok
}

// isNil also catches typed nil pointers, which go-yaml may leave in a tree
// built from broken input.
func isNil(n ast.Node) bool {
	if n == nil {
		return true
	}
	v := reflect.ValueOf(n)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

func nodeName(n ast.Node) string {
	if isNil(n) || n.GetToken() == nil {
		return ""
	}
	return n.GetToken().Value
}

// position is where a node starts. A block mapping's own token is its first
// colon, so it is placed at its first key instead.
func position(n ast.Node) (line, col int) {
	if isNil(n) {
		return 0, 0
	}
	switch m := n.(type) {
	case *ast.MappingNode:
		if !m.IsFlowStyle && len(m.Values) > 0 && m.Values[0] != nil {
			return position(m.Values[0].Key)
		}
	case *ast.MappingValueNode:
		return position(m.Key)
	case *ast.DocumentNode:
		if m.Start == nil || m.Start.Position == nil {
			return position(m.Body)
		}
		return m.Start.Position.Line, m.Start.Position.Column
	}
	tk := n.GetToken()
	if tk == nil || tk.Position == nil {
		return 0, 0
	}
	return tk.Position.Line, tk.Position.Column
}
