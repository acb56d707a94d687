package sensor

import (
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Kind says what an [Event] reports.
type Kind uint8

// The kinds of event. The numbers are those of the BPF records (enum
// event_kind in bpf/sensor.c).
const (
	KindExec    Kind = 1  // a successful execve/execveat: Path, Argv, Argc (Syscall -1, Result 0); a failed one: Syscall, Path, Dirfd, Flags, Argv, Argc, Result < 0
	KindExit    Kind = 2  // the last thread of a process exited: Result, Signal
	KindConnect Kind = 3  // connect(2): Family, Addr (or Path for AF_UNIX), Result
	KindOpen    Kind = 4  // open, creat, openat, openat2: Path, Flags, Mode, Intent, Result
	KindUnlink  Kind = 5  // unlink, rmdir, unlinkat: Path, Flags, Result
	KindRename  Kind = 6  // rename, renameat, renameat2: Path, NewPath, Flags, Result
	KindChmod   Kind = 7  // chmod, fchmodat, fchmodat2: Path, Mode, Flags, Result
	KindSetID   Kind = 8  // setuid, setgid, setreuid, setregid, setresuid, setresgid: IDs, Result
	KindCapset  Kind = 9  // capset(2): Caps, Result
	KindDenied  Kind = 10 // a syscall the seccomp filter refused: Syscall, Errno
	// 11 is a failed exec on the wire, decoded as KindExec.
	KindBind   Kind = 12 // bind(2): FD, Family, Addr (or Path for AF_UNIX), Result
	KindListen Kind = 13 // listen(2): FD, Backlog, Result
	KindAccept Kind = 14 // accept, accept4: FD (listening), Result (the new fd), the peer's Family and Addr when asked for
	KindSendto Kind = 15 // sendto, sendmsg, sendmmsg naming a destination: FD, Family, Addr (or Path), Result
	// File-system changes beyond open, unlink, rename and chmod (fchmod is
	// a KindChmod with FD and no Path).
	KindMkdir    Kind = 16 // mkdir, mkdirat: Path, Mode, Result
	KindLink     Kind = 17 // link, linkat: Path (the existing file), NewPath (the new name), Flags, Result
	KindSymlink  Kind = 18 // symlink, symlinkat: Target (what the link points to), NewPath (the link), Result
	KindTruncate Kind = 19 // truncate (Path) or ftruncate (FD): Length, Result
	KindUtimes   Kind = 20 // utimensat: Path (or FD), Flags, TimesSet, Result
	KindMknod    Kind = 21 // mknod, mknodat: Path, Mode (file type and permissions), Dev, Result
	KindChown    Kind = 22 // chown, lchown, fchownat (Path) or fchown (FD): IDs[0] uid, IDs[1] gid, Flags, Result
	KindSetName  Kind = 23 // prctl(PR_SET_NAME): Name (the thread's new name), Result
	KindFork     Kind = 24 // fork, vfork, clone of a new process (not a thread): Flags (clone's), Result (the child's id in the caller's pid namespace)
)

var kindNames = [...]string{
	KindExec:     "exec",
	KindExit:     "exit",
	KindConnect:  "connect",
	KindOpen:     "open",
	KindUnlink:   "unlink",
	KindRename:   "rename",
	KindChmod:    "chmod",
	KindSetID:    "setid",
	KindCapset:   "capset",
	KindDenied:   "denied",
	KindBind:     "bind",
	KindListen:   "listen",
	KindAccept:   "accept",
	KindSendto:   "sendto",
	KindMkdir:    "mkdir",
	KindLink:     "link",
	KindSymlink:  "symlink",
	KindTruncate: "truncate",
	KindUtimes:   "utimes",
	KindMknod:    "mknod",
	KindChown:    "chown",
	KindSetName:  "setname",
	KindFork:     "fork",
}

func (k Kind) valid() bool {
	return (k >= KindExec && k <= KindDenied) || (k >= KindBind && k <= KindFork)
}

func (k Kind) String() string {
	if k.valid() {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Intent is what an open asked to do with the file, from its flags.
type Intent uint8

// Intent bits.
const (
	IntentRead   Intent = 1 << iota // O_RDONLY or O_RDWR
	IntentWrite                     // O_WRONLY or O_RDWR
	IntentCreate                    // O_CREAT or O_TMPFILE
	IntentTrunc                     // O_TRUNC
)

func (i Intent) String() string {
	if i == 0 {
		return "none"
	}
	var parts []string
	for _, x := range []struct {
		bit  Intent
		name string
	}{{IntentRead, "read"}, {IntentWrite, "write"}, {IntentCreate, "create"}, {IntentTrunc, "trunc"}} {
		if i&x.bit != 0 {
			parts = append(parts, x.name)
		}
	}
	return strings.Join(parts, "|")
}

// Open flags (include/uapi/asm-generic/fcntl.h; the same on x86_64 and
// arm64 for these bits).
const (
	oAccMode = 0o3
	oWronly  = 0o1
	oRdwr    = 0o2
	oCreat   = 0o100
	oTrunc   = 0o1000
	oPath    = 0o10000000
	oTmpfile = 0o20000000
)

// OpenIntent derives the intent of an open from its flags.
func OpenIntent(flags uint32) Intent {
	if flags&oPath != 0 {
		return 0 // a path-only descriptor reads and writes nothing
	}
	var in Intent
	switch flags & oAccMode {
	case 0:
		in |= IntentRead
	case oWronly:
		in |= IntentWrite
	case oRdwr:
		in |= IntentRead | IntentWrite
	}
	if flags&oCreat != 0 || flags&oTmpfile == oTmpfile {
		in |= IntentCreate
	}
	if flags&oTrunc != 0 {
		in |= IntentTrunc
	}
	return in
}

// NoID marks an id that a set*id call left unchanged (-1) or does not
// take.
const NoID = ^uint32(0)

// WatchFlags say how a watched cgroup is watched.
type WatchFlags uint32

// KillEscapes: a process of the cgroup whose escape attempt (a syscall of
// Options.Escapes) the seccomp filter refused is killed by the kernel on
// the spot (bpf_send_signal), before it runs another instruction.
const KillEscapes WatchFlags = watchKillEscapes

// Event is one decoded sensor record. Which fields are set depends on
// Kind (see the Kind constants); the rest are zero.
//
// Ids are those of the initial namespaces (the host's view), not those
// the instance sees inside its own pid and user namespaces.
type Event struct {
	Kind     Kind
	Time     time.Time
	CgroupID uint64

	PID  int // thread group id
	TID  int // thread id
	PPID int // real parent's thread group id
	UID  uint32
	GID  uint32
	Comm string // the thread's command name at the time of the event

	// Syscall is the syscall number (of the architecture moat runs on);
	// -1 for KindExec and KindExit.
	Syscall int
	// Result is the syscall's return value: >= 0 on success, -errno on
	// failure. For KindExit it is the exit status (when Signal is 0); for
	// KindAccept the new socket; for KindSendto the bytes sent (sendmmsg:
	// the messages sent).
	Result int
	// Errno is -Result when the call failed, else 0.
	Errno int
	// Signal is the signal that ended the process (KindExit), or 0.
	Signal int

	Path    string // the path as given to the call; the executable for KindExec; for AF_UNIX sockets (connect, bind, accept, sendto) the socket path (abstract ones start with '@')
	NewPath string // KindRename: the new name; KindLink, KindSymlink: the new link
	// Opened is the file itself, as the kernel found it, its path walked
	// from the file's directory entry up to the instance's root (every
	// symlink followed, "." and ".." gone, the mounts crossed): for a
	// successful open, the file opened; for KindExec, the file run (a
	// failed one: when Path was empty, the descriptor's); for a change
	// by descriptor (fchmod, ftruncate, futimens, fchown) or of an empty
	// path (AT_EMPTY_PATH), the file changed. A walk that stopped short
	// (deeper than the sensor goes, or longer than a path it keeps)
	// starts with "…/" and sets Truncated; one of a file on no mounted
	// file system (a memfd) is "/" and its own name.
	Opened string
	// Dir and NewDir are, when Path (NewPath) is relative, the directory
	// it is relative to, walked as Opened is: Dirfd's, or the caller's
	// working directory for AT_FDCWD.
	Dir, NewDir string
	// Env is, for KindExec, the variables of the new program's
	// environment that make the dynamic loader load other code:
	// LD_PRELOAD, LD_LIBRARY_PATH, LD_AUDIT ("NAME=value"). No other
	// variable is read: the environment holds the function's secrets.
	Env      []string
	Target   string   // KindSymlink: what the link points to (any string, resolved only when used)
	Name     string   // KindSetName: the name the thread gave itself (at most 15 bytes are kept by the kernel)
	Dirfd    int      // the directory file descriptor a relative Path is resolved from (-100 is AT_FDCWD)
	NewDirfd int      // KindRename, KindLink, KindSymlink: the one a relative NewPath is resolved from
	Argv     []string // KindExec: the first arguments, up to 512 bytes of them (a failed exec's as the caller passed them)
	Argc     int      // KindExec: the number of arguments (a failed exec's counted up to 64; Truncated past that)
	// Truncated reports that Path, NewPath or Argv was cut at its bound.
	Truncated bool
	// Faulted reports that a user-memory string or structure could not be
	// read (a bad pointer, or memory not paged in); the field is empty (a
	// failed exec's Argv: cut before the argument that could not be read).
	Faulted bool
	// ExeName is, for a successful KindExec, the name of the file run as
	// the kernel opened it (its directory entry): for an exec of a
	// descriptor, whose Path is only /dev/fd/N, what it was ("memfd:x").
	ExeName string
	// Fileless reports, for a successful KindExec, that the file run has
	// no link in any file system: a memfd, or a file deleted before it
	// was run. Code run this way never touched a path.
	Fileless bool
	// ReadAtExit reports that Path, NewPath or Addr sat on a page the
	// caller had not touched when the call began, so it was read when the
	// call returned (after the kernel's own copy faulted it in). A thread
	// of the caller could have changed it in between.
	ReadAtExit bool
	// Killed reports, for KindDenied, that the sensor sent the caller
	// SIGKILL: the refused syscall was an escape attempt in a cgroup
	// watched with KillEscapes.
	Killed bool

	Flags  uint32 // open flags; AT_REMOVEDIR for unlink; RENAME_* for rename; AT_* for fchmodat2 and for a failed execveat; SOCK_* for accept4
	Mode   uint32 // open, chmod and mkdir mode; KindMknod: file type and permissions
	Intent Intent // KindOpen

	Family uint16         // KindConnect, KindBind, KindAccept, KindSendto: address family (AF_INET, AF_INET6, AF_UNIX, ...)
	Addr   netip.AddrPort // the destination (connect, sendto), local address (bind) or peer (accept) for AF_INET and AF_INET6
	FD     int            // KindConnect, KindBind, KindListen, KindSendto: the socket; KindAccept: the listening socket (the new one is Result); a change of a file by its descriptor (fchmod, ftruncate, futimens, fchown): the file
	Length int64          // KindTruncate: the new length
	Dev    uint64         // KindMknod: the device number
	// TimesSet reports, for KindUtimes, that the caller gave the times
	// (backdating a file); without them the times are set to now.
	TimesSet bool
	Backlog  int // KindListen: the backlog asked for

	IDs  [3]uint32 // KindSetID: the ids asked for, in argument order; KindChown: uid, gid; NoID where unchanged or absent
	Caps [3]uint64 // KindCapset: effective, permitted, inheritable sets asked for
}
