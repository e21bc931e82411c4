package suites_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/goccy/go-yaml"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// The copy-paste CI jobs of docs/ci must work when pasted: GitHub's is
// checked by actionlint (pinned as a go tool in go.mod), GitLab's by the
// keys GitLab needs; both must install egresslab with go install, run
// verify with --junit, keep the report on failure and fail on a failed run.
var _ = Describe("the CI jobs in docs/ci", Label("docs"), func() {
	It("GitHub Actions: actionlint finds nothing in any workflow", func(ctx SpecContext) {
		workflows, err := filepath.Glob("../docs/ci/github-actions*.yml")
		Expect(err).NotTo(HaveOccurred())
		Expect(workflows).To(HaveLen(4), "sudo, rootless, sharded, container")
		for _, wf := range workflows {
			cmd := exec.CommandContext(ctx, "go", "tool", "actionlint", "-no-color", strings.TrimPrefix(wf, "../"))
			cmd.Dir = ".." // the module root
			out, err := cmd.CombinedOutput()
			Expect(err).NotTo(HaveOccurred(), "actionlint %s:\n%s", wf, out)
		}
	})

	It("GitHub Actions: installs, verifies with --junit and uploads the report always", func() {
		var wf struct {
			Jobs map[string]struct {
				Steps []workflowStep `yaml:"steps"`
			} `yaml:"jobs"`
		}
		readYAML("../docs/ci/github-actions.yml", &wf)
		Expect(wf.Jobs).To(HaveKey("verify"))
		steps := wf.Jobs["verify"].Steps
		install := slices.IndexFunc(steps, func(s workflowStep) bool {
			return strings.Contains(s.Run, "go install \"github.com/egresslab/egresslab/cmd/egresslab@")
		})
		var verify, upload int = -1, -1
		for i, s := range steps {
			if strings.Contains(s.Run, "egresslab verify") && strings.Contains(s.Run, "--junit egresslab-junit.xml") {
				verify = i
				Expect(s.If).To(BeEmpty(), "verify must run, and its exit status fail the job")
				Expect(s.Run).To(ContainSubstring("--format github"), "annotations at the ruleset line that decided")
				Expect(s.Run).To(ContainSubstring(`sudo GITHUB_STEP_SUMMARY="$GITHUB_STEP_SUMMARY" egresslab verify`), "root is told where the job summary goes")
			}
			if strings.HasPrefix(s.Uses, "actions/upload-artifact@") {
				upload = i
				Expect(s.If).To(Equal("always()"), "the report is uploaded even when verify fails")
				Expect(s.With).To(HaveKeyWithValue("path", "egresslab-junit.xml"))
			}
		}
		Expect([]int{install, verify, upload}).To(HaveEach(BeNumerically(">=", 0)), "install, verify and upload steps")
		Expect(install).To(BeNumerically("<", verify))
		Expect(verify).To(BeNumerically("<", upload))
	})

	It("GitLab CI: a job that installs, verifies with --junit and keeps the JUnit report always", func() {
		var doc map[string]any
		readYAML("../docs/ci/gitlab-ci.yml", &doc)
		Expect(doc).To(HaveKey("egresslab"))
		keywords := []string{"stages", "variables", "default", "include", "workflow", "image", "services", "cache"}
		for key, v := range doc {
			if slices.Contains(keywords, key) {
				continue
			}
			job, ok := v.(map[string]any)
			Expect(ok).To(BeTrue(), "top-level %q is neither a GitLab keyword nor a job", key)
			Expect(job).To(HaveKey("script"), "job %q has no script", key)
		}
		var job struct {
			Stage        string   `yaml:"stage"`
			Tags         []string `yaml:"tags"`
			BeforeScript []string `yaml:"before_script"`
			Script       []string `yaml:"script"`
			AllowFailure any      `yaml:"allow_failure"`
			Artifacts    struct {
				When    string   `yaml:"when"`
				Paths   []string `yaml:"paths"`
				Reports struct {
					JUnit string `yaml:"junit"`
				} `yaml:"reports"`
			} `yaml:"artifacts"`
		}
		out, err := yaml.Marshal(doc["egresslab"])
		Expect(err).NotTo(HaveOccurred())
		Expect(yaml.Unmarshal(out, &job)).To(Succeed())
		Expect(doc["stages"]).To(ContainElement(job.Stage), "the job's stage is declared")
		Expect(job.Tags).NotTo(BeEmpty(), "the job names the runner it needs")
		Expect(job.BeforeScript).To(ContainElement(ContainSubstring("go install \"github.com/egresslab/egresslab/cmd/egresslab@")))
		Expect(job.Script).To(ContainElement(And(ContainSubstring("egresslab verify"), ContainSubstring("--junit egresslab-junit.xml"))))
		Expect(job.AllowFailure).To(BeNil(), "a failed verify fails the pipeline")
		Expect(job.Artifacts.When).To(Equal("always"), "the report is kept even when verify fails")
		Expect(job.Artifacts.Reports.JUnit).To(Equal("egresslab-junit.xml"))
	})
})

type workflowStep struct {
	Name string            `yaml:"name"`
	Uses string            `yaml:"uses"`
	If   string            `yaml:"if"`
	Run  string            `yaml:"run"`
	With map[string]string `yaml:"with"`
}

var _ = It("the README's and docs' relative links lead to files that exist", Label("docs"), func() {
	files, err := filepath.Glob("../docs/*.md")
	Expect(err).NotTo(HaveOccurred())
	files = append(files, "../README.md", "../docs/ci/README.md")
	link := regexp.MustCompile(`\]\(([^)#\s]+)(#[^)]*)?\)`)
	checked := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		Expect(err).NotTo(HaveOccurred())
		for _, m := range link.FindAllStringSubmatch(string(data), -1) {
			if strings.Contains(m[1], "://") {
				continue
			}
			_, err := os.Stat(filepath.Join(filepath.Dir(f), m[1]))
			Expect(err).NotTo(HaveOccurred(), "%s links to %s", f, m[1])
			checked++
		}
	}
	Expect(checked).To(BeNumerically(">", 20), "the link pattern found the links")
})

// readYAML decodes a file into v; a file that is not YAML fails the spec.
func readYAML(file string, v any) {
	GinkgoHelper()
	data, err := os.ReadFile(file)
	Expect(err).NotTo(HaveOccurred())
	Expect(yaml.Unmarshal(data, v)).To(Succeed(), "%s is not valid YAML", file)
}
