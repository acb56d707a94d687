package seccomp

import (
	"slices"
	"syscall"

	"golang.org/x/sys/unix"
)

// Default returns the policy every function instance runs under: the
// syscalls a Go, Node.js, Python, Java, .NET, Ruby or shell-and-curl
// runtime makes on x86_64 or arm64, and nothing else. Each call returns a
// fresh copy.
func Default() *Policy { return defaultPolicy.clone() }

// Denied returns, sorted, the syscalls Default refuses that the security
// docs and tests name. All fail with EPERM except clone3, which fails with
// ENOSYS (see [Default]). Syscalls refused only for some arguments (socket,
// clone, personality, ioctl) are not listed.
func Denied() []string {
	names := make([]string, 0, len(defaultPolicy.Refuse))
	for _, r := range defaultPolicy.Refuse {
		names = append(names, r.Name)
	}
	slices.Sort(names)
	return names
}

var defaultPolicy = Policy{
	Allow:  defaultAllow,
	Args:   defaultArgs,
	Refuse: defaultRefuse,
}

// defaultAllow is grouped by concern. Names missing on one architecture
// (the legacy open, stat, fork... on arm64) are skipped there.
//
// Left out on purpose, so refused with EPERM though no doc names them:
// System V IPC (shm*, sem*, msg*) and POSIX message queues (mq_*), Linux
// AIO (io_setup...), vmsplice, NUMA placement (mbind, set_mempolicy...),
// ioprio_*, get_robust_list, set_thread_area, remap_file_pages, cachestat,
// statmount and listmount, and the lsm_* calls. None of the supported
// runtimes makes them; a function that needs one needs a wider policy.
var defaultAllow = []string{
	// Reading and writing descriptors.
	"read", "write", "readv", "writev", "pread64", "pwrite64",
	"preadv", "pwritev", "preadv2", "pwritev2",
	"close", "close_range", "lseek", "dup", "dup2", "dup3", "fcntl",
	"pipe", "pipe2", "sendfile", "splice", "tee", "copy_file_range",
	"fadvise64", "readahead", "flock",
	"fsync", "fdatasync", "sync", "syncfs", "sync_file_range",

	// Paths and metadata.
	"open", "openat", "openat2", "creat",
	"stat", "fstat", "lstat", "newfstatat", "fstatat", "statx", "statfs", "fstatfs",
	"access", "faccessat", "faccessat2", "readlink", "readlinkat",
	"getdents", "getdents64", "getcwd", "chdir", "fchdir",
	"mkdir", "mkdirat", "rmdir", "unlink", "unlinkat",
	"rename", "renameat", "renameat2", "link", "linkat", "symlink", "symlinkat",
	"chmod", "fchmod", "fchmodat", "fchmodat2",
	"chown", "fchown", "lchown", "fchownat", "umask",
	"truncate", "ftruncate", "fallocate",
	"utime", "utimes", "utimensat", "futimesat",
	"mknod", "mknodat", // FIFOs; device nodes need CAP_MKNOD
	"getxattr", "lgetxattr", "fgetxattr", "getxattrat",
	"listxattr", "llistxattr", "flistxattr", "listxattrat",
	"setxattr", "lsetxattr", "fsetxattr", "setxattrat",
	"removexattr", "lremovexattr", "fremovexattr", "removexattrat",
	"inotify_init", "inotify_init1", "inotify_add_watch", "inotify_rm_watch",

	// Waiting for events.
	"poll", "ppoll", "select", "pselect6",
	"epoll_create", "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2",
	"eventfd", "eventfd2", "signalfd", "signalfd4",
	"timerfd_create", "timerfd_settime", "timerfd_gettime",

	// Memory. membarrier: .NET and the JVM; memfd_create: .NET's W^X
	// double mapping; pkey_*: V8.
	"brk", "mmap", "munmap", "mremap", "mprotect", "madvise", "mincore", "msync",
	"mlock", "munlock", "mlock2", "mlockall", "munlockall",
	"membarrier", "memfd_create", "pkey_alloc", "pkey_free", "pkey_mprotect",
	"map_shadow_stack", "mseal",

	// Threads and synchronisation.
	"futex", "futex_waitv", "futex_wake", "futex_wait", "futex_requeue",
	"set_robust_list", "set_tid_address", "rseq", "arch_prctl",
	// The kernel's return-probe trampoline makes this call in any process
	// a uretprobe is attached to; called otherwise it only kills the
	// caller with SIGILL.
	"uretprobe",

	// Processes. clone is decided by its flags (defaultArgs); clone3
	// fails with ENOSYS (defaultRefuse).
	"fork", "vfork", "execve", "execveat", "exit", "exit_group", "wait4", "waitid",
	"kill", "tkill", "tgkill", "pidfd_open", "pidfd_send_signal",
	"getpid", "getppid", "gettid", "getpgid", "getpgrp", "setpgid", "getsid", "setsid",
	"getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid", "getgroups",
	// Without capabilities these can only move between the ids the
	// process already has; refusing them would break code that drops
	// privileges and checks the result.
	"setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid",
	"setfsuid", "setfsgid", "setgroups",
	"capget", "capset", // capset can only drop
	"getrlimit", "setrlimit", "prlimit64", "getrusage", "times",
	"getpriority", "setpriority", "getcpu",
	"sched_yield", "sched_getaffinity", "sched_setaffinity",
	"sched_getparam", "sched_setparam", "sched_getscheduler", "sched_setscheduler",
	"sched_getattr", "sched_setattr", "sched_get_priority_max", "sched_get_priority_min",
	"sched_rr_get_interval",

	// Signals.
	"rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending",
	"rt_sigtimedwait", "rt_sigsuspend", "rt_sigqueueinfo", "rt_tgsigqueueinfo",
	"sigaltstack", "pause", "restart_syscall",

	// Time. Setting clocks is refused (defaultRefuse).
	"nanosleep", "clock_nanosleep", "clock_gettime", "clock_getres",
	"gettimeofday", "time", "getitimer", "setitimer", "alarm",
	"timer_create", "timer_settime", "timer_gettime", "timer_getoverrun", "timer_delete",

	// The system and randomness.
	"uname", "sysinfo", "getrandom",

	// Sockets. socket itself is decided by its family and type
	// (defaultArgs); socketpair only ever makes AF_UNIX pairs.
	"socketpair", "bind", "listen", "accept", "accept4", "connect",
	"getsockname", "getpeername", "setsockopt", "getsockopt",
	"sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg", "shutdown",

	// A runtime restricting itself further: stacking filters and Landlock
	// rulesets can only take rights away.
	"prctl", "seccomp", "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self",
}

