// Package detect is what moat makes of what the sensor observes: the
// attributed [Event] every trace, rule, profile and alert is built from,
// the rules (built-in and user-written CEL), behaviour profiles, and the
// [Alert] they raise. It holds no I/O: the monitor feeds it events and
// stores what it returns.
package detect

import (
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/elastic/go-seccomp-bpf/arch"
)

// Phases of an instance's life an event can fall in.
const (
	PhaseInit   = "init"   // before the runtime asked for its first invocation
	PhaseInvoke = "invoke" // while an invocation ran: RequestID is set
	PhaseIdle   = "idle"   // between invocations
)

// Event is one action of a function's process, attributed to the
// function, version, instance and (in PhaseInvoke) the request it ran
// for. Paths are as the instance sees them (its own root: /var/task,
// /tmp, ...); ids are the host's. JSON names are those rules use (see
// the rules' CEL variables).
type Event struct {
	Time time.Time `json:"time"`
	// Kind is exec, exit, connect, bind, listen, accept, sendto, open,
	// unlink, rename, chmod, mkdir, link, symlink, truncate, utimes,
	// mknod, chown, setname, setid, capset or denied.
	Kind      string `json:"kind"`
	Function  string `json:"function"`
	Version   string `json:"version"`
	Instance  string `json:"instance"`
	RequestID string `json:"request_id,omitempty"`
	Phase     string `json:"phase"`
	Runtime   string `json:"runtime,omitempty"` // the function's Runtime setting

	PID  int    `json:"pid"`
	PPID int    `json:"ppid"`
	UID  uint32 `json:"uid"`
	Comm string `json:"comm"`
	// Exe is the executable the process runs, from its last exec, when
	// the monitor saw it; for an exec event, the new one (Path).
	Exe string `json:"exe,omitempty"`

	Syscall string `json:"syscall,omitempty"` // the syscall's name; empty for exec and exit
	Result  int    `json:"result"`            // >= 0 success, -errno failure; exit status for exit
	Errno   string `json:"errno,omitempty"`   // "EPERM" when Result < 0
	Signal  int    `json:"signal,omitempty"`  // exit: the signal that ended it
	Killed  bool   `json:"killed,omitempty"`  // denied: the kernel killed the caller (an escape attempt, Sandbox.OnDenial recycle)

	// Path is absolute and clean ("." and ".." resolved, symlinks not
	// followed): a relative path is joined to the directory the kernel
	// resolved it from (the working directory, or the directory
	// descriptor's); one the sensor could not place stays as given.
	// Exec: the executable. A change made through a descriptor (fchmod,
	// ftruncate, futimens, fchown): the file changed.
	Path string `json:"path,omitempty"`
	// Opened is the file the kernel really opened (or ran), when it is
	// not Path: every symlink followed ("/tmp/link" opened
	// "/etc/shadow"; "/proc/self/environ" opened "/proc/7/environ").
	// Rules that match a path match either.
	Opened  string `json:"opened,omitempty"`
	NewPath string `json:"new_path,omitempty"` // rename: the new name; link, symlink: the new link; made canonical as Path
	Target  string `json:"target,omitempty"`   // symlink: what the link points to, as given
	Name    string `json:"name,omitempty"`     // setname: the name the thread gave itself
	// Asked is the path exactly as the call gave it, when Path differs.
	Asked    string   `json:"asked,omitempty"`
	AskedNew string   `json:"asked_new,omitempty"` // rename: the new name as given, when NewPath differs
	Argv     []string `json:"argv,omitempty"`      // exec: the first arguments
	Env      []string `json:"env,omitempty"`       // exec: the loader variables of the new environment (LD_PRELOAD, LD_LIBRARY_PATH, LD_AUDIT), and no others
	Flags    uint32   `json:"flags,omitempty"`
	Mode     uint32   `json:"mode,omitempty"`
	Intent   []string `json:"intent,omitempty"` // open: read, write, create, trunc

	Family string `json:"family,omitempty"` // connect, bind, accept, sendto: inet, inet6, unix, or the number
	Addr   string `json:"addr,omitempty"`   // IP address (destination, local or peer), or socket path for unix
	Port   int    `json:"port,omitempty"`

	// FD is the descriptor of a change made through one (fchmod,
	// ftruncate, futimens, fchown); Path is then its file, when the
	// sensor could walk it.
	FD       int    `json:"fd,omitempty"`
	Length   int64  `json:"length,omitempty"`    // truncate: the new length
	Dev      uint64 `json:"dev,omitempty"`       // mknod: the device number
	TimesSet bool   `json:"times_set,omitempty"` // utimes: the times were given (not now)

	IDs  []int64  `json:"ids,omitempty"`  // setid: the ids asked for, -1 where unchanged; chown: uid, gid
	Caps []uint64 `json:"caps,omitempty"` // capset: effective, permitted, inheritable

	Truncated bool `json:"truncated,omitempty"` // a path or argv was cut at the sensor's bound
	// ExeName is, for an exec, the name of the file run as the kernel
	// opened it ("memfd:x" for a memfd run through /dev/fd/N).
	ExeName string `json:"exe_name,omitempty"`
	// Fileless: an exec of a file with no link in any file system (a
	// memfd, or a file deleted before it ran).
	Fileless bool `json:"fileless,omitempty"`
	// ReadAtExit: the path or address was on a page the caller had not
	// touched, so the sensor read it as the call returned (a thread of
	// the caller could have changed it in between).
	ReadAtExit bool `json:"read_at_exit,omitempty"`
}

