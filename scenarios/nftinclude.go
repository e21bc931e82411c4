package scenarios

import (
	"path"
	"strings"

	"github.com/egresslab/egresslab/netns"
	"github.com/goccy/go-yaml/ast"
)

// nft reads the files an nft ruleset includes itself, as the lab's root. So
// that it reads nothing the policy does not name, every include is found
// here first: it must name a file beside the nft file or below it, which is
// read under the same rules as the ruleset and staged beside it in the lab,
// where nft's include search path holds nothing else.

const (
	maxIncludeDepth = 8  // nft's own limit on nesting is about this deep
	maxIncludes     = 64 // files, all told
)

// nftInclude is one `include "PATH"` of an nft file.
type nftInclude struct {
	Path string
	Line int
}

// scanNFTIncludes finds include statements the way nft's scanner sees them:
// the word `include` outside comments and quoted strings, then a quoted
// string. It finds more than nft would rather than less: a word is a run of
// letters, digits and '_' only.
func scanNFTIncludes(data []byte) []nftInclude {
	var found []nftInclude
	line, i := 1, 0
	word := func(j int) int { // end of the word starting at j
		for j < len(data) && (data[j] == '_' || data[j] >= '0' && data[j] <= '9' || data[j]|0x20 >= 'a' && data[j]|0x20 <= 'z') {
			j++
		}
		return j
	}
	for i < len(data) {
		switch c := data[i]; {
		case c == '\n':
			line++
			i++
		case c == '#':
			for i < len(data) && data[i] != '\n' {
				i++
			}
		case c == '"':
			end := strings.IndexAny(string(data[i+1:]), "\"\n")
			if end < 0 {
				return found
			}
			i += end + 2
			if data[i-1] == '\n' {
				line++
			}
		case word(i) > i:
			end := word(i)
			if string(data[i:end]) == "include" {
				j := end
				for j < len(data) && strings.IndexByte(" \t\r\n\\", data[j]) >= 0 {
					j++
				}
				if j < len(data) && data[j] == '"' {
					if q := strings.IndexAny(string(data[j+1:]), "\"\n"); q >= 0 {
						found = append(found, nftInclude{Path: string(data[j+1 : j+1+q]), Line: line})
					}
				}
			}
			i = end
		default:
			i++
		}
	}
	return found
}

// nftIncludes reads every file the nft ruleset at rel includes, directly or
// not, refusing any that would lead outside the nft file's directory.
func (pd *policyDecoder) nftIncludes(at ast.Node, rel string, data []byte) ([]netns.IncludedFile, error) {
	dir := path.Dir(rel)
	var files []netns.IncludedFile
	seen := map[string]bool{}
	var walk func(name string, data []byte, depth int) error
	walk = func(name string, data []byte, depth int) error {
		for _, inc := range scanNFTIncludes(data) {
			where := func(format string, args ...any) error {
				return pd.errorf(at, "ruleset nft: %s:%d: include %q: "+format, append([]any{name, inc.Line, inc.Path}, args...)...)
			}
			clean := path.Clean(inc.Path)
			switch {
			case depth >= maxIncludeDepth:
				return where("includes nested more than %d deep", maxIncludeDepth)
			case path.IsAbs(inc.Path):
				return where("an absolute path: want a file beside %s or below it, named relative to it", path.Base(rel))
			case clean == ".." || strings.HasPrefix(clean, "../") || inc.Path == "":
				return where("leads out of the directory of %s: want a file beside it or below it", path.Base(rel))
			case strings.ContainsAny(inc.Path, "*?[{"):
				return where("wildcards are not supported: include each file by name")
			}
			if seen[clean] {
				continue
			}
			seen[clean] = true
			if len(files) >= maxIncludes {
				return where("more than %d included files", maxIncludes)
			}
			full := path.Join(dir, clean)
			content, err := pd.read(full)
			if err != nil {
				return where("%s", readProblem(err))
			}
			files = append(files, netns.IncludedFile{Path: clean, Data: content})
			if err := walk(full, content, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(rel, data, 0); err != nil {
		return nil, err
	}
	return files, nil
}
