package suites_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/goccy/go-yaml"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// pinnedVersion is the egresslab release every job of docs/ci installs.
const pinnedVersion = "v0.1.0"

// workflow is the part of a GitHub Actions workflow these specs read.
type workflow struct {
	Env  map[string]any `yaml:"env"`
	Jobs map[string]struct {
		RunsOn    string `yaml:"runs-on"`
		Needs     any    `yaml:"needs"`
		If        string `yaml:"if"`
		Container *struct {
			Image   string `yaml:"image"`
			Options string `yaml:"options"`
		} `yaml:"container"`
		Strategy struct {
			FailFast *bool            `yaml:"fail-fast"`
			Matrix   map[string][]int `yaml:"matrix"`
		} `yaml:"strategy"`
		Steps []workflowStep `yaml:"steps"`
	} `yaml:"jobs"`
}

// stepIndex is the first step whose run or uses contains s, or -1.
func stepIndex(steps []workflowStep, s string) int {
	return slices.IndexFunc(steps, func(st workflowStep) bool {
		return strings.Contains(st.Run, s) || strings.Contains(st.Uses, s)
	})
}

var _ = Describe("the CI jobs of docs/ci, each for a real runner", Label("docs"), func() {
	It("every job pins egresslab "+pinnedVersion+" and installs it with go install", func() {
		files, err := filepath.Glob("../docs/ci/*.yml")
		Expect(err).NotTo(HaveOccurred())
		Expect(files).To(HaveLen(7))
		for _, f := range files {
			data, err := os.ReadFile(f)
			Expect(err).NotTo(HaveOccurred())
			Expect(string(data)).To(MatchRegexp(`EGRESSLAB_VERSION:?\s*\n?\s*(value: )?`+pinnedVersion+` # the egresslab release`), f)
			Expect(string(data)).To(ContainSubstring(`go install "github.com/egresslab/egresslab/cmd/egresslab@${EGRESSLAB_VERSION}"`), f)
			Expect(string(data)).NotTo(ContainSubstring("@latest"), f)
		}
	})

	It("GitHub Actions on ubuntu-24.04 with sudo: doctor, then verify", func() {
		var wf workflow
		readYAML("../docs/ci/github-actions.yml", &wf)
		job := wf.Jobs["verify"]
		Expect(job.RunsOn).To(Equal("ubuntu-24.04"))
		doctor, verify := stepIndex(job.Steps, "sudo egresslab doctor"), stepIndex(job.Steps, "egresslab verify -f")
		Expect(doctor).To(BeNumerically(">=", 0))
		Expect(doctor).To(BeNumerically("<", verify))
	})

	It("GitHub Actions rootless: lifts the AppArmor restriction and adds an id range before egresslab runs, without sudo", func() {
		var wf workflow
		readYAML("../docs/ci/github-actions-rootless.yml", &wf)
		job := wf.Jobs["verify"]
		Expect(job.RunsOn).To(Equal("ubuntu-24.04"))
		setup := stepIndex(job.Steps, "sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0")
		Expect(setup).To(BeNumerically(">=", 0))
		Expect(job.Steps[setup].Run).To(ContainSubstring("uidmap"))
		Expect(job.Steps[setup].Run).To(ContainSubstring("usermod --add-subuids 100000-165535 --add-subgids 100000-165535"))
		doctor, verify := stepIndex(job.Steps, "egresslab\" doctor"), stepIndex(job.Steps, "egresslab\" verify")
		Expect([]int{doctor, verify}).To(HaveEach(BeNumerically(">", setup)))
		Expect(job.Steps[verify].Run).NotTo(ContainSubstring("sudo"))
		Expect(job.Steps[verify].Run).To(ContainSubstring("--junit egresslab-junit.xml"))
	})

	It("GitHub Actions sharded: a strategy.matrix of N shards uploads each JSON report, a merge job joins them always", func() {
		var wf workflow
		readYAML("../docs/ci/github-actions-sharded.yml", &wf)
		Expect(wf.Env).To(HaveKeyWithValue("SHARDS", BeNumerically("==", 3)))
		shards := wf.Jobs["verify"]
		Expect(shards.Strategy.Matrix["shard"]).To(Equal([]int{1, 2, 3}))
		Expect(shards.Strategy.FailFast).To(HaveValue(BeFalse()), "every shard reports")
		verify := stepIndex(shards.Steps, "egresslab verify")
		Expect(verify).To(BeNumerically(">=", 0))
		Expect(shards.Steps[verify].Run).To(ContainSubstring(`--shard "${{ matrix.shard }}/${SHARDS}" --format json > "egresslab-shard-${{ matrix.shard }}.json"`))
		upload := stepIndex(shards.Steps, "actions/upload-artifact@")
		Expect(upload).To(BeNumerically(">", verify))
		Expect(shards.Steps[upload].If).To(Equal("always()"))

		merge := wf.Jobs["merge"]
		Expect(merge.Needs).To(Equal("verify"))
		Expect(merge.If).To(Equal("always()"), "a failed shard does not skip the merge that reports it")
		download, run := stepIndex(merge.Steps, "actions/download-artifact@"), stepIndex(merge.Steps, `egresslab" merge --junit egresslab-junit.xml shards/egresslab-shard-*.json`)
		Expect(download).To(BeNumerically(">=", 0))
		Expect(merge.Steps[download].With).To(HaveKeyWithValue("pattern", "egresslab-shard-*"))
		Expect(run).To(BeNumerically(">", download))
		Expect(merge.Steps[run].If).To(BeEmpty(), "merge's exit status fails the job")
		Expect(merge.Steps[len(merge.Steps)-1].Uses).To(HavePrefix("actions/upload-artifact@"))
		Expect(merge.Steps[len(merge.Steps)-1].If).To(Equal("always()"))
	})

	It("GitHub Actions container job: the capabilities a lab needs, the default seccomp and AppArmor profiles lifted", func() {
		var wf workflow
		readYAML("../docs/ci/github-actions-container.yml", &wf)
		job := wf.Jobs["verify"]
		Expect(job.Container).NotTo(BeNil())
		for _, opt := range []string{"--cap-add SYS_ADMIN", "--cap-add NET_ADMIN", "--cap-add SYS_PTRACE", "--security-opt seccomp=unconfined", "--security-opt apparmor=unconfined"} {
			Expect(job.Container.Options).To(ContainSubstring(opt))
		}
		Expect(job.Container.Options).NotTo(ContainSubstring("--privileged"), "the capabilities, not everything")
		doctor, verify := stepIndex(job.Steps, "egresslab doctor"), stepIndex(job.Steps, "egresslab verify")
		Expect(doctor).To(BeNumerically(">=", 0))
		Expect(doctor).To(BeNumerically("<", verify))
	})

	It("GitLab CI sharded (parsed and checked for its keys: GitLab has no offline linter): parallel shards and a merge job", func() {
		var doc map[string]any
		readYAML("../docs/ci/gitlab-ci-sharded.yml", &doc)
		Expect(doc["stages"]).To(Equal([]any{"test", "report"}))
		type gitlabJob struct {
			Stage        string   `yaml:"stage"`
			Parallel     int      `yaml:"parallel"`
			Needs        []string `yaml:"needs"`
			When         string   `yaml:"when"`
			Tags         []string `yaml:"tags"`
			BeforeScript []string `yaml:"before_script"`
			Script       []string `yaml:"script"`
			Artifacts    struct {
				When    string   `yaml:"when"`
				Paths   []string `yaml:"paths"`
				Reports struct {
					JUnit string `yaml:"junit"`
				} `yaml:"reports"`
			} `yaml:"artifacts"`
		}
		job := func(name string) gitlabJob {
			out, err := yaml.Marshal(doc[name])
			Expect(err).NotTo(HaveOccurred())
			var j gitlabJob
			Expect(yaml.Unmarshal(out, &j)).To(Succeed())
			return j
		}
		shard, merge := job("egresslab-shard"), job("egresslab-merge")
		Expect(shard.Stage).To(Equal("test"))
		Expect(shard.Parallel).To(Equal(3))
		Expect(shard.Tags).NotTo(BeEmpty(), "the runner that may make namespaces")
		Expect(shard.Script).To(ContainElement(ContainSubstring(`egresslab verify -f "$POLICY" --shard "${CI_NODE_INDEX}/${CI_NODE_TOTAL}" --format json > "egresslab-shard-${CI_NODE_INDEX}.json"`)))
		Expect(shard.Artifacts.When).To(Equal("always"))
		Expect(shard.Artifacts.Paths).To(ConsistOf("egresslab-shard-*.json"))
		Expect(merge.Stage).To(Equal("report"))
		Expect(merge.Needs).To(ConsistOf("egresslab-shard"))
		Expect(merge.When).To(Equal("always"))
		Expect(merge.Script).To(ContainElement("egresslab merge --junit egresslab-junit.xml egresslab-shard-*.json"))
		Expect(merge.Artifacts.When).To(Equal("always"))
		Expect(merge.Artifacts.Reports.JUnit).To(Equal("egresslab-junit.xml"))
	})

	It("Kubernetes Job (parsed and checked for its keys): root with the capabilities a lab needs, unconfined, never retried", func() {
		var job struct {
			Kind string `yaml:"kind"`
			Spec struct {
				BackoffLimit *int `yaml:"backoffLimit"`
				Template     struct {
					Spec struct {
						Containers []struct {
							Args            []string `yaml:"args"`
							SecurityContext struct {
								RunAsUser    *int `yaml:"runAsUser"`
								Capabilities struct {
									Add []string `yaml:"add"`
								} `yaml:"capabilities"`
								SeccompProfile  struct{ Type string } `yaml:"seccompProfile"`
								AppArmorProfile struct{ Type string } `yaml:"appArmorProfile"`
							} `yaml:"securityContext"`
						} `yaml:"containers"`
					} `yaml:"spec"`
				} `yaml:"template"`
			} `yaml:"spec"`
		}
		readYAML("../docs/ci/kubernetes-job.yml", &job)
		Expect(job.Kind).To(Equal("Job"))
		Expect(job.Spec.BackoffLimit).To(HaveValue(Equal(0)))
		Expect(job.Spec.Template.Spec.Containers).To(HaveLen(1))
		c := job.Spec.Template.Spec.Containers[0]
		Expect(c.SecurityContext.RunAsUser).To(HaveValue(Equal(0)))
		Expect(c.SecurityContext.Capabilities.Add).To(ConsistOf("SYS_ADMIN", "NET_ADMIN", "SYS_PTRACE"))
		Expect(c.SecurityContext.SeccompProfile.Type).To(Equal("Unconfined"))
		Expect(c.SecurityContext.AppArmorProfile.Type).To(Equal("Unconfined"))
		Expect(strings.Join(c.Args, "\n")).To(ContainSubstring("egresslab doctor\negresslab verify"))
	})
})
