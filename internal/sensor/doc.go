// Package sensor owns moat's runtime sensor: the BPF programs (C sources
// in bpf/, and the objects and Go bindings bpf2go generates from them),
// loading and attaching them, the kernel-side filter of watched cgroups,
// the ring buffer they write to, and the decoding of its records into
// typed [Event]s. What to make of an event (profiles, rules, alerts,
// enforcement) belongs to another package; this one only observes.
//
// # What it reports
//
// For the tasks of the cgroups given to [Sensor.Watch] (one cgroup v2
// directory per instance; [CgroupID] turns its path into the id the kernel
// uses), and for nothing else:
//
//   - exec: every successful execve/execveat, with the filename, the first
//     512 bytes of argv and the argument count (Syscall -1, Result 0), and
//     the file the kernel ran: its path (Opened), its own name and whether
//     it has any link (a memfd or a deleted file has none: Fileless); the
//     loader variables of the new environment (LD_PRELOAD,
//     LD_LIBRARY_PATH, LD_AUDIT, and no other variable: Env); a
//     failed one (ENOENT, EACCES, EPERM, ...) with the syscall, the
//     filename, the dirfd and flags (execveat), argv and argc as the caller
//     passed them, and Result -errno. Each exec is reported once: a
//     successful one by sched_process_exec, a failed one at sys_exit;
//   - exit: the last thread of a process exiting, with status or signal;
//   - fork: fork, vfork and clone of a new process (not of a thread), with
//     clone's flags and the child's id as the caller sees it;
//   - connect, bind: the socket, address family, IPv4/IPv6 address and
//     port (or AF_UNIX path) and result;
//   - listen: the socket, backlog and result (no address: that would mean
//     walking the socket's kernel structs; the socket's bind has it);
//   - accept/accept4: the listening socket, flags (accept4), the result
//     (the new socket) and, when the caller passed a buffer for it, the
//     peer's family and address, read at exit once the kernel wrote it;
//   - sendto, sendmsg, sendmmsg that name a destination (sendto's
//     dest_addr, or msg_name of sendmsg's message, or of sendmmsg's first):
//     a datagram, or TCP fast open. The socket, the destination and result
//     (bytes sent; messages sent for sendmmsg). Sends that name none, on a
//     connected socket, are not reported: its connect was;
//   - open (open, creat, openat, openat2): path, flags, mode and the
//     intent they express (read, write, create, trunc), and result; for
//     a successful one, the file opened (Opened);
//   - unlink/rmdir/unlinkat, rename/renameat/renameat2, chmod/fchmodat/
//     fchmodat2/fchmod: paths (fchmod: the descriptor), flags, mode,
//     result;
//   - mkdir/mkdirat, link/linkat, symlink/symlinkat (the target and the
//     link), truncate/ftruncate (the length), utimensat (whether times
//     were given; futimens: the descriptor), mknod/mknodat (mode and
//     device), chown/lchown/fchownat/fchown (the ids): every other change
//     to the file system;
//   - setname: prctl(PR_SET_NAME), the name a thread gives itself;
//   - set*id (setuid, setgid, setreuid, setregid, setresuid, setresgid)
//     and capset: the ids or capability sets asked for, and result;
//   - denied: any syscall the seccomp filter refused with EPERM or EACCES,
//     with its number and errno.
//
// # Where paths are
//
// A path is reported as the caller gave it (Path, NewPath) and placed by
// the kernel's own structures, read at sys_exit: the file a successful
// open opened (the descriptor it returned, looked up in the fd table),
// the file an exec ran (the binprm's), the file a change by descriptor
// changed (Opened), and, for a relative path, the directory it is
// relative to (Dir, NewDir: the dirfd's file, or the working directory).
// Each is walked from its dentry up to the task's root (the instance's
// own, after its pivot), crossing mounts as d_path does, so every symlink
// the kernel followed is followed and "." and ".." are gone. A walk of
// more than 48 steps or 256 bytes is cut (Truncated; the path starts
// with "…/"). The walk reads the dcache without its locks, as every
// tracer does: a rename racing the walk can yield a name from before or
// after it, never memory outside the dentries.
//
// # How
//
// Four BPF_PROG_TYPE_RAW_TRACEPOINT programs: sched_process_exec,
// sched_process_exit, and the raw syscall tracepoints sys_enter and
// sys_exit. (The object holds two exit programs: Load picks the one that
// reads the tracepoint's group_dead argument when the kernel's BTF shows
// it, Linux 6.16 and later, and otherwise the one that reads
// signal->live.) Raw tracepoints, rather than tp_btf or classic tracepoints,
// because they are the kind this project's hosts accept most widely (tp_btf
// and fentry are both BPF_PROG_TYPE_TRACING, and these hosts refuse fentry),
// they need no tracefs, and they cost no record formatting. Kernel structs
// are read with CO-RE relocations (bpf/vmlinux.h, trimmed from the host's
// BTF), so one object runs on every kernel with BTF, task storage, ring
// buffers, bpf_loop and the kfunc bpf_rdonly_cast (6.2 or later). They
// are read by direct loads, not helper calls: through the current task's
// BTF pointer (bpf_get_current_task_btf), or through a pointer cast to
// its kernel type with bpf_rdonly_cast, whose loads the kernel makes
// fault-safe; a helper call is left only for strings, user memory and
// one slot of the fd table. That is what pays for the path walks: the
// cost to a watched open stayed where it was before them, and every
// process on the host pays less at sys_exit (BenchmarkSensorOverhead).
//
// A syscall refused by seccomp never reaches sys_enter but does pass
// sys_exit with its errno. sys_enter therefore marks the syscall in flight
// in the thread's task storage (and, for the syscalls above, copies paths,
// addresses and an exec's argv there, at entry, so that a thread
// rewriting its buffer while the call runs cannot change what is
// reported); sys_exit emits the stashed call with its result (an exec
// only when it failed; accept's peer is read there), or, when nothing was
// marked and the task runs under a seccomp filter, a denied event for
// EPERM or EACCES. Other errnos of skipped calls (moat's filter answers
// clone3 with ENOSYS by design) are not reported. The stash is about
// 2 KiB of task storage per watched thread (an exec's argv and loader
// variables, two paths and their two walks), made at its first syscall
// and freed with the thread. The path walk and the scan of an exec's
// envp run under bpf_loop, so that the verifier checks one step of each
// rather than every iteration.
//
// Every program first looks the current task's cgroup v2 id up in the
// watched hash map and returns at once when it is absent. Records go to
// one BPF ring buffer; a record that does not fit is dropped and counted
// (globally, [Sensor.Dropped], and per cgroup, [Sensor.DroppedFor]).
// Submitting wakes the reader only past a fill threshold; the reader also
// polls every Options.PollInterval, so events arrive within that interval.
//
// The record layouts are fixed-size C structs per kind, decoded with
// encoding/binary by a pure function that checks every length (the bytes
// cross a trust boundary; it is fuzzed). layout_test.go compares the
// decoder's offsets with the Go types bpf2go generates from the C structs.
//
// # What it must never do
//
//   - Never block or slow moat itself: nothing in the kernel ever waits for
//     user space (a full ring drops and counts), and a slow consumer of
//     Events only delays the reader. The cost left for processes that are
//     not watched, moat included, is that of any program on the syscall
//     tracepoints plus one cgroup id and one hash lookup per syscall entry
//     and exit (BenchmarkSensorOverhead measures it).
//   - Never collect anything outside moat's instance cgroups: the filter
//     is the first thing every program does, in the kernel, before any
//     other read.
//   - Never enforce: it observes. Blocking belongs to seccomp, Landlock
//     and the cgroup hooks, decided elsewhere.
//
// # Limits worth knowing
//
//   - Ids (PID, PPID, UID, GID) are those of the initial namespaces.
//   - Path is what the caller's buffer held at syscall entry; a racing
//     thread can still change it between that read and the kernel's own
//     copy. One on a page the caller had not touched cannot be read at
//     entry; it is read at exit instead (ReadAtExit). Opened, Dir and
//     NewDir come from the kernel and cannot be raced that way. A call
//     that failed has no Opened (nothing was opened), only the Dir of a
//     relative path; symlinks in the directories of a path that names
//     no file (an unlink, a mkdir) are not followed.
//   - An exec's loader variables are found by their first eight bytes
//     among at most 128 envp entries and kept up to 256 bytes.
//   - Watch a cgroup before its first task enters it: a task already
//     inside a syscall when its cgroup is watched has no entry mark, so an
//     EPERM from that one call would be reported as denied.
//   - A failed exec's argv is read from the caller's array at entry: at
//     most 512 bytes of strings and 64 pointers counted (Argc stops there,
//     with Truncated; Truncated is also set when the strings fill the 512
//     bytes exactly). A successful exec's argv is the new image's, and its
//     Argc the kernel's count. Every exec pays for that copy at entry,
//     the successful ones included.
//   - Socket addresses are what the caller passed (bind, connect, sends)
//     or what the kernel wrote back (accept), cut at 128 bytes; listen has
//     none. Of a sendmmsg only the first message's destination is
//     reported, and only when that one names one. Sends that name no
//     destination are never reported, whatever the socket.
//   - Exit events come from the last thread to exit; the exit code is that
//     thread's. Before Linux 6.16, two threads exiting at the same instant
//     may both report the exit.
//   - Event.Time is the kernel's CLOCK_BOOTTIME stamp placed on the wall
//     clock as it read at Load; a later step of the wall clock is not
//     followed.
//
// # Regenerating
//
// The generated files (sensor_x86_bpfel.{go,o}, sensor_arm64_bpfel.{go,o})
// are committed, so go build and go test need no clang. After changing
// bpf/, run
//
//	make generate-sensor
//
// (mk/sensor.mk), which runs go generate ./internal/sensor/ and so the
// pinned bpf2go (the tool directive in go.mod) with the flags in gen.go.
// It needs clang-19 and llvm-strip-19 (Debian: apt-get install clang-19
// llvm-19). The output is reproducible: the same compiler gives the same
// bytes, wherever the tree is checked out.
package sensor
