package rulesetfile

import (
	"fmt"
	"path"
	"strings"

	"github.com/egresslab/egresslab/netns/ruleset/nftinclude"
)

// nft reads the files an nft ruleset includes itself, as the lab's root, and
// would look in the host's /etc first. So that it reads nothing the policy
// does not name, every include is found here first (netns/ruleset/nftinclude
// scans as nft does): it must name a file beside the nft file or below it,
// which is read under the same rules as the ruleset; the lab stages it and
// points the include at the staged copy (ruleset.LoadNFT).

const (
	maxIncludeDepth = 8  // nft's own limit on nesting is about this deep
	maxIncludes     = 64 // files, all told
)

// IncludeError is an include statement that may not be followed: it names
// the file (as the policy or the command line names it), line and column.
type IncludeError struct {
	File      string
	Line, Col int
	Include   string
	Problem   string
	err       error // the read error behind Problem, if any
}

func (e *IncludeError) Error() string {
	return fmt.Sprintf("%s:%d:%d: include %q: %s", e.File, e.Line, e.Col, e.Include, e.Problem)
}

// NFTIncludes reads every file the nft ruleset at rel (its content data)
// includes, directly or not, each through read (relative to the directory
// read resolves against, which holds rel). Includes name files relative to
// rel's directory, as `nft -I DIR` would find them; one that is absolute,
// leads out of that directory, is a wildcard or cannot be read is an
// *IncludeError naming the file, line and column.
func NFTIncludes(read func(rel string) ([]byte, error), rel string, data []byte) ([]nftinclude.File, error) {
	dir := path.Dir(rel)
	var files []nftinclude.File
	seen := map[string]bool{}
	var walk func(name string, data []byte, depth int) error
	walk = func(name string, data []byte, depth int) error {
		for _, inc := range nftinclude.Scan(data) {
			where := func(format string, args ...any) *IncludeError {
				return &IncludeError{File: name, Line: inc.Line, Col: inc.Col, Include: inc.Path, Problem: fmt.Sprintf(format, args...)}
			}
			clean := path.Clean(inc.Path)
			switch {
			case depth >= maxIncludeDepth:
				return where("includes nested more than %d deep", maxIncludeDepth)
			case path.IsAbs(inc.Path):
				return where("an absolute path: want a file beside %s or below it, named relative to it", path.Base(rel))
			case clean == ".." || strings.HasPrefix(clean, "../") || inc.Path == "":
				return where("leads out of the directory of %s: want a file beside it or below it", path.Base(rel))
			case nftinclude.HasWildcard(inc.Path):
				return where("wildcards (* ? [) are not supported: include each file by name")
			}
			if seen[clean] {
				continue
			}
			seen[clean] = true
			if len(files) >= maxIncludes {
				return where("more than %d included files", maxIncludes)
			}
			full := path.Join(dir, clean)
			content, err := read(full)
			if err != nil {
				ie := where("%s", Problem(err))
				ie.err = err
				return ie
			}
			files = append(files, nftinclude.File{Path: clean, Data: content})
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
