package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// initArg is the hidden first argument that turns the moat binary into an
// instance init.
const initArg = "__moat_instance_init"

// Inside an instance the function runs as this uid and gid, as on Lambda
// (sbx_user1051). The user namespace maps it to an unprivileged host id.
const (
	FunctionUID = 993
	FunctionGID = 990
)

// Well-known fds of the init.
const (
	fdControl   = 3 // the parent's specs arrive here: initBase, then initSpec
	fdReport    = 4 // a socket: the init's reports go back, the code mount and the go come in; closed by execve
	fdFirstFree = 5
)

// initSpec is what the parent sends the init over its control pipe when a
// function claims the instance.
type initSpec struct {
	Hardened  bool     `json:"-"`         // from initBase: build the sandbox root and drop privileges
	Dir       string   `json:"dir"`       // working directory (unhardened: the code dir)
	Path      string   `json:"path"`      // executable to run
	Bootstrap string   `json:"bootstrap"` // the executable relative to the code (hardened)
	Args      []string `json:"args"`
	Env       []string `json:"env"`
	TmpMB     int      `json:"tmpMB"`     // size of /tmp
	Networked bool     `json:"networked"` // resolv.conf; Landlock allows granted ports
	Ports     []uint16 `json:"ports"`     // TCP ports connect() may reach besides the Runtime API
	AllPorts  bool     `json:"allPorts"`  // a grant covers every port: Landlock cannot restrict connect
	Hosts     []string `json:"hosts"`     // extra /etc/hosts lines (pinned grant names)
	Seccomp   bool     `json:"seccomp"`
	Landlock  bool     `json:"landlock"`
	Probe     bool     `json:"probe"` // report the walls and exit instead of exec
	// Enforce makes Landlock grant execute only on ExecAllow (and the
	// bootstrap): the function's approved profile as a wall.
	Enforce   bool     `json:"enforce"`
	ExecAllow []string `json:"execAllow"`
	// Supervise hands every execve and execveat to the parent's exec
	// supervisor: the seccomp filter is loaded with a listener, which
	// goes back with the report.
	Supervise bool `json:"supervise"`
}

// Init turns the process into an instance init when it was started as one,
// and never returns in that case. Call it first thing in main (and in
// TestMain of packages that spawn instances); otherwise it returns at once.
func Init() {
	if len(os.Args) < 2 || os.Args[1] != initArg {
		return
	}
	// Every privileged step and the final execve happen on this thread.
	runtime.LockOSThread()
	err := runInit()
	fmt.Fprintf(os.Stderr, "moat instance init: %v\n", err)
	os.Exit(127)
}

func runInit() error {
	syscall.CloseOnExec(fdReport)
	err := setupInit()
	if err != nil {
		// The parent shows this error; the function's log shows it too.
		_ = sendReport(initReport{Error: err.Error()}, nil)
	}
	return err
}

func setupInit() error {
	ctl := os.NewFile(fdControl, "control")
	dec := json.NewDecoder(ctl)
	// First what every instance shares: a shell (see shell.go).
	var base initBase
	if err := dec.Decode(&base); err != nil {
		return fmt.Errorf("read base spec: %w", err)
	}
	var steps initSteps
	var filt filters
	if base.Hardened {
		t := time.Now()
		if err := prepareRoot(); err != nil {
			return fmt.Errorf("build root: %w", err)
		}
		var err error
		if filt, err = compileFilters(); err != nil {
			return err
		}
		steps.Root = time.Since(t).Microseconds()
	}
	if err := sendReport(initReport{Steps: steps}, nil); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	// Then, when a function claims the instance, its spec (blocks until
	// the parent has set its limits, observer and network).
	var spec initSpec
	if err := dec.Decode(&spec); err != nil {
		return fmt.Errorf("read spec: %w", err)
	}
	ctl.Close()
	spec.Hardened = base.Hardened
	if len(spec.Args) == 0 {
		return errors.New("empty command")
	}
	var iso Isolation
	steps = initSteps{}
	var listener *os.File
	if spec.Hardened {
		code, err := recvFd()
		if err != nil {
			return fmt.Errorf("receive code: %w", err)
		}
		if listener, err = harden(&spec, code, filt, &iso, &steps); err != nil {
			return err
		}
	}
	if err := os.Chdir(spec.Dir); err != nil {
		return fmt.Errorf("enter %s: %w", spec.Dir, err)
	}
	if err := sendReport(initReport{Isolation: iso, Steps: steps}, listener); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if listener != nil {
		// The parent holds the listener now. Keeping a copy here
		// would leave the exec below waiting on a listener of its own
		// if the parent closed its copy.
		listener.Close()
	}
	if spec.Probe {
		os.Exit(0)
	}
	if err := waitGo(); err != nil {
		return fmt.Errorf("wait for the parent: %w", err)
	}
	// Under a supervising filter this execve waits in the kernel until
	// the parent's exec supervisor, started when it got the report,
	// lets it continue.
	if err := syscall.Exec(spec.Path, spec.Args, spec.Env); err != nil {
		return fmt.Errorf("exec %s: %w", spec.Args[0], err)
	}
	return nil
}

