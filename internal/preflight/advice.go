package preflight

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"strings"
)

// Env is where egresslab runs, as far as the fix for a failed step depends
// on it.
type Env struct {
	Root bool   // real root (not root of a rootless start's own user namespace)
	User string // the caller's name
	// Rootless: this process is a rootless start's, as root of a user
	// namespace that maps RootlessIDs uids and gids (SetRootless).
	Rootless    bool
	RootlessIDs int
	Binary      string // this executable, for an AppArmor profile
	Container   string // "docker", "podman", "kubernetes", "a container", or "" on a host or VM
	GitHub      bool   // a GitHub Actions job
	GitLab      bool   // a GitLab CI job
	OSID        string // /etc/os-release ID: ubuntu, debian, ...
	OSVersion   string // /etc/os-release VERSION_ID: 24.04, 12, ...

	AppArmorRestrictsUserNS bool // kernel.apparmor_restrict_unprivileged_userns = 1 (Ubuntu 23.10+)
	UserNSCloneOff          bool // kernel.unprivileged_userns_clone = 0 (Debian's older kernels)
	MaxUserNSZero           bool // user.max_user_namespaces = 0
}

// Detect reads the environment: files and variables only, nothing is tried.
func Detect() Env {
	e := Env{Root: os.Geteuid() == 0, GitHub: os.Getenv("GITHUB_ACTIONS") == "true", GitLab: os.Getenv("GITLAB_CI") == "true"}
	if u, err := user.Current(); err == nil {
		e.User = u.Username
	}
	if rootless.user != "" {
		e.Root, e.User, e.Rootless, e.RootlessIDs = false, rootless.user, true, min(rootless.uids, rootless.gids)
	}
	if exe, err := os.Executable(); err == nil {
		e.Binary = exe
	}
	e.Container = container()
	e.OSID, e.OSVersion = osRelease()
	e.AppArmorRestrictsUserNS = sysctl("kernel/apparmor_restrict_unprivileged_userns") == "1"
	e.UserNSCloneOff = sysctl("kernel/unprivileged_userns_clone") == "0"
	e.MaxUserNSZero = sysctl("user/max_user_namespaces") == "0"
	return e
}

// String says where this is, for doctor's first line.
func (e Env) String() string {
	var parts []string
	if e.OSID != "" {
		parts = append(parts, strings.TrimSpace(e.OSID+" "+e.OSVersion))
	}
	switch {
	case e.Container != "":
		parts = append(parts, "in "+e.Container)
	default:
		parts = append(parts, "on a host or VM")
	}
	if e.GitHub {
		parts = append(parts, "a GitHub Actions job")
	}
	if e.GitLab {
		parts = append(parts, "a GitLab CI job")
	}
	who := "root"
	switch {
	case e.Rootless:
		who = "user " + e.User + " (rootless)"
	case !e.Root:
		who = "user " + e.User + " (not root)"
	}
	return strings.Join(parts, ", ") + ", as " + who
}

func sysctl(name string) string {
	b, err := os.ReadFile("/proc/sys/" + name)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func container() string {
	if _, err := os.Stat("/run/.containerenv"); err == nil {
		return "podman"
	}
	if _, err := os.Stat("/.dockerenv"); err == nil {
		return "docker"
	}
	if os.Getenv("KUBERNETES_SERVICE_HOST") != "" {
		return "kubernetes"
	}
	if b, err := os.ReadFile("/proc/1/cgroup"); err == nil {
		s := string(b)
		switch {
		case strings.Contains(s, "kubepods"):
			return "kubernetes"
		case strings.Contains(s, "docker"):
			return "docker"
		case strings.Contains(s, "libpod"):
			return "podman"
		case strings.Contains(s, "containerd"), strings.Contains(s, "lxc"):
			return "a container"
		}
	}
	if v := os.Getenv("container"); v != "" { // systemd's convention, set by podman, lxc, nspawn
		return v
	}
	return ""
}

func osRelease() (id, version string) {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return "", ""
	}
	for _, ln := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(ln, "=")
		if !ok {
			continue
		}
		v = strings.Trim(v, `"'`)
		switch k {
		case "ID":
			id = v
		case "VERSION_ID":
			version = v
		}
	}
	return id, version
}

// advise says what to change, where this runs, for a step that failed with err.
func advise(e Env, err error) []string {
	var (
		helpers *HelperError
		caps    *CapabilitiesError
		ns      *NamespaceError
		ids     *IDRangeError
		tools   *ToolError
		refused *RefusedError
	)
	switch {
	case errors.As(err, &helpers):
		fix := []string{fmt.Sprintf("rootless labs need newuidmap and newgidmap set-user-ID root: `%sapt-get install --reinstall uidmap` (or `sudo chmod u+s %s`)", sudoFor(e), helpers.Path)}
		if e.GitHub {
			fix = append(fix, "or, on GitHub's hosted runners (passwordless sudo), run `sudo egresslab ...` in the step")
		}
		return fix
	case errors.As(err, &caps):
		return containerFix(e, caps.Missing)
	case errors.As(err, &ids):
		return idsFix(e, ids)
	case errors.As(err, &tools):
		return []string{installFix(e, tools.Missing)}
	case errors.As(err, &ns), errors.As(err, &refused):
		return kernelFix(e)
	}
	return kernelFix(e)
}