// Failed reports whether the call failed.
func (e *Event) Failed() bool { return e.Result < 0 && e.Kind != "exit" }

// Command is the exec's argv joined with spaces, for display.
func (e *Event) Command() string { return strings.Join(e.Argv, " ") }

// Where tells where a connect went: "10.0.0.1:443", "[::1]:80" or a
// unix socket path.
func (e *Event) Where() string {
	switch {
	case e.Family == "unix":
		return e.Addr
	case e.Family == "inet6":
		return "[" + e.Addr + "]:" + strconv.Itoa(e.Port)
	default:
		return e.Addr + ":" + strconv.Itoa(e.Port)
	}
}

// Attribution is what the monitor knows of the instance and request an
// event came from.
type Attribution struct {
	Function, Version, Instance, RequestID, Phase, Runtime, Exe string
}

var syscallNames = func() map[int]string {
	info, err := arch.GetInfo("")
	if err != nil {
		return nil
	}
	return info.SyscallNumbers
}()

// SyscallName names syscall number nr of the architecture moat runs on.
func SyscallName(nr int) string {
	if n, ok := syscallNames[nr]; ok {
		return n
	}
	return "syscall_" + strconv.Itoa(nr)
}

var errnoNames = map[syscall.Errno]string{
	syscall.EPERM: "EPERM", syscall.ENOENT: "ENOENT", syscall.EACCES: "EACCES",
	syscall.EEXIST: "EEXIST", syscall.ENOTDIR: "ENOTDIR", syscall.EISDIR: "EISDIR",
	syscall.EINVAL: "EINVAL", syscall.EROFS: "EROFS", syscall.ENOSYS: "ENOSYS",
	syscall.ECONNREFUSED: "ECONNREFUSED", syscall.ENETUNREACH: "ENETUNREACH",
	syscall.EHOSTUNREACH: "EHOSTUNREACH", syscall.ETIMEDOUT: "ETIMEDOUT",
	syscall.EINPROGRESS: "EINPROGRESS", syscall.EAFNOSUPPORT: "EAFNOSUPPORT",
	syscall.EBADF: "EBADF", syscall.EFAULT: "EFAULT", syscall.ENAMETOOLONG: "ENAMETOOLONG",
	syscall.ELOOP: "ELOOP", syscall.ENOTEMPTY: "ENOTEMPTY", syscall.EXDEV: "EXDEV",
	syscall.EBUSY: "EBUSY", syscall.ENOSPC: "ENOSPC", syscall.EAGAIN: "EAGAIN",
	syscall.EADDRNOTAVAIL: "EADDRNOTAVAIL", syscall.EALREADY: "EALREADY",
}

// ErrnoName names an errno ("EPERM"), or gives its number.
func ErrnoName(n int) string {
	if s, ok := errnoNames[syscall.Errno(n)]; ok {
		return s
	}
	return "errno_" + strconv.Itoa(n)
}

// Severity ranks an alert.
type Severity string

// Severities, lowest first.
const (
	SeverityInfo     Severity = "info"
	SeverityLow      Severity = "low"
	SeverityMedium   Severity = "medium"
	SeverityHigh     Severity = "high"
	SeverityCritical Severity = "critical"
)

var severityRank = map[Severity]int{SeverityInfo: 0, SeverityLow: 1, SeverityMedium: 2, SeverityHigh: 3, SeverityCritical: 4}

// Valid reports whether s is one of the severities.
func (s Severity) Valid() bool { _, ok := severityRank[s]; return ok }

// Rank orders severities: info 0 ... critical 4; -1 if invalid.
func (s Severity) Rank() int {
	if r, ok := severityRank[s]; ok {
		return r
	}
	return -1
}

// Alert sources.
const (
	SourceRule    = "rule"    // a built-in or user rule matched
	SourceProfile = "profile" // an action outside the function version's profile
	SourceDrift   = "drift"   // a new version does what the version it inherited from never did
	SourceSensor  = "sensor"  // the sensor lost events of this instance
)

// Alert is one finding: which rule or profile deviation, how severe, where
// and for which request, and the events that are its evidence.
type Alert struct {
	ID        string    `json:"id"`
	Time      time.Time `json:"time"` // when the last evidence event happened
	Source    string    `json:"source"`
	Rule      string    `json:"rule"` // rule name, or "profile.exec", "profile.write", ...
	Severity  Severity  `json:"severity"`
	Summary   string    `json:"summary"`
	Function  string    `json:"function"`
	Version   string    `json:"version"`
	Instance  string    `json:"instance"`
	RequestID string    `json:"request_id,omitempty"`
	Evidence  []Event   `json:"evidence"`
}

// InstanceInfo is what the monitor is told of an instance before it
// starts: whose it is and how its runtime looks.
type InstanceInfo struct {
	Function string
	Version  string
	// Runtime is the function's Runtime setting; the monitor reports
	// "shell" instead when the bootstrap is a shell script.
	Runtime string
	// Bootstrap is the host path of the bootstrap executable, read (its
	// first line only) to tell a shell runtime.
	Bootstrap string
	// Recycle: the function's Sandbox.OnDenial is recycle (escape
	// attempts are killed, the instance is retired after any denial).
	Recycle bool
}