// nsCloneFlags are the clone flags that create namespaces. CLONE_NEWTIME
// is not among them: it lies in clone's exit-signal byte, so the kernel
// never reads it from clone (only from clone3, which is refused, and
// unshare, which is refused).
const nsCloneFlags = unix.CLONE_NEWNS | unix.CLONE_NEWCGROUP | unix.CLONE_NEWUTS |
	unix.CLONE_NEWIPC | unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET

// sockTypeMask selects the socket type from socket's second argument,
// without SOCK_NONBLOCK and SOCK_CLOEXEC (the kernel's SOCK_TYPE_MASK).
const sockTypeMask = 0xf

// Personality values: plain Linux, and the query that reads the current
// value without changing it.
const (
	perLinux         = 0
	personalityQuery = 0xffffffff
)

var defaultArgs = []ArgRule{
	{
		// UNIX sockets of any type; TCP and UDP (and ICMP "ping" datagram
		// sockets, which net.ipv4.ping_group_range governs) over IPv4 and
		// IPv6; NETLINK_ROUTE, which glibc's getaddrinfo and
		// if_nameindex and Go's net.Interfaces read. Everything else is
		// refused: raw and packet sockets, other netlink families
		// (audit, sock_diag, netfilter...), AF_ALG, AF_VSOCK...
		Name: "socket",
		Cases: []Case{
			{When: []Cond{ArgIn(0, unix.AF_UNIX)}, Then: Allow()},
			{When: []Cond{
				ArgIn(0, unix.AF_INET, unix.AF_INET6),
				ArgMaskedIn(1, sockTypeMask, unix.SOCK_STREAM, unix.SOCK_DGRAM),
			}, Then: Allow()},
			{When: []Cond{ArgIn(0, unix.AF_NETLINK), ArgIn(2, unix.NETLINK_ROUTE)}, Then: Allow()},
		},
		Else: Fail(syscall.EPERM),
	},
	{
		// Threads and processes, but no new namespaces.
		Name:  "clone",
		Cases: []Case{{When: []Cond{ArgMaskedIn(0, nsCloneFlags, 0)}, Then: Allow()}},
		Else:  Fail(syscall.EPERM),
	},
	{
		// Reading the personality and setting plain Linux; not
		// ADDR_NO_RANDOMIZE and the other flags that weaken the process.
		Name:  "personality",
		Cases: []Case{{When: []Cond{ArgIn(0, perLinux, personalityQuery)}, Then: Allow()}},
		Else:  Fail(syscall.EPERM),
	},
	{
		// Every ioctl but the two that push input into, or reconfigure,
		// a terminal the instance may share.
		Name:  "ioctl",
		Cases: []Case{{When: []Cond{ArgIn(1, unix.TIOCSTI, unix.TIOCLINUX)}, Then: Fail(syscall.EPERM)}},
		Else:  Allow(),
	},
}

