package catalogue

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
)

// Export writes the entry's policy files and their rulesets to dir, as they
// are embedded, ready for `egresslab verify -f dir/VARIANT.yaml`. dir is
// created if it is missing; a file already there is never overwritten. It
// returns the policy files written, one per variant, in variant order.
func (s *Scenario) Export(dir string) ([]string, error) {
	files, err := fs.ReadDir(entriesFS, s.dir)
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		if f.IsDir() {
			return nil, fmt.Errorf("entry %s holds a folder (%s): export copies files only", s.Name, f.Name())
		}
		if _, err := os.Lstat(filepath.Join(dir, f.Name())); err == nil {
			return nil, &ExistsError{Path: filepath.Join(dir, f.Name())}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	for _, f := range files {
		data, err := entriesFS.ReadFile(path.Join(s.dir, f.Name()))
		if err != nil {
			return nil, err
		}
		mode := fs.FileMode(0o644)
		if bytes.HasPrefix(data, []byte("#!")) {
			mode = 0o755 // scripts, runnable on a host as they are
		}
		out, err := os.OpenFile(filepath.Join(dir, f.Name()), os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
		if err != nil {
			return nil, err
		}
		_, werr := out.Write(data)
		if err := errors.Join(werr, out.Close()); err != nil {
			return nil, err
		}
	}
	var policies []string
	for _, v := range s.Variants {
		policies = append(policies, filepath.Join(dir, filepath.FromSlash(v.File)))
	}
	return policies, nil
}

// ExistsError is a file Export would have overwritten.
type ExistsError struct{ Path string }

func (e *ExistsError) Error() string {
	return fmt.Sprintf("%s already exists: export never overwrites; choose an empty folder", e.Path)
}
