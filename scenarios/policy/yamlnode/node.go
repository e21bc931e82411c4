package yamlnode

import (
	"fmt"
	"reflect"

	"github.com/egresslab/egresslab/scenarios/policy/value"
	"github.com/goccy/go-yaml/ast"
)

// Decoder turns AST nodes into values, with positioned errors.
type Decoder struct {
	File    string
	aliases map[*ast.AliasNode]ast.Node
}

// Errorf is a policy error placed at n.
func (d *Decoder) Errorf(n ast.Node, format string, args ...any) *Error {
	line, col := Position(n)
	return &Error{File: d.File, Line: line, Column: col, Msg: fmt.Sprintf(format, args...)}
}

// Resolve looks through anchors and aliases to the value written.
func (d *Decoder) Resolve(n ast.Node) ast.Node {
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

// Field is one key: value pair of a mapping.
type Field struct {
	Key   string
	Node  ast.Node // the key, for positions
	Value ast.Node // resolved
}

// Mapping returns the pairs of a mapping in file order; duplicate keys are an
// error. Null stands for an empty mapping when nullOK.
func (d *Decoder) Mapping(n ast.Node, what string, nullOK bool) ([]Field, error) {
	n = d.Resolve(n)
	if nullOK && IsNull(n) {
		return nil, nil
	}
	m, ok := n.(*ast.MappingNode)
	if !ok {
		return nil, d.Errorf(n, "%s: want a mapping, found %s", what, Describe(n))
	}
	fields := make([]Field, 0, len(m.Values))
	seen := map[string]ast.Node{}
	for _, mv := range m.Values {
		if mv == nil {
			continue
		}
		key, ok := ScalarText(d.Resolve(mv.Key))
		if !ok {
			return nil, d.Errorf(mv.Key, "%s: want a plain name as key, found %s", what, Describe(d.Resolve(mv.Key)))
		}
		if first, dup := seen[key]; dup {
			line, _ := Position(first)
			return nil, d.Errorf(mv.Key, "duplicate key %q in %s (first on line %d)", key, what, line)
		}
		seen[key] = mv.Key
		fields = append(fields, Field{Key: key, Node: mv.Key, Value: d.Resolve(mv.Value)})
	}
	return fields, nil
}

// List returns the items of a sequence, resolved.
func (d *Decoder) List(n ast.Node, what string) ([]ast.Node, error) {
	s, ok := n.(*ast.SequenceNode)
	if !ok {
		return nil, d.Errorf(n, "%s: want a list, found %s", what, Describe(n))
	}
	items := make([]ast.Node, 0, len(s.Values))
	for _, v := range s.Values {
		items = append(items, d.Resolve(v))
	}
	return items, nil
}

// Str returns a string value. Numbers and booleans are not strings here:
// a policy that means text writes text.
func (d *Decoder) Str(n ast.Node, what string) (string, error) {
	s, ok := n.(*ast.StringNode)
	if !ok {
		return "", d.Errorf(n, "%s: want a string, found %s", what, Describe(n))
	}
	return s.Value, nil
}

// Number returns a decimal integer from 0 to max. The text is read as
// written: YAML's octal, hex and underscore forms are refused, since 0114
// meaning 76 is a trap nobody wants in a uid.
func (d *Decoder) Number(n ast.Node, what string, max uint64) (uint64, error) {
	i, ok := n.(*ast.IntegerNode)
	if !ok || i.Token == nil {
		return 0, d.Errorf(n, "%s: want a number from 0 to %d, found %s", what, max, Describe(n))
	}
	v, err := value.Decimal(i.Token.Value, max)
	if err != nil {
		return 0, d.Errorf(n, "%s: %v", what, err)
	}
	return v, nil
}

// // ScalarText is the text of a scalar as written (keys may be any scalar).
func ScalarText(n ast.Node) (string, bool) {
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

// Kind names what was found without quoting it.
func Kind(n ast.Node) string {
	switch n.(type) {
	case *ast.StringNode:
		return "a string"
	case *ast.IntegerNode, *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		return "a number"
	case *ast.BoolNode:
		return "a boolean"
	}
	return Describe(n)
}

// Describe names what was found, for "want X, found Y" messages.
func Describe(n ast.Node) string {
	if IsNull(n) {
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
		return "number " + NodeName(n)
	case *ast.BoolNode:
		return "boolean " + NodeName(n)
	case *ast.LiteralNode:
		return "a block of text"
	}
	return "something else"
}

func IsNull(n ast.Node) bool {
	if IsNil(n) {
		return true
	}
	_, ok := n.(*ast.NullNode)
	return ok
}

// IsNil also catches typed nil pointers, which go-yaml may leave in a tree
// built from broken input.
func IsNil(n ast.Node) bool {
	if n == nil {
		return true
	}
	v := reflect.ValueOf(n)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

func NodeName(n ast.Node) string {
	if IsNil(n) || n.GetToken() == nil {
		return ""
	}
	return n.GetToken().Value
}

// Position is where a node starts. A block mapping's own token is its first
// colon, so it is placed at its first key instead.
func Position(n ast.Node) (line, col int) {
	if IsNil(n) {
		return 0, 0
	}
	switch m := n.(type) {
	case *ast.MappingNode:
		if !m.IsFlowStyle && len(m.Values) > 0 && m.Values[0] != nil {
			return Position(m.Values[0].Key)
		}
	case *ast.MappingValueNode:
		return Position(m.Key)
	case *ast.DocumentNode:
		if m.Start == nil || m.Start.Position == nil {
			return Position(m.Body)
		}
		return m.Start.Position.Line, m.Start.Position.Column
	}
	tk := n.GetToken()
	if tk == nil || tk.Position == nil {
		return 0, 0
	}
	return tk.Position.Line, tk.Position.Column
}