var defaultRefuse = []Refusal{
	// glibc (2.34+) tries clone3 first and falls back to clone only on
	// ENOSYS. clone3 takes its flags in memory the filter cannot read, so
	// it is refused and the namespace check happens on clone.
	{Name: "clone3", Errno: syscall.ENOSYS},

	// Other processes and the kernel's view of them.
	{Name: "ptrace"}, {Name: "process_vm_readv"}, {Name: "process_vm_writev"},
	{Name: "process_madvise"}, {Name: "process_mrelease"},
	{Name: "pidfd_getfd"}, {Name: "kcmp"},
	{Name: "move_pages"}, {Name: "migrate_pages"},

	// Namespaces and mounts.
	{Name: "unshare"}, {Name: "setns"},
	{Name: "mount"}, {Name: "umount2"}, {Name: "pivot_root"}, {Name: "chroot"},
	{Name: "mount_setattr"}, {Name: "move_mount"}, {Name: "open_tree"}, {Name: "open_tree_attr"},
	{Name: "fsopen"}, {Name: "fsconfig"}, {Name: "fsmount"}, {Name: "fspick"},
	{Name: "open_by_handle_at"}, {Name: "name_to_handle_at"},

	// Kernel attack surface no runtime needs.
	{Name: "bpf"}, {Name: "perf_event_open"}, {Name: "userfaultfd"},
	{Name: "io_uring_setup"}, {Name: "io_uring_enter"}, {Name: "io_uring_register"},
	{Name: "keyctl"}, {Name: "add_key"}, {Name: "request_key"},
	{Name: "fanotify_init"}, {Name: "lookup_dcookie"}, {Name: "memfd_secret"},
	{Name: "modify_ldt"}, {Name: "iopl"}, {Name: "ioperm"},

	// Administration of the machine.
	{Name: "kexec_load"}, {Name: "kexec_file_load"}, {Name: "reboot"},
	{Name: "init_module"}, {Name: "finit_module"}, {Name: "delete_module"},
	{Name: "create_module"}, {Name: "get_kernel_syms"}, {Name: "query_module"},
	{Name: "swapon"}, {Name: "swapoff"}, {Name: "acct"},
	{Name: "quotactl"}, {Name: "quotactl_fd"}, {Name: "vhangup"}, {Name: "syslog"},
	{Name: "sethostname"}, {Name: "setdomainname"},
	{Name: "settimeofday"}, {Name: "clock_settime"}, {Name: "clock_adjtime"}, {Name: "adjtimex"},
	{Name: "nfsservctl"}, {Name: "_sysctl"}, {Name: "uselib"}, {Name: "ustat"}, {Name: "sysfs"},
}
