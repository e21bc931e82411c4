// Package yamlnode reads a policy's YAML as go-yaml's AST rather than
// unmarshalling it, because every node carries its position and every error
// must name file, line and column. A Decoder parses one document (refusing
// binary text, hostile nesting, tags, merge keys and anchors used before
// they are defined), resolves aliases, and turns nodes into mappings,
// lists, strings and numbers, each mistake an *Error at its place. It knows
// no policy section: package policy decodes those with it.
package yamlnode
