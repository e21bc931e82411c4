package nftinclude_test

import (
	"github.com/egresslab/egresslab/netns/ruleset/nftinclude"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// where is an include as the specs name it: path, line, column.
type where struct {
	Path      string
	Line, Col int
}

func scan(src string) []where {
	var out []where
	for _, inc := range nftinclude.Scan([]byte(src)) {
		Expect(src[inc.Start:inc.End]).To(Equal(`"` + inc.Path + `"`))
		out = append(out, where{inc.Path, inc.Line, inc.Col})
	}
	return out
}

var _ = Describe("Scan", Label("safety"), func() {
	DescribeTable("finds every include nft 1.0.6 acts on",
		func(src string, want []where) { Expect(scan(src)).To(Equal(want)) },
		Entry("a plain include", "include \"a.nft\"\n", []where{{"a.nft", 1, 1}}),
		Entry("inside a block, after a statement separator", "table inet t {\n\tchain c { }; include \"b\"\n}\n", []where{{"b", 2, 15}}),
		Entry("after a quoted string that spans lines (nft's strings do)",
			"define x = \"a\nb\"; include \"hostname\"\n", []where{{"hostname", 2, 5}}),
		Entry("not inside a string that a later quote ends", "x \" \ninclude \"y\"\n", nil),
		Entry("after a number (a token of its own)", "define x = 5include \"z\"\n", []where{{"z", 1, 13}}),
		Entry("across a line continuation", "include \\\n  \"c\"\n", []where{{"c", 1, 1}}),
		Entry("not in a comment", "# include \"no\"\ninclude \"yes\"\n", []where{{"yes", 2, 1}}),
		Entry("not in a quoted string", "comment \"include \\\"no\\\" \"\n", nil),
		Entry("not a longer word", "include-x \"no\"\ninclude.nft \"no\"\ninclude* \"no\"\n", nil),
		Entry("not without a quoted string", "include hostname\n", nil),
	)

	It("rewrites every include and nothing else", func() {
		src := "# include \"keep\"\ndefine x = \"a\nb\"; include \"hostname\"\ninclude \"./etc/x\"\n"
		out := nftinclude.Rewrite([]byte(src), func(p string) string { return "/staged/" + p })
		Expect(string(out)).To(Equal("# include \"keep\"\ndefine x = \"a\nb\"; include \"/staged/hostname\"\ninclude \"/staged/./etc/x\"\n"))
	})
})
