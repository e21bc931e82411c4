package ruleset

import (
	"context"

	"github.com/egresslab/egresslab/netns"
)

// File is one part of a candidate ruleset: its path as the policy names it,
// its content, and (nft) the files it includes.
type File struct {
	Path     string
	Data     []byte
	Includes []IncludedFile
}

// Set is a candidate ruleset's parts; a nil part is not loaded.
type Set struct {
	IPTables, IP6Tables, NFT, Script *File
}

// Load loads the parts in order, each with its real tool: iptables,
// ip6tables, nft, then the script.
func Load(ctx context.Context, lab *netns.Lab, s Set) error {
	if f := s.IPTables; f != nil {
		if err := LoadIPTables(ctx, lab, false, f.Path, f.Data); err != nil {
			return err
		}
	}
	if f := s.IP6Tables; f != nil {
		if err := LoadIPTables(ctx, lab, true, f.Path, f.Data); err != nil {
			return err
		}
	}
	if f := s.NFT; f != nil {
		if err := LoadNFT(ctx, lab, f.Path, f.Data, f.Includes...); err != nil {
			return err
		}
	}
	if f := s.Script; f != nil {
		if err := RunScript(ctx, lab, f.Path, f.Data); err != nil {
			return err
		}
	}
	return nil
}
