// Package nftinclude finds the include statements of an nft ruleset as nft
// 1.0.6's own scanner sees them, and rewrites where they point.
//
// nft reads what a ruleset includes itself: a relative name is tried in its
// default include path (/etc) before any -I directory, and "./NAME" against
// its working directory. So a file nft loads on the candidate's behalf must
// reach nft with every include already pointing at a file egresslab staged.
// That holds only if this scanner finds every include nft would act on: it
// follows nft's lexer exactly where text can hide a word (comments, quoted
// strings, which span lines) and otherwise errs towards finding more.
package nftinclude

import (
	"bytes"
	"strings"
)

// File is a file an nft ruleset includes, by its path relative to the nft
// file's directory (what `nft -I DIR` resolves it against), and its content.
type File struct {
	Path string
	Data []byte
}

// Include is one `include "PATH"` statement.
type Include struct {
	Path      string // the quoted string's content
	Line, Col int    // of the word include, from 1
	// Start and End are the byte offsets of the quoted string, quotes included.
	Start, End int
}

// stringByte is a byte that continues an unquoted word of nft's lexer
// ({string}: letters, digits, / - _ .): "include" followed by one is a longer
// word, not the keyword. '*' and '\' continue an {asteriskstring}.
func stringByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '/' || c == '-' || c == '_' || c == '.' || c == '*'
}

// Scan returns the include statements of data in order. Where nft's lexer
// would need its whole grammar of words (addresses, numbers, times) to tell
// whether "include" starts a token, Scan assumes it does: a word ending in
// "include" and followed by a quoted string counts as an include.
func Scan(data []byte) []Include {
	var found []Include
	line, lineStart := 1, 0
	newline := func(at int) { line, lineStart = line+1, at+1 }
	for i := 0; i < len(data); {
		switch c := data[i]; {
		case c == '\n':
			newline(i)
			i++
		case c == '#': // a comment runs to the end of the line
			if end := bytes.IndexByte(data[i:], '\n'); end >= 0 {
				i += end
			} else {
				i = len(data)
			}
		case c == '"': // a quoted string runs to the next quote, across lines
			end := bytes.IndexByte(data[i+1:], '"')
			if end < 0 {
				i++ // an unmatched quote is a junk byte; nft reads on after it
				continue
			}
			for j := i + 1; j <= i+end; j++ {
				if data[j] == '\n' {
					newline(j)
				}
			}
			i += end + 2
		case c == 'i' && bytes.HasPrefix(data[i:], []byte("include")) && (i+7 == len(data) || !stringByte(data[i+7]) && !(data[i+7] == '\\' && i+8 < len(data) && data[i+8] == '*')):
			inc := Include{Line: line, Col: i - lineStart + 1}
			j := i + 7
			for j < len(data) {
				if data[j] == ' ' || data[j] == '\t' {
					j++
				} else if data[j] == '\\' && j+1 < len(data) && data[j+1] == '\n' {
					j += 2
				} else {
					break
				}
			}
			if j < len(data) && data[j] == '"' {
				if end := bytes.IndexByte(data[j+1:], '"'); end >= 0 {
					inc.Path, inc.Start, inc.End = string(data[j+1:j+1+end]), j, j+end+2
					found = append(found, inc)
				}
			}
			i += 7 // the separators and the string are scanned as usual
		default:
			i++
		}
	}
	return found
}

// Rewrite returns data with each include's path replaced by to(path). A
// path to returns must not hold a quote.
func Rewrite(data []byte, to func(path string) string) []byte {
	var out bytes.Buffer
	last := 0
	for _, inc := range Scan(data) {
		out.Write(data[last:inc.Start])
		out.WriteString(`"` + strings.ReplaceAll(to(inc.Path), `"`, "") + `"`)
		last = inc.End
	}
	out.Write(data[last:])
	return out.Bytes()
}

// HasWildcard says whether nft would read path as a glob pattern.
func HasWildcard(path string) bool { return strings.ContainsAny(path, "*?[") }