func installFix(e Env, missing []Tool) string {
	var pkgs, cmds []string
	for _, t := range missing {
		cmds = append(cmds, t.Command)
		if !contains(pkgs, t.Package) {
			pkgs = append(pkgs, t.Package)
		}
	}
	return fmt.Sprintf("install %s: `%sapt-get install %s` (Debian and Ubuntu package names)", strings.Join(cmds, ", "), sudoFor(e), strings.Join(pkgs, " "))
}

func sudoFor(e Env) string {
	if e.Root {
		return ""
	}
	return "sudo "
}

// containerFix is for root without the capabilities a lab needs.
func containerFix(e Env, missing []string) []string {
	var adds []string
	for _, c := range missing {
		adds = append(adds, "--cap-add "+strings.TrimPrefix(c, "CAP_"))
	}
	short := make([]string, len(missing))
	for i, c := range missing {
		short[i] = strings.TrimPrefix(c, "CAP_")
	}
	switch e.Container {
	case "kubernetes":
		return []string{fmt.Sprintf("give the pod's container `securityContext: {privileged: true}`, or `capabilities: {add: [%s]}` with `seccompProfile: {type: Unconfined}` and `appArmorProfile: {type: Unconfined}`", strings.Join(short, ", "))}
	case "":
		return []string{"something dropped these capabilities from root (setpriv, capsh, a systemd unit's CapabilityBoundingSet=): run egresslab with them"}
	}
	return []string{
		fmt.Sprintf("run the container with --privileged (or %s --security-opt seccomp=unconfined --security-opt apparmor=unconfined: the default seccomp profile refuses namespaces)", strings.Join(adds, " ")),
		"a GitLab Docker executor: `privileged = true` under [runners.docker] in the runner's config.toml",
	}
}

func idsFix(e Env, ids *IDRangeError) []string {
	if ids.Rootless > 0 {
		return []string{fmt.Sprintf("give %s a range of %d subordinate uids and gids: `sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %s` (pick a range no other line of /etc/subuid and /etc/subgid uses), or run egresslab as root", e.User, LabIDs, e.User)}
	}
	if ids.NestedMap != "" {
		return []string{fmt.Sprintf("egresslab is running inside a user namespace that maps only part of the ids (as `unshare --user --map-root-user` makes): as root a lab maps host ids %d-%d, so run egresslab as real root, outside that namespace", IDBase, IDBase+LabIDs-1)}
	}
	if ids.NoSubordinate != "" {
		return []string{
			fmt.Sprintf("give %s a range of %d subordinate uids and gids: `sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %s` (pick a range no other line of /etc/subuid and /etc/subgid uses)", ids.User, LabIDs, ids.User),
		}
	}
	return kernelFix(e)
}

// kernelFix is for a namespace, a link or a table the kernel refused.
func kernelFix(e Env) []string {
	var fix []string
	if !e.Root && e.AppArmorRestrictsUserNS {
		where := "this machine"
		if e.GitHub {
			where = "GitHub's ubuntu-24.04 runners (actions/runner-images#10443)"
		}
		fix = append(fix,
			fmt.Sprintf("Ubuntu 23.10+ restricts unprivileged user namespaces on %s (kernel.apparmor_restrict_unprivileged_userns=1): `sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0` (a step before egresslab in CI; /etc/sysctl.d/ to keep it)", where),
			fmt.Sprintf("or allow them for egresslab alone with an AppArmor profile: /etc/apparmor.d/egresslab containing `abi <abi/4.0>, include <tunables/global> profile egresslab %s flags=(unconfined) { userns, }`, then `sudo apparmor_parser -r /etc/apparmor.d/egresslab`", e.Binary))
	}
	if !e.Root && e.UserNSCloneOff {
		fix = append(fix, "this kernel switches unprivileged user namespaces off (kernel.unprivileged_userns_clone=0, Debian's older kernels): `sudo sysctl -w kernel.unprivileged_userns_clone=1`")
	}
	if e.MaxUserNSZero {
		fix = append(fix, "user namespaces are switched off (user.max_user_namespaces=0): `sudo sysctl -w user.max_user_namespaces=15000`")
	}
	if e.Container != "" {
		fix = append(fix, containerFix(e, []string{"CAP_SYS_ADMIN", "CAP_NET_ADMIN"})...)
	}
	if len(fix) == 0 {
		if e.Root {
			fix = append(fix, "the kernel refused it to root: check that this kernel has user namespaces, network namespaces, veth and nf_tables (any current distribution kernel has), and that no seccomp or LSM policy confines egresslab")
		} else {
			fix = append(fix, "run egresslab as root (`sudo egresslab ...`)")
		}
	}
	return fix
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