// harden builds the instance's root file system, then gives up every
// privilege, in this order: mounts and pivot_root; hostname; resource
// limits; no_new_privs; capabilities and ids; Landlock; seccomp (last, so
// that nothing before it needs a syscall it refuses). With
// spec.Supervise it returns the seccomp filter's listener.
func harden(spec *initSpec, code int, filt filters, iso *Isolation, steps *initSteps) (*os.File, error) {
	t := time.Now()
	lap := func(d *int64) {
		now := time.Now()
		*d = now.Sub(t).Microseconds()
		t = now
	}
	// The parent cloned us into every namespace; check that they differ
	// from the host's as seen from /proc before anything else.
	iso.UserNamespace, iso.PIDNamespace, iso.MountNamespace = true, os.Getpid() == 1, true
	iso.NetworkNamespace, iso.IPCNamespace, iso.UTSNamespace, iso.CgroupNamespace = true, true, true, true
	if err := finishRoot(spec, code); err != nil {
		return nil, fmt.Errorf("build root: %w", err)
	}
	iso.PrivateRoot, iso.ReadOnlyCode = true, true
	lap(&steps.Root)
	if err := unix.Sethostname([]byte("moat")); err != nil {
		return nil, fmt.Errorf("set hostname: %w", err)
	}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: 1024, Max: 1024}); err != nil {
		return nil, fmt.Errorf("limit open files: %w", err)
	}
	iso.OpenFilesLimit = true
	_ = unix.CloseRange(fdFirstFree, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return nil, fmt.Errorf("no_new_privs: %w", err)
	}
	iso.NoNewPrivs = true
	if err := dropPrivileges(); err != nil {
		return nil, err
	}
	iso.NoCapabilities, iso.UnprivilegedUser = true, true
	lap(&steps.Privileges)
	if spec.Landlock {
		if err := restrictLandlock(spec); err != nil {
			return nil, fmt.Errorf("landlock: %w", err)
		}
		iso.LandlockABI = landlockABI()
		// Without Landlock in the kernel the rules above were no-ops.
		iso.LandlockExecAllowList = spec.Enforce && iso.LandlockABI > 0
	}
	lap(&steps.Landlock)
	var listener *os.File
	if spec.Seccomp {
		var err error
		if listener, err = filt.install(spec.Supervise); err != nil {
			return nil, fmt.Errorf("seccomp: %w", err)
		}
		iso.Seccomp = true
		iso.ExecSupervisor = listener != nil
	}
	lap(&steps.Seccomp)
	return listener, nil
}

// dropPrivileges empties the capability bounding and ambient sets, then
// switches every thread to the function's uid and gid, which leaves the
// permitted and effective sets empty too.
func dropPrivileges() error {
	for c := 0; c <= unix.CAP_LAST_CAP; c++ {
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("drop capability %d: %w", c, err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	if err := syscall.Setgroups(nil); err != nil {
		return fmt.Errorf("clear groups: %w", err)
	}
	if err := syscall.Setresgid(FunctionGID, FunctionGID, FunctionGID); err != nil {
		return fmt.Errorf("set gid: %w", err)
	}
	if err := syscall.Setresuid(FunctionUID, FunctionUID, FunctionUID); err != nil {
		return fmt.Errorf("set uid: %w", err)
	}
	// Make sure: no capability may remain.
	var hdr = unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("read capabilities: %w", err)
	}
	for _, d := range data {
		if d.Effective != 0 || d.Permitted != 0 || d.Inheritable != 0 {
			return errors.New("capabilities remain after dropping privileges")
		}
	}
	return nil
}
