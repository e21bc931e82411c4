package lint_test

import (
	"github.com/egresslab/egresslab/internal/catalogue"
	"github.com/egresslab/egresslab/internal/lint"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// Every variant of the catalogue whose story is a bug names here what lint
// finds in it, or why lint cannot: a new entry that is neither fails the
// spec until someone decides. Variants whose ruleset is right must lint clean.
var (
	staticGaps = map[string][]lint.Check{
		"telnet-surprise/ipv4-only":     {lint.OwnerOneFamily, lint.DropOneFamily},
		"telnet-surprise/both-families": {lint.NDBlocked},
	}
	notStatic = map[string]string{}
)

var _ = Describe("lint over the catalogue", func() {
	It("flags every static gap and passes every right ruleset", func(ctx SpecContext) {
		all, err := catalogue.All()
		Expect(err).NotTo(HaveOccurred())
		checked := 0
		for _, s := range all {
			for _, v := range s.Variants {
				name := s.Name + "/" + v.Name
				src, opts, _ := lint.FromPolicy(v.Policy)
				findings, err := lint.Lint(ctx, src, opts)
				Expect(err).NotTo(HaveOccurred(), name)
				checks := map[lint.Check]bool{}
				for _, f := range findings {
					checks[f.Check] = true
				}
				switch want, static := staticGaps[name]; {
				case len(v.Bypass) == 0 && len(v.Broken) == 0:
					Expect(findings).To(BeEmpty(), "%s is right: lint must pass it", name)
				case static:
					for _, c := range want {
						Expect(checks).To(HaveKey(c), "%s: lint must find %s", name, c)
					}
				default:
					Expect(notStatic).To(HaveKey(name), "%s is a bug story: say in staticGaps what lint finds, or in notStatic why it cannot", name)
				}
				checked++
			}
		}
		Expect(checked).To(BeNumerically(">=", 2), "the catalogue has variants to lint")
	})
})
