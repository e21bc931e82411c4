package classes

import (
	"github.com/egresslab/egresslab/scenarios/classes/listing"
	"github.com/egresslab/egresslab/scenarios/classes/space"
)

// The listings and the rules read from them (package listing), and the
// families and protocols of the space they are split in (package space),
// under the names callers of classes know them by.
type (
	Listings = listing.Listings
	Ruleset  = listing.Ruleset
	Rule     = listing.Rule
	RuleRef  = listing.RuleRef
	Unsplit  = listing.Unsplit
	Note     = listing.Note
	Family   = space.Family
	Proto    = space.Proto
)

const (
	IPv4  = space.IPv4
	IPv6  = space.IPv6
	TCP   = space.TCP
	UDP   = space.UDP
	MaxID = space.MaxID
)

// Read reads the listings.
func Read(l Listings) (*Ruleset, error) { return listing.Read(l) }
