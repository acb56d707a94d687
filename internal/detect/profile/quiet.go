package profile

import (
	"net/netip"

	"moat.dev/moat/internal/detect"
)

// This file is the one place that says which actions a profile never
// lists, because every function does them and they carry no signal. It
// is written in the profile's own pattern syntax. Nothing here silences
// an exec: every executable is listed.

// quietReads are paths whose reads are never listed.
var quietReads = []string{
	// The function's code and layers, and the runtimes of AWS base
	// images: read-only, and read all the time.
	"/var/task/**", "/opt/**", "/var/runtime/**", "/var/lang/**",
	// The system: libraries, interpreters, data.
	"/usr/**", "/bin/**", "/sbin/**", "/lib/**", "/lib64/**", "/lib32/**", "/libx32/**",
	// The files of /etc that libc, resolvers and TLS stacks read.
	"/etc/ld.so.cache", "/etc/localtime", "/etc/timezone", "/etc/hosts", "/etc/hostname",
	"/etc/resolv.conf", "/etc/nsswitch.conf", "/etc/host.conf", "/etc/gai.conf",
	"/etc/passwd", "/etc/group", "/etc/mime.types", "/etc/os-release",
	"/etc/ssl/**", "/etc/pki/**", "/etc/ca-certificates/**", "/etc/alternatives/**",
	// The root and /tmp directories themselves (getcwd, realpath, listing).
	"/", "/tmp",
	// The harmless devices and the standard streams.
	"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom",
	"/dev/stdin", "/dev/stdout", "/dev/stderr", "/dev/fd/*",
	// The process's own /proc entries (maps, status, fd, cgroup,
	// mountinfo, ...) but see loudReads.
	"/proc/self/**", "/proc/thread-self/**",
	// Whole-system figures runtimes size themselves by.
	"/proc/meminfo", "/proc/cpuinfo", "/proc/stat", "/proc/loadavg", "/proc/uptime",
	"/proc/version", "/proc/filesystems", "/proc/mounts",
	// /proc/sys: only the values runtimes and libc are known to read
	// (kernel release, limits, entropy, overcommit, somaxconn). The rest
	// of /proc/sys/kernel stays listed on purpose: core_pattern, modprobe,
	// yama/ptrace_scope, unprivileged_bpf_disabled and the like are what
	// an escape attempt reads first.
	"/proc/sys/kernel/osrelease", "/proc/sys/kernel/ostype", "/proc/sys/kernel/version",
	"/proc/sys/kernel/hostname", "/proc/sys/kernel/domainname", "/proc/sys/kernel/pid_max",
	"/proc/sys/kernel/threads-max", "/proc/sys/kernel/ngroups_max", "/proc/sys/kernel/cap_last_cap",
	"/proc/sys/kernel/random/boot_id", "/proc/sys/kernel/random/uuid",
	"/proc/sys/kernel/random/entropy_avail", "/proc/sys/kernel/random/poolsize",
	"/proc/sys/vm/overcommit_memory", "/proc/sys/vm/max_map_count",
	"/proc/sys/net/core/somaxconn", "/proc/sys/fs/file-max", "/proc/sys/fs/nr_open",
	// Memory and CPU topology and limits (Go, the JVM, Node, glibc).
	"/sys/kernel/mm/transparent_hugepage/**", "/sys/devices/system/cpu/**", "/sys/fs/cgroup/**",
}

// loudReads are exceptions to quietReads: always listed. A process's
// environment holds its credentials, its memory everything else; root,
// cwd and a directory descriptor under /proc/self lead anywhere in the
// file system, past the quiet list.
var loudReads = []string{
	"/proc/self/environ", "/proc/self/mem", "/proc/self/root/**", "/proc/self/cwd/**", "/proc/self/fd/*/*/**",
	"/proc/self/task/*/environ", "/proc/self/task/*/mem", "/proc/self/task/*/root/**", "/proc/self/task/*/cwd/**",
	"/proc/thread-self/environ", "/proc/thread-self/mem", "/proc/thread-self/root/**", "/proc/thread-self/cwd/**",
	"/proc/thread-self/fd/*/*/**", "/dev/fd/*/*/**",
}

// quietWrites are paths whose writes are never listed: the devices that
// discard or produce data, and the standard streams. Every other write
// counts, in the code and system paths too: they are read-only, so a
// write there is an attempt worth an entry.
var quietWrites = []string{
	"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom",
	"/dev/stdout", "/dev/stderr",
}

// runtimeAPI is where every instance fetches its invocations and posts
// their results (sandbox.RuntimeAPIPort on loopback); it is never listed.
var runtimeAPI = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), 9001)

// Opens that found nothing: a read (without create, write or truncate
// intent) that failed with one of these errnos read nothing, and
// libraries probe for optional files (module search paths, config files)
// at every start. Listing them would make a profile depend on which code
// paths ran while learning. A read refused with EACCES or EPERM is still
// listed: it is an attempt.
var quietErrnos = map[string]bool{"ENOENT": true, "ENOTDIR": true}

var quiet = func() struct{ reads, loud, writes trie } {
	var q struct{ reads, loud, writes trie }
	for _, p := range quietReads {
		q.reads.add(p)
	}
	for _, p := range loudReads {
		q.loud.add(p)
	}
	for _, p := range quietWrites {
		q.writes.add(p)
	}
	return q
}()

// quietRead reports whether a read of the clean absolute path p is never
// listed.
func quietRead(p string) bool {
	return quiet.reads.match(p) && !quiet.loud.match(p)
}

// quietWrite reports whether a write of p is never listed.
func quietWrite(p string) bool { return quiet.writes.match(p) }

// quietOpen reports whether an open is a probe that found nothing.
func quietOpen(ev *detect.Event, write bool) bool {
	return !write && ev.Result < 0 && quietErrnos[ev.Errno]
}
