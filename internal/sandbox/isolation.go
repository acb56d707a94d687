package sandbox

import "time"

// Isolation is what one instance actually got, as its init reports it just
// before it execs the function: each wall on or off.
type Isolation struct {
	UserNamespace    bool `json:"userNamespace"`
	PIDNamespace     bool `json:"pidNamespace"`
	MountNamespace   bool `json:"mountNamespace"`
	NetworkNamespace bool `json:"networkNamespace"`
	IPCNamespace     bool `json:"ipcNamespace"`
	UTSNamespace     bool `json:"utsNamespace"`
	CgroupNamespace  bool `json:"cgroupNamespace"`
	PrivateRoot      bool `json:"privateRoot"`  // pivot_root into a fresh read-only root
	ReadOnlyCode     bool `json:"readOnlyCode"` // /var/task
	NoNewPrivs       bool `json:"noNewPrivs"`
	NoCapabilities   bool `json:"noCapabilities"`
	UnprivilegedUser bool `json:"unprivilegedUser"` // uid/gid 993 inside, an unused host id outside
	Seccomp          bool `json:"seccomp"`
	LandlockABI      int  `json:"landlockABI"` // 0: off
	MemoryLimit      bool `json:"memoryLimit"`
	PidsLimit        bool `json:"pidsLimit"`
	CPULimit         bool `json:"cpuLimit"` // CPU in proportion to memory
	OpenFilesLimit   bool `json:"openFilesLimit"`
	// Enforce mode (Spec.Enforce): LandlockExecAllowList, execute
	// rights only on the approved profile's executables and what the
	// kernel opens to run them; ExecSupervisor, every execve and
	// execveat answered by moat's exec supervisor. Neither is probed:
	// Missing never names them.
	LandlockExecAllowList bool `json:"landlockExecAllowList,omitempty"`
	ExecSupervisor        bool `json:"execSupervisor,omitempty"`
}

// Missing lists the walls that are off, each with the reason.
func (iso Isolation) Missing() map[string]string {
	m := map[string]string{}
	off := func(ok bool, name, why string) {
		if !ok {
			m[name] = why
		}
	}
	off(iso.UserNamespace && iso.PIDNamespace && iso.MountNamespace && iso.NetworkNamespace &&
		iso.IPCNamespace && iso.UTSNamespace && iso.CgroupNamespace, "namespaces", "moat is not running as root, or the kernel refused a namespace")
	off(iso.PrivateRoot && iso.ReadOnlyCode, "privateRoot", "needs namespaces")
	off(iso.NoNewPrivs && iso.NoCapabilities && iso.UnprivilegedUser, "privileges", "needs namespaces")
	off(iso.Seccomp, "seccomp", "disabled or not supported by the kernel")
	off(iso.LandlockABI > 0, "landlock", "not enabled in the kernel (lsm=landlock) or disabled")
	off(iso.MemoryLimit && iso.PidsLimit, "cgroups", "no memory or pids controller")
	off(iso.CPULimit, "cpuLimit", "no cpu controller")
	off(iso.OpenFilesLimit, "openFilesLimit", "needs namespaces")
	return m
}

// initReport is what the init sends back over its report socket.
type initReport struct {
	Isolation Isolation `json:"isolation"`
	Error     string    `json:"error,omitempty"`
	// Steps is how long the init's own steps took, in µs (SpawnTimes).
	Steps initSteps `json:"steps"`
}

type initSteps struct {
	Root, Privileges, Landlock, Seccomp int64
}

// SpawnTimes is where one Spawn spent its time, for benchmarks and the
// cold-start breakdown: the host's steps, then the init's. A pooled
// instance (Pooled) was built ahead of its Spawn: Prepare, Clone and Host
// are zero, and Walls and Root count only the claim's part.
type SpawnTimes struct {
	Pooled     bool
	Prepare    time.Duration // cgroups, pipes
	Clone      time.Duration // clone into the new namespaces (and the cgroup)
	Host       time.Duration // v1 cgroups, Runtime API socket, the base spec sent
	Claim      time.Duration // memory limit, observer, network, code mount, the spec sent
	Walls      time.Duration // waiting for the init's reports: its start, its own steps below
	Root       time.Duration // the init: mounts and pivot_root
	Privileges time.Duration // the init: limits, no_new_privs, capabilities and ids
	Landlock   time.Duration // the init: Landlock rules
	Seccomp    time.Duration // the init: the seccomp filter
}
