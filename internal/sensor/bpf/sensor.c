// SPDX-License-Identifier: (MIT OR GPL-2.0-only)
//
// moat's runtime sensor: process, file, network, credential and seccomp
// events of moat's instances, and nothing else.
//
// Every program starts with the same test: is the current task's cgroup v2
// id in the watched map? If not, it returns before reading anything else,
// so that the cost for every process that is not a moat instance (moat
// itself included) is one helper call and one hash lookup.
//
// Programs (all BPF_PROG_TYPE_RAW_TRACEPOINT):
//
//   raw_tp/sched_process_exec  a successful execve: filename, argv
//   raw_tp/sched_process_exit  the last thread of a process exits (two
//                              variants; the loader picks one by kernel)
//   raw_tp/sys_enter           marks the syscall in flight for this thread;
//                              for the syscalls of interest, copies the
//                              arguments (paths, socket address, an exec's
//                              argv) into the thread's task storage
//   raw_tp/sys_exit            emits the stashed syscall with its result;
//                              a syscall that exits with EPERM or EACCES
//                              without having entered was refused by the
//                              seccomp filter: emits a "denied" event
//
// Records go to one ring buffer. A failed reservation (the ring is full
// because user space is behind) is counted in a per-CPU counter and in the
// watched cgroup's own entry; nothing ever waits. Submitting does not wake
// the reader until wakeup_bytes are waiting: user space also polls on a
// short interval, so a busy instance costs one wakeup per batch of records
// instead of one per record.
//
// The record layouts below are decoded by decode.go; layout_test.go checks
// the two agree through the Go types bpf2go generates from these structs.

#include "vmlinux.h"
#include "helpers.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define PATH_LEN 256 // bytes of a path kept, NUL included
#define ARGS_LEN 512 // bytes of argv kept (NUL-separated strings)
#define ADDR_LEN 128 // bytes of a socket address kept (sizeof sockaddr_storage)
#define MAX_ARGV 64  // argv pointers a failed exec's capture looks at
#define NAME_LEN 64  // bytes of the exec'd file's own name kept
#define ENV_LEN 256  // bytes of an exec's loader variables kept (LD_PRELOAD=..., NUL-separated)
#define MAX_ENV 128  // envp pointers an exec's capture looks at
#define MAX_DEPTH 48 // steps of a path walk: directories and mount crossings

#define EPERM 1
#define EACCES 13
#define SECCOMP_MODE_FILTER 2
#define AT_FDCWD -100
#define AT_REMOVEDIR 0x200
#define O_WRONLY 01
#define O_CREAT 0100
#define O_TRUNC 01000
#define CLONE_VM 0x100
#define CLONE_VFORK 0x4000
#define CLONE_THREAD 0x10000
#define SIGCHLD 17

enum event_kind {
	EV_EXEC = 1,
	EV_EXIT = 2,
	EV_CONNECT = 3,
	EV_OPEN = 4,
	EV_UNLINK = 5,
	EV_RENAME = 6,
	EV_CHMOD = 7,
	EV_SETID = 8,
	EV_CAPSET = 9,
	EV_DENIED = 10,
	// A failed execve/execveat (an exec_failed_event). Decoded as an exec
	// with a negative result; successful execs come from
	// sched_process_exec.
	EV_EXEC_FAILED = 11,
	EV_BIND = 12,   // a sys_event_path: args = fd, addrlen; buf1 = the sockaddr
	EV_LISTEN = 13, // a sys_event_path: args = fd, backlog
	EV_ACCEPT = 14, // a sys_event_path: args = fd, flags; buf1 = the peer, when asked for
	EV_SENDTO = 15, // a sys_event_path: args = fd, addrlen, length; buf1 = the destination
	// File-system changes beyond open, unlink, rename and chmod.
	EV_MKDIR = 16,    // a sys_event_path: args = dirfd, mode
	EV_LINK = 17,     // a sys_event_path2: args = old dirfd, new dirfd, flags; buf1 = old, buf2 = new
	EV_SYMLINK = 18,  // a sys_event_path2: args = new dirfd; buf1 = the target, buf2 = the link
	EV_TRUNCATE = 19, // a sys_event_path: args = dirfd (truncate) or fd (ftruncate), length, 1 if fd
	EV_UTIMES = 20,   // a sys_event_path: args = dirfd or fd, flags, 1 if times given, 1 if fd
	EV_MKNOD = 21,    // a sys_event_path: args = dirfd, mode, dev
	EV_CHOWN = 22,    // a sys_event_path: args = dirfd or fd, uid, gid, flags | 1 << 32 if fd
	EV_SETNAME = 23,  // prctl(PR_SET_NAME): a sys_event_path; buf1 = the new name
	EV_FORK = 24,     // fork, vfork, clone of a process (not a thread): a sys_event; args = clone flags
};

// event_hdr.flags
enum {
	EF_TRUNC1 = 1, // filename / buf1 was cut at its bound
	EF_TRUNC2 = 2, // argv / buf2 was cut at its bound
	EF_FAULT1 = 4, // filename / buf1 could not be read
	EF_FAULT2 = 8, // argv / buf2 could not be read
	EF_KILLED = 16, // denied: the caller was sent SIGKILL (an escape attempt)
	EF_LATE = 32,   // filename / buf1 / buf2 faulted at entry and was read at exit
	EF_FILELESS = 64, // exec: the file run has no link in any file system (memfd, deleted)
};

// What a where buffer holds: the components of a path the kernel walked
// from a dentry up to the caller's root, the last one first, each
// NUL-terminated (the root itself: no component). Set in *_info.
enum {
	WI_FILE = 1,  // the file itself (an open's result, the file an exec ran, a descriptor's file)
	WI_DIR = 2,   // the directory a relative path is relative to (its dirfd, or the working directory)
	WI_TRUNC = 4, // the walk stopped short (depth or bytes): the components nearest the root are missing
};

// exec env_info
enum {
	EI_TRUNC = 1, // more loader variables than fit, or more than MAX_ENV pointers
	EI_FAULT = 2, // envp or one of its strings could not be read
};

struct event_hdr {
	__u8 kind;
	__u8 flags;
	__u16 _pad0;
	__u32 pid;  // thread group id, in the initial pid namespace
	__u32 tid;  // thread id
	__u32 ppid; // real parent's thread group id
	__u32 uid;  // in the initial user namespace
	__u32 gid;
	__u64 time_ns; // CLOCK_BOOTTIME
	__u64 cgroup_id;
	char comm[16];
	__s32 nr; // syscall number, -1 for exec and exit
	__u32 _pad1;
};

struct exec_event {
	struct event_hdr hdr;
	__u32 argc;         // argument count of the execve
	__u32 args_len;     // bytes of args filled
	__u32 filename_len; // bytes of filename filled, NUL included
	__u32 _pad;
	char filename[PATH_LEN];
	char args[ARGS_LEN];
	__u32 nlink;    // links of the file run (0: memfd or deleted)
	__u32 name_len; // bytes of name filled, NUL included
	char name[NAME_LEN]; // the file's own name (its dentry), e.g. "memfd:x" for a memfd
	__u16 where_len;    // bytes of where filled
	__u8 where_info;    // WI_* (WI_FILE: the file run)
	__u8 env_info;      // EI_*
	__u32 env_len;      // bytes of env filled
	char where[PATH_LEN]; // the file run, walked to the root
	char env[ENV_LEN];    // the loader variables of envp (LD_PRELOAD=..., LD_LIBRARY_PATH=..., LD_AUDIT=...)
};

struct exit_event {
	struct event_hdr hdr;
	__s32 exit_code; // task->exit_code: status << 8 | signal
	__u32 _pad;
};

// A syscall with its result. args depend on the kind (decode.go says
// which); buf1 and buf2 follow in the larger records.
struct sys_event {
	struct event_hdr hdr;
	__s64 ret;
	__u64 args[4];
	__u32 len1; // bytes of buf1 filled (strings: NUL included)
	__u32 len2;
	__u16 where_len1; // bytes of where1 filled
	__u16 where_len2;
	__u8 where_info1; // WI_* of where1: the file buf1 names, or its directory
	__u8 where_info2; // and of where2, for buf2
	__u16 _pad2;
};

struct sys_event_path {
	struct sys_event sys;
	__u8 buf1[PATH_LEN];
	__u8 where1[PATH_LEN];
};

struct sys_event_path2 {
	struct sys_event sys;
	__u8 buf1[PATH_LEN];
	__u8 buf2[PATH_LEN];
	__u8 where1[PATH_LEN];
	__u8 where2[PATH_LEN];
};

// A failed execve/execveat: what the caller passed, copied at sys_enter.
// sys.args = dirfd, flags (execveat; AT_FDCWD and 0 for execve), argc
// (the argv pointers counted, at most MAX_ARGV); sys.len1 = bytes of
// filename filled (NUL included), sys.len2 = bytes of args filled.
struct exec_failed_event {
	struct sys_event sys;
	char filename[PATH_LEN];
	char args[ARGS_LEN]; // NUL-terminated strings, one after the other
	__u32 env_len;
	__u32 env_info;
	char where1[PATH_LEN]; // the directory a relative filename is relative to
	char env[ENV_LEN];
};

struct denied_event {
	struct event_hdr hdr;
	__s64 ret; // -errno
};

// What sys_enter leaves for sys_exit, per thread.
struct task_state {
	__u32 inflight; // syscall number + 1 between sys_enter and sys_exit
	__u8 kind;      // event kind of the stashed syscall, 0 for none
	__u8 flags;     // EF_* of the stashed buffers
	__u16 _pad;
	__u64 args[4];
	__u32 len1;
	__u32 len2;
	// The user addresses buf1 and buf2 were copied from, for a second read
	// at exit when the first faulted; sock1: buf1 is a socket address of
	// args[1] bytes, not a string.
	__u64 uptr1;
	__u64 uptr2;
	__u32 sock1;
	__u32 env_len;  // bytes of env filled
	__u16 where_len1;
	__u16 where_len2;
	__u8 where_info1;
	__u8 where_info2;
	__u8 env_info;
	__u8 _pad3;
	// The buffers written at a variable offset come first: the verifier
	// bounds such a copy by the end of the whole value, and what follows
	// each is the slack that bound needs (the copies themselves never
	// pass the end of their own buffer).
	__u8 where1[PATH_LEN];
	__u8 where2[PATH_LEN];
	__u8 env[ENV_LEN];
	__u8 argv[ARGS_LEN]; // an exec's argv
	__u8 buf1[PATH_LEN];
	__u8 buf2[PATH_LEN];
};

// Value of the watched map.
struct watch {
	__u64 dropped; // records of this cgroup lost to a full ring
	__u32 flags;    // WATCH_*
	__u32 refusals; // calls a wall refused (see count_refusal)
};

// watch.flags
enum {
	// A process of the cgroup whose escape attempt (a syscall marked in
	// the escapes map) the seccomp filter refused is killed on the spot.
	WATCH_KILL_ESCAPES = 1,
};

#define MAX_SYSCALL_NR 1024
#define SIGKILL 9

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20); // set by the loader
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096); // set by the loader
	__type(key, __u64);        // cgroup v2 id
	__type(value, struct watch);
} watched SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

// untraced[nr] is 1 for the syscalls the sensor neither reports nor can
// see refused: those the instances' seccomp filter allows with any
// arguments (read, write, futex, epoll, mmap: most of what any process
// does). Their calls, by any process on the host, return at the first
// test, before the cgroup lookup. Set by the loader; all 0 (every
// syscall traced) unless it was told the filter.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_SYSCALL_NR);
	__type(key, __u32);
	__type(value, __u8);
} untraced_nr SEC(".maps");

static __always_inline int untraced(long nr)
{
	if (nr < 0 || nr >= MAX_SYSCALL_NR)
		return 0;
	__u32 k = nr;
	__u8 *u = bpf_map_lookup_elem(&untraced_nr, &k);
	return u && *u;
}

// escapes[nr] is 1 for the syscalls whose refusal by the seccomp filter is
// an escape attempt (ptrace, mount, bpf, ...); set by the loader.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_SYSCALL_NR);
	__type(key, __u32);
	__type(value, __u8);
} escapes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct task_state);
} tasks SEC(".maps");

// Set by the loader before the programs are loaded.
volatile const __u64 wakeup_bytes = 64 << 10;

// Never used by a program: they put the record types into the object's BTF,
// from which bpf2go generates the Go types that layout_test.go compares with
// the decoder's offsets. The loader never creates their .bss map.
const struct exec_event *unused_exec_event __attribute__((unused));
const struct exec_failed_event *unused_exec_failed_event __attribute__((unused));
const struct exit_event *unused_exit_event __attribute__((unused));
const struct sys_event_path2 *unused_sys_event_path2 __attribute__((unused));
const struct sys_event_path *unused_sys_event_path __attribute__((unused));
const struct denied_event *unused_denied_event __attribute__((unused));
const enum event_kind *unused_event_kind __attribute__((unused));

// Syscall numbers: the sensor is built once per architecture.
#if defined(__TARGET_ARCH_x86)
#define NR_open 2
#define NR_connect 42
#define NR_execve 59
#define NR_execveat 322
#define NR_accept 43
#define NR_sendto 44
#define NR_sendmsg 46
#define NR_bind 49
#define NR_listen 50
#define NR_accept4 288
#define NR_sendmmsg 307
#define NR_rename 82
#define NR_rmdir 84
#define NR_creat 85
#define NR_unlink 87
#define NR_chmod 90
#define NR_setuid 105
#define NR_setgid 106
#define NR_setreuid 113
#define NR_setregid 114
#define NR_setresuid 117
#define NR_setresgid 119
#define NR_capset 126
#define NR_openat 257
#define NR_unlinkat 263
#define NR_renameat 264
#define NR_fchmodat 268
#define NR_renameat2 316
#define NR_openat2 437
#define NR_fchmodat2 452
#define NR_mkdir 83
#define NR_mkdirat 258
#define NR_link 86
#define NR_linkat 265
#define NR_symlink 88
#define NR_symlinkat 266
#define NR_truncate 76
#define NR_ftruncate 77
#define NR_utimensat 280
#define NR_mknod 133
#define NR_mknodat 259
#define NR_chown 92
#define NR_fchown 93
#define NR_lchown 94
#define NR_fchownat 260
#define NR_fchmod 91
#define NR_prctl 157
#define NR_clone 56
#define NR_fork 57
#define NR_vfork 58
#define SC_ARG0(r) (&(r)->di)
#define SC_ARG1(r) (&(r)->si)
#define SC_ARG2(r) (&(r)->dx)
#define SC_ARG3(r) (&(r)->r10)
#define SC_ARG4(r) (&(r)->r8)
#define SC_ARG5(r) (&(r)->r9)
#define SC_NR(r) (&(r)->orig_ax)
#elif defined(__TARGET_ARCH_arm64)
#define NR_execve 221
#define NR_execveat 281
#define NR_bind 200
#define NR_listen 201
#define NR_accept 202
#define NR_sendto 206
#define NR_sendmsg 211
#define NR_accept4 242
#define NR_sendmmsg 269
#define NR_connect 203
#define NR_setregid 143
#define NR_setgid 144
#define NR_setreuid 145
#define NR_setuid 146
#define NR_setresuid 147
#define NR_setresgid 149
#define NR_capset 91
#define NR_unlinkat 35
#define NR_renameat 38
#define NR_fchmodat 53
#define NR_openat 56
#define NR_renameat2 276
#define NR_openat2 437
#define NR_fchmodat2 452
#define NR_mkdirat 34
#define NR_linkat 37
#define NR_symlinkat 36
#define NR_truncate 45
#define NR_ftruncate 46
#define NR_utimensat 88
#define NR_mknodat 33
#define NR_fchown 55
#define NR_fchownat 54
#define NR_fchmod 52
#define NR_prctl 167
#define NR_clone 220
#define SC_ARG0(r) (&(r)->regs[0])
#define SC_ARG1(r) (&(r)->regs[1])
#define SC_ARG2(r) (&(r)->regs[2])
#define SC_ARG3(r) (&(r)->regs[3])
#define SC_ARG4(r) (&(r)->regs[4])
#define SC_ARG5(r) (&(r)->regs[5])
#define SC_NR(r) (&(r)->syscallno)
#endif

static __always_inline __u64 wakeup_flag(void)
{
	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

static __always_inline struct watch *watched_current(__u64 *cg)
{
	*cg = bpf_get_current_cgroup_id();
	return bpf_map_lookup_elem(&watched, cg);
}

static __always_inline void count_drop(struct watch *w)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&drops, &zero);
	if (n)
		__sync_fetch_and_add(n, 1); // a preempted program may share the CPU
	__sync_fetch_and_add(&w->dropped, 1);
}

static __always_inline void fill_hdr(struct event_hdr *h, __u8 kind, __u8 flags, __u64 cg, __s32 nr)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 uid_gid = bpf_get_current_uid_gid();
	struct task_struct *task = bpf_get_current_task_btf();
	struct task_struct *parent = task->real_parent;
	__u32 ppid = parent ? parent->tgid : 0;

	h->kind = kind;
	h->flags = flags;
	h->_pad0 = 0;
	h->pid = pid_tgid >> 32;
	h->tid = (__u32)pid_tgid;
	h->ppid = ppid;
	h->uid = (__u32)uid_gid;
	h->gid = uid_gid >> 32;
	h->time_ns = bpf_ktime_get_boot_ns();
	h->cgroup_id = cg;
	bpf_get_current_comm(h->comm, sizeof(h->comm));
	h->nr = nr;
	h->_pad1 = 0;
}

// The kernel walks: a path from a dentry up to the caller's root, and a
// descriptor to its file. Both read only kernel memory (the dcache and
// the fd table under RCU, which the program runs in), so nothing here can
// fault the way a user buffer can.

// A walk in progress (the context of walk_step, run by bpf_loop so
// that the verifier checks one step, not every depth). The pointers are
// kept as numbers: each step casts the one it reads.
struct walk_ctx {
	__u8 *buf;
	__u64 dentry;
	__u64 mnt; // the struct mount of the current vfsmount
	__u64 mnt_root;
	__u64 root_d;
	__u64 root_m; // the root's vfsmount
	__u32 off;
	int done;
};

// offsetof(struct mount, mnt), relocated against the running kernel
#define MNT_OFFSET __builtin_preserve_field_info(((struct mount *)0)->mnt, 0)

static long walk_step(__u64 i, void *data)
{
	struct walk_ctx *w = data;
	struct dentry *dentry = CAST(struct dentry, w->dentry);
	struct mount *mnt = CAST(struct mount, w->mnt);

	if (w->dentry == w->root_d && w->mnt + MNT_OFFSET == w->root_m) {
		w->done = 1;
		return 1;
	}
	if (w->dentry == w->mnt_root) {
		struct mount *parent = mnt->mnt_parent;
		if (!parent || parent == mnt) {
			w->done = 1; // the top of this mount tree
			return 1;
		}
		w->dentry = (__u64)mnt->mnt_mountpoint;
		w->mnt = (__u64)parent;
		w->mnt_root = (__u64)parent->mnt.mnt_root;
		return 0;
	}
	struct dentry *up = dentry->d_parent;
	const unsigned char *name = dentry->d_name.name;
	__u32 off = w->off;
	if (off >= PATH_LEN || !name)
		return 1;
	// The check above bounds off for the verifier; the size keeps the
	// copy inside buf.
	long n = bpf_probe_read_kernel_str(&w->buf[off & (PATH_LEN - 1)], PATH_LEN - off, name);
	if (n <= 0 || n == PATH_LEN - off)
		return 1; // unreadable, or cut: the walk is incomplete
	w->off = off + n;
	if (!up || (__u64)up == w->dentry) {
		w->done = 1; // the root of a file system mounted nowhere
		return 1;
	}
	w->dentry = (__u64)up;
	return 0;
}

// walk writes the path of (dentry, vfsmnt) into buf (a where buffer of
// the task state, PATH_LEN bytes) as its components, the last one first,
// each NUL-terminated, stopping at the current task's root (the
// instance's, after its pivot), and returns the bytes written; *info
// gets WI_TRUNC when it stopped short. A mount root is crossed to where
// it is mounted, as d_path does; the top of a mount tree that is not the
// caller's root (a pseudo file system: memfd, pipe) ends the walk with
// what was found. The kernel's structs are read directly (typed by
// bpf_rdonly_cast, each load fault-safe) and only the names with a
// helper: one helper call a component.
static __always_inline __u32 walk(__u8 *buf, struct dentry *dentry, struct vfsmount *vfsmnt, __u8 *info)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct walk_ctx w = {.buf = buf, .dentry = (__u64)dentry};

	if (!dentry || !vfsmnt) {
		*info |= WI_TRUNC;
		return 0;
	}
	struct fs_struct *fs = task->fs;
	if (fs) {
		w.root_d = (__u64)fs->root.dentry;
		w.root_m = (__u64)fs->root.mnt;
	}
	w.mnt = (__u64)vfsmnt - MNT_OFFSET;
	w.mnt_root = (__u64)CAST(struct vfsmount, vfsmnt)->mnt_root;
	bpf_loop(MAX_DEPTH, walk_step, &w, 0);
	if (!w.done)
		*info |= WI_TRUNC;
	return w.off;
}

// fd_file is the current task's open file of descriptor fd, or NULL.
static __always_inline struct file *fd_file(long fd)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct file *f = 0;

	if (fd < 0)
		return 0;
	struct files_struct *files = task->files;
	if (!files)
		return 0;
	struct fdtable *fdt = files->fdt;
	if (!fdt || fd >= fdt->max_fds)
		return 0;
	__u64 arr = (__u64)fdt->fd;
	if (!arr)
		return 0;
	bpf_probe_read_kernel(&f, sizeof(f), (void *)(arr + fd * sizeof(f)));
	return f;
}

// walk_file walks the path of file f into buf.
static __always_inline __u32 walk_file(__u8 *buf, struct file *f, __u8 *info)
{
	if (!f) {
		*info |= WI_TRUNC;
		return 0;
	}
	struct file *file = CAST(struct file, f);
	return walk(buf, file->f_path.dentry, file->f_path.mnt, info);
}

// locate fills a where buffer for a path argument: the file of
// descriptor fd itself (WI_FILE) when asked, or when the path is empty
// (AT_EMPTY_PATH); for a relative path, the directory it is relative to
// (WI_DIR): fd's, or the working directory for AT_FDCWD. An absolute
// path needs nothing.
static __always_inline __u32 locate(__u8 *buf, const __u8 *path, __u32 len, long fd, int file, __u8 *info)
{
	*info = 0;
	if (!file) {
		if (len == 0 || path[0] == '/')
			return 0; // unread, or absolute
		file = len == 1; // "": the descriptor itself
	}
	if (file) {
		*info = WI_FILE;
		return walk_file(buf, fd_file(fd), info);
	}
	*info = WI_DIR;
	if ((int)fd != AT_FDCWD)
		return walk_file(buf, fd_file(fd), info);
	struct task_struct *task = bpf_get_current_task_btf();
	struct fs_struct *fs = task->fs;
	if (!fs) {
		*info |= WI_TRUNC;
		return 0;
	}
	return walk(buf, fs->pwd.dentry, fs->pwd.mnt, info);
}

// The first eight bytes of the loader variables an exec's capture keeps,
// little-endian (both targets are).
#define HEAD8(a, b, c, d, e, f, g, h)                                                                 \
	((__u64)(a) | (__u64)(b) << 8 | (__u64)(c) << 16 | (__u64)(d) << 24 | (__u64)(e) << 32 |      \
	 (__u64)(f) << 40 | (__u64)(g) << 48 | (__u64)(h) << 56)
#define LD_PRELO HEAD8('L', 'D', '_', 'P', 'R', 'E', 'L', 'O')
#define LD_LIBRA HEAD8('L', 'D', '_', 'L', 'I', 'B', 'R', 'A')
#define LD_AUDIT HEAD8('L', 'D', '_', 'A', 'U', 'D', 'I', 'T')

// An exec's loader variables being copied (the context of env_step).
struct env_ctx {
	struct task_state *st;
	__u64 uenvp;
	__u32 off;
	__u8 flags;
	__u8 ended;
};

static long env_step(__u64 i, void *data)
{
	struct env_ctx *c = data;
	__u64 p = 0, head = 0;

	if (bpf_probe_read_user(&p, sizeof(p), (const void *)(c->uenvp + i * sizeof(p))) < 0) {
		c->flags |= EI_FAULT;
		c->ended = 1;
		return 1;
	}
	if (!p) {
		c->ended = 1;
		return 1;
	}
	// A string shorter than eight bytes at the very end of a mapping
	// cannot be read this way; it names none of these.
	if (bpf_probe_read_user(&head, sizeof(head), (const void *)p) < 0)
		return 0;
	if (head != LD_PRELO && head != LD_LIBRA && head != LD_AUDIT)
		return 0;
	__u32 off = c->off;
	if (off >= ENV_LEN) {
		c->flags |= EI_TRUNC;
		return 0;
	}
	long n = bpf_probe_read_user_str(&c->st->env[off & (ENV_LEN - 1)], ENV_LEN - off, (const void *)p);
	if (n < 0) {
		c->flags |= EI_FAULT;
		return 0;
	}
	if (n == ENV_LEN - off)
		c->flags |= EI_TRUNC;
	c->off = off + n;
	return 0;
}

// read_env copies, from a user envp array, the strings that set the
// dynamic loader's preload, library path or audit modules (the name's
// first eight bytes are compared here, the rest in user space) into
// st->env, NUL-separated, up to ENV_LEN bytes. Every other variable is
// left where it is: the environment holds the function's secrets.
static __always_inline void read_env(struct task_state *st, __u64 uenvp)
{
	struct env_ctx c = {.st = st, .uenvp = uenvp, .ended = !uenvp};
	if (uenvp)
		bpf_loop(MAX_ENV, env_step, &c, 0);
	if (!c.ended)
		c.flags |= EI_TRUNC; // MAX_ENV entries and no end yet
	st->env_info = c.flags;
	st->env_len = c.off;
}

SEC("raw_tp/sched_process_exec")
int sched_process_exec(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 cg;
	struct watch *w = watched_current(&cg);
	if (!w)
		return 0;

	// TP_PROTO(struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
	// (p is current)
	struct task_struct *task = bpf_get_current_task_btf();
	struct linux_binprm *bprm = CAST(struct linux_binprm, ctx->args[2]);

	struct exec_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_drop(w);
		return 0;
	}
	__u8 flags = 0;

	const char *filename = bprm->filename;
	long n = bpf_probe_read_kernel_str(e->filename, PATH_LEN, filename);
	if (n < 0) {
		n = 0;
		flags |= EF_FAULT1;
	} else if (n == PATH_LEN) {
		flags |= EF_TRUNC1;
	}
	e->filename_len = n;

	e->argc = bprm->argc;

	// The new image's argv: NUL-separated strings between arg_start and
	// arg_end of the new mm, set up before this tracepoint fires.
	struct mm_struct *mm = task->mm;
	unsigned long start = 0, end = 0;
	if (mm) {
		start = mm->arg_start;
		end = mm->arg_end;
	}
	__u64 len = end - start;
	if (end < start)
		len = 0;
	if (len > ARGS_LEN) {
		len = ARGS_LEN;
		flags |= EF_TRUNC2;
	}
	if (len > 0 && bpf_probe_read_user(e->args, len, (void *)start) < 0) {
		len = 0;
		flags |= EF_FAULT2;
	}
	e->args_len = len;
	e->_pad = 0;

	// The file run, as the kernel opened it: for an exec of a descriptor
	// (execveat with AT_EMPTY_PATH, fexecve) the filename is only
	// "/dev/fd/N", and a memfd or a deleted file has no path at all, but
	// its inode has no link.
	struct file *file = bprm->file;
	struct dentry *dentry = 0;
	struct inode *inode = 0;
	const unsigned char *name = 0;
	unsigned int nlink = 1;
	if (file) {
		inode = file->f_inode;
		dentry = file->f_path.dentry;
	}
	if (inode)
		nlink = inode->i_nlink;
	if (dentry)
		name = dentry->d_name.name;
	e->nlink = nlink;
	e->name_len = 0;
	if (name) {
		long m = bpf_probe_read_kernel_str(e->name, NAME_LEN, name);
		if (m > 0)
			e->name_len = m;
	}
	if (nlink == 0)
		flags |= EF_FILELESS;

	// Where the file run is (symlinks followed: the file the kernel
	// opened), and the loader variables its caller's envp set, stashed
	// by sys_enter of the execve.
	e->where_len = 0;
	e->where_info = 0;
	e->env_len = 0;
	e->env_info = 0;
	struct task_state *st = bpf_task_storage_get(&tasks, bpf_get_current_task_btf(), 0,
						     BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (st) {
		__u8 winfo = WI_FILE;
		e->where_len = walk_file(st->where1, file, &winfo);
		e->where_info = winfo;
		bpf_probe_read_kernel(e->where, PATH_LEN, st->where1);
		if (st->inflight == NR_execve + 1 || st->inflight == NR_execveat + 1) {
			__u32 elen = st->env_len;
			if (elen > ENV_LEN)
				elen = ENV_LEN;
			e->env_len = elen;
			e->env_info = st->env_info;
			bpf_probe_read_kernel(e->env, ENV_LEN, st->env);
		}
	}

	fill_hdr(&e->hdr, EV_EXEC, flags, cg, -1);
	bpf_ringbuf_submit(e, wakeup_flag());
	return 0;
}

static __always_inline void emit_exit(struct watch *w, __u64 cg)
{
	int code = bpf_get_current_task_btf()->exit_code;

	struct exit_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_drop(w);
		return;
	}
	fill_hdr(&e->hdr, EV_EXIT, 0, cg, -1);
	e->exit_code = code;
	e->_pad = 0;
	bpf_ringbuf_submit(e, wakeup_flag());
}

// Since Linux 6.16 the tracepoint says whether the thread group died:
// TP_PROTO(struct task_struct *p, bool group_dead). The loader picks this
// program when the kernel's BTF shows that argument.
SEC("raw_tp/sched_process_exit")
int sched_process_exit_gd(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 cg;
	struct watch *w = watched_current(&cg);
	if (!w)
		return 0;
	if (!(ctx->args[1] & 0xff))
		return 0;
	emit_exit(w, cg);
	return 0;
}

// Before 6.16: TP_PROTO(struct task_struct *p). do_exit takes the thread
// off signal->live before the tracepoint fires, so the last thread sees 0
// (two threads exiting at the same instant may both see it).
SEC("raw_tp/sched_process_exit")
int sched_process_exit(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 cg;
	struct watch *w = watched_current(&cg);
	if (!w)
		return 0;

	struct signal_struct *sig = bpf_get_current_task_btf()->signal;
	int live = sig ? sig->live.counter : 1;
	if (live != 0)
		return 0;
	emit_exit(w, cg);
	return 0;
}

// read_str copies a user string into buf (PATH_LEN bytes) and returns its
// length with the NUL, or 0 with a fault flag.
static __always_inline __u32 read_str(__u8 *buf, __u64 uptr, __u8 *flags, __u8 trunc, __u8 fault)
{
	long n = bpf_probe_read_user_str(buf, PATH_LEN, (const void *)uptr);
	if (n < 0) {
		*flags |= fault;
		return 0;
	}
	if (n == PATH_LEN)
		*flags |= trunc;
	return n;
}

// path1 and path2 copy the string at user address u into buf1 or buf2,
// and keep u for a second read at exit should this one fault.
static __always_inline void path1(struct task_state *st, __u64 u, __u8 *flags)
{
	st->uptr1 = u;
	st->len1 = read_str(st->buf1, u, flags, EF_TRUNC1, EF_FAULT1);
}

static __always_inline void path2(struct task_state *st, __u64 u, __u8 *flags)
{
	st->uptr2 = u;
	st->len2 = read_str(st->buf2, u, flags, EF_TRUNC2, EF_FAULT2);
}

// read_sockaddr copies a user socket address of len bytes (at most
// ADDR_LEN) into buf, stores len in *lenp and returns the bytes copied.
static __always_inline __u32 read_sockaddr(__u8 *buf, __u64 uptr, __u64 len, __u64 *lenp, __u8 *flags)
{
	*lenp = len;
	if (len > ADDR_LEN) {
		len = ADDR_LEN;
		*flags |= EF_TRUNC1;
	}
	if (len > 0 && bpf_probe_read_user(buf, len, (const void *)uptr) < 0) {
		*flags |= EF_FAULT1;
		return 0;
	}
	return len;
}

// read_argv copies the strings of a user argv array (NULL-terminated, or
// NULL itself) into st->argv, one after the other with their NULs, up to
// ARGS_LEN bytes, and counts them up to MAX_ARGV. It sets len2 and
// args[2] (argc); EF_TRUNC2 when argv did not fit (or fit exactly) or had
// more than MAX_ARGV entries; EF_FAULT2 when a pointer or a string could
// not be read, which ends the copy there.
static __always_inline void read_argv(struct task_state *st, __u64 uargv, __u8 *flags)
{
	__u32 off = 0, argc = 0;
	__u8 f = 0;
	int ended = !uargv;
	int i;

#pragma clang loop unroll(disable)
	for (i = 0; i < MAX_ARGV && !ended; i++) {
		__u64 p = 0;
		if (bpf_probe_read_user(&p, sizeof(p), (const void *)(uargv + i * sizeof(p))) < 0) {
			f |= EF_FAULT2;
			ended = 1;
			break;
		}
		if (!p) {
			ended = 1;
			break;
		}
		argc++;
		if (off >= ARGS_LEN) {
			f |= EF_TRUNC2;
			continue;
		}
		// The check above bounds off for the verifier; the size keeps
		// the copy inside argv.
		off &= ARGS_LEN - 1;
		long n = bpf_probe_read_user_str(&st->argv[off], ARGS_LEN - off, (const void *)p);
		if (n < 0) {
			f |= EF_FAULT2;
			ended = 1;
			break;
		}
		if (n == ARGS_LEN - off)
			f |= EF_TRUNC2; // cut, or an exact fit
		off += n;
	}
	if (!ended)
		f |= EF_TRUNC2; // MAX_ARGV entries and no end yet
	*flags |= f;
	st->args[2] = argc;
	st->len2 = off;
}

// stash records the arguments of the syscalls the sensor reports. Paths
// and addresses are copied here, at entry, so that a thread rewriting the
// buffer while the call runs cannot change what is reported afterwards.
static __always_inline void stash(struct task_state *st, struct pt_regs *regs, long nr)
{
	__u64 a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0;
	__u8 kind = 0, flags = 0;

	switch (nr) {
#ifdef NR_open
	case NR_open:
	case NR_creat:
	case NR_unlink:
	case NR_rmdir:
	case NR_rename:
	case NR_chmod:
	case NR_mkdir:
	case NR_link:
	case NR_symlink:
	case NR_mknod:
	case NR_chown:
	case NR_lchown:
	case NR_fork:
	case NR_vfork:
#endif
	case NR_clone:
	case NR_mkdirat:
	case NR_linkat:
	case NR_symlinkat:
	case NR_truncate:
	case NR_ftruncate:
	case NR_utimensat:
	case NR_mknodat:
	case NR_fchown:
	case NR_fchownat:
	case NR_fchmod:
	case NR_prctl:
	case NR_execve:
	case NR_execveat:
	case NR_bind:
	case NR_listen:
	case NR_accept:
	case NR_accept4:
	case NR_sendto:
	case NR_sendmsg:
	case NR_sendmmsg:
	case NR_openat:
	case NR_openat2:
	case NR_connect:
	case NR_unlinkat:
	case NR_renameat:
	case NR_renameat2:
	case NR_fchmodat:
	case NR_fchmodat2:
	case NR_setuid:
	case NR_setgid:
	case NR_setreuid:
	case NR_setregid:
	case NR_setresuid:
	case NR_setresgid:
	case NR_capset:
		break;
	default:
		return;
	}
	struct pt_regs *r = CAST(struct pt_regs, regs);
	a0 = *SC_ARG0(r);
	a1 = *SC_ARG1(r);
	a2 = *SC_ARG2(r);
	a3 = *SC_ARG3(r);
	a4 = *SC_ARG4(r);
	a5 = *SC_ARG5(r);

	st->len1 = 0;
	st->len2 = 0;
	st->uptr1 = 0;
	st->uptr2 = 0;
	st->sock1 = 0;
	st->env_len = 0;
	st->env_info = 0;
	st->args[0] = 0;
	st->args[1] = 0;
	st->args[2] = 0;
	st->args[3] = 0;

	switch (nr) {
	// EV_OPEN: args = dirfd, flags, mode, resolve (openat2)
#ifdef NR_open
	case NR_open:
		kind = EV_OPEN;
		st->args[0] = AT_FDCWD;
		st->args[1] = a1;
		st->args[2] = a2;
		path1(st, a0, &flags);
		break;
	case NR_creat:
		kind = EV_OPEN;
		st->args[0] = AT_FDCWD;
		st->args[1] = O_CREAT | O_WRONLY | O_TRUNC;
		st->args[2] = a1;
		path1(st, a0, &flags);
		break;
#endif
	case NR_openat:
		kind = EV_OPEN;
		st->args[0] = a0;
		st->args[1] = a2;
		st->args[2] = a3;
		path1(st, a1, &flags);
		break;
	case NR_openat2: {
		// struct open_how { __u64 flags; __u64 mode; __u64 resolve; }
		__u64 how[3] = {};
		kind = EV_OPEN;
		if (bpf_probe_read_user(how, sizeof(how), (const void *)a2) < 0)
			flags |= EF_FAULT2;
		st->args[0] = a0;
		st->args[1] = how[0];
		st->args[2] = how[1];
		st->args[3] = how[2];
		path1(st, a1, &flags);
		break;
	}
	// EV_EXEC_FAILED: args = dirfd, flags (execveat), argc; buf1 = the
	// filename, argv = the arguments. Emitted only if the exec fails (a
	// successful one is reported by sched_process_exec, from the new
	// image), but copied here: once the exec has failed, a thread of the
	// caller may have rewritten them.
	case NR_execve:
		kind = EV_EXEC_FAILED;
		st->args[0] = AT_FDCWD;
		path1(st, a0, &flags);
		read_argv(st, a1, &flags);
		read_env(st, a2);
		break;
	case NR_execveat:
		kind = EV_EXEC_FAILED;
		st->args[0] = a0;
		st->args[1] = a4;
		path1(st, a1, &flags);
		read_argv(st, a2, &flags);
		read_env(st, a3);
		break;
	// EV_BIND: as connect
	case NR_bind:
		kind = EV_BIND;
		st->args[0] = a0;
		st->uptr1 = a1;
		st->sock1 = 1;
		st->len1 = read_sockaddr(st->buf1, a1, a2 & 0xffffffff, &st->args[1], &flags);
		break;
	// EV_LISTEN: args = fd, backlog
	case NR_listen:
		kind = EV_LISTEN;
		st->args[0] = a0;
		st->args[1] = a1 & 0xffffffff;
		break;
	// EV_ACCEPT: args = fd, flags, the peer buffer and its length's
	// address (read at exit, when the kernel has filled them); len1 =
	// the buffer's size as the caller gave it, which bounds that read
	case NR_accept:
	case NR_accept4: {
		__u32 size = 0;
		kind = EV_ACCEPT;
		st->args[0] = a0;
		st->args[1] = nr == NR_accept4 ? a3 : 0;
		if (a1 && a2 && bpf_probe_read_user(&size, sizeof(size), (const void *)a2) == 0 && size > 0) {
			st->args[2] = a1;
			st->args[3] = a2;
			st->len1 = size;
		}
		break;
	}
	// EV_SENDTO: args = fd, addrlen, length; only a send that names its
	// destination (a connected socket's was reported at connect)
	case NR_sendto:
		if (a4 == 0)
			return;
		kind = EV_SENDTO;
		st->args[0] = a0;
		st->args[2] = a2;
		st->uptr1 = a4;
		st->sock1 = 1;
		st->len1 = read_sockaddr(st->buf1, a4, a5 & 0xffffffff, &st->args[1], &flags);
		break;
	case NR_sendmsg:
	case NR_sendmmsg: {
		// struct msghdr (the first of an mmsghdr array starts with one):
		// void *msg_name; int msg_namelen; ...
		__u64 hdr[2] = {};
		if (bpf_probe_read_user(hdr, sizeof(hdr), (const void *)a1) < 0 || hdr[0] == 0)
			return;
		kind = EV_SENDTO;
		st->args[0] = a0;
		st->uptr1 = hdr[0];
		st->sock1 = 1;
		st->len1 = read_sockaddr(st->buf1, hdr[0], hdr[1] & 0xffffffff, &st->args[1], &flags);
		break;
	}
	// EV_CONNECT: args = fd, addrlen; buf1 = the sockaddr
	case NR_connect: {
		__u64 len = a2 & 0xffffffff;
		kind = EV_CONNECT;
		st->args[0] = a0;
		st->args[1] = len;
		st->uptr1 = a1;
		st->sock1 = 1;
		if (len > ADDR_LEN) {
			len = ADDR_LEN;
			flags |= EF_TRUNC1;
		}
		if (len > 0 && bpf_probe_read_user(st->buf1, len, (const void *)a1) < 0) {
			len = 0;
			flags |= EF_FAULT1;
		}
		st->len1 = len;
		break;
	}
	// EV_UNLINK: args = dirfd, flags
#ifdef NR_open
	case NR_unlink:
	case NR_rmdir:
		kind = EV_UNLINK;
		st->args[0] = AT_FDCWD;
		st->args[1] = nr == NR_rmdir ? AT_REMOVEDIR : 0;
		path1(st, a0, &flags);
		break;
#endif
	case NR_unlinkat:
		kind = EV_UNLINK;
		st->args[0] = a0;
		st->args[1] = a2;
		path1(st, a1, &flags);
		break;
	// EV_RENAME: args = old dirfd, new dirfd, flags
#ifdef NR_open
	case NR_rename:
		kind = EV_RENAME;
		st->args[0] = AT_FDCWD;
		st->args[1] = AT_FDCWD;
		path1(st, a0, &flags);
		path2(st, a1, &flags);
		break;
#endif
	case NR_renameat:
	case NR_renameat2:
		kind = EV_RENAME;
		st->args[0] = a0;
		st->args[1] = a2;
		st->args[2] = nr == NR_renameat2 ? a4 : 0;
		path1(st, a1, &flags);
		path2(st, a3, &flags);
		break;
	// EV_CHMOD: args = dirfd, mode, flags (fchmodat2)
#ifdef NR_open
	case NR_chmod:
		kind = EV_CHMOD;
		st->args[0] = AT_FDCWD;
		st->args[1] = a1;
		path1(st, a0, &flags);
		break;
#endif
	case NR_fchmodat:
	case NR_fchmodat2:
		kind = EV_CHMOD;
		st->args[0] = a0;
		st->args[1] = a2;
		st->args[2] = nr == NR_fchmodat2 ? a3 : 0;
		path1(st, a1, &flags);
		break;
	// EV_CHMOD of a descriptor: args = fd, mode, flags, 1
	case NR_fchmod:
		kind = EV_CHMOD;
		st->args[0] = a0;
		st->args[1] = a1;
		st->args[3] = 1;
		break;
	// EV_MKDIR: args = dirfd, mode
#ifdef NR_open
	case NR_mkdir:
		kind = EV_MKDIR;
		st->args[0] = AT_FDCWD;
		st->args[1] = a1;
		path1(st, a0, &flags);
		break;
#endif
	case NR_mkdirat:
		kind = EV_MKDIR;
		st->args[0] = a0;
		st->args[1] = a2;
		path1(st, a1, &flags);
		break;
	// EV_LINK: args = old dirfd, new dirfd, flags
#ifdef NR_open
	case NR_link:
		kind = EV_LINK;
		st->args[0] = AT_FDCWD;
		st->args[1] = AT_FDCWD;
		path1(st, a0, &flags);
		path2(st, a1, &flags);
		break;
#endif
	case NR_linkat:
		kind = EV_LINK;
		st->args[0] = a0;
		st->args[1] = a2;
		st->args[2] = a4;
		path1(st, a1, &flags);
		path2(st, a3, &flags);
		break;
	// EV_SYMLINK: args = new dirfd; buf1 = the target (any string)
#ifdef NR_open
	case NR_symlink:
		kind = EV_SYMLINK;
		st->args[0] = AT_FDCWD;
		path1(st, a0, &flags);
		path2(st, a1, &flags);
		break;
#endif
	case NR_symlinkat:
		kind = EV_SYMLINK;
		st->args[0] = a1;
		path1(st, a0, &flags);
		path2(st, a2, &flags);
		break;
	// EV_TRUNCATE: args = dirfd or fd, length, 1 for a descriptor
	case NR_truncate:
		kind = EV_TRUNCATE;
		st->args[0] = AT_FDCWD;
		st->args[1] = a1;
		path1(st, a0, &flags);
		break;
	case NR_ftruncate:
		kind = EV_TRUNCATE;
		st->args[0] = a0;
		st->args[1] = a1;
		st->args[2] = 1;
		break;
	// EV_UTIMES: args = dirfd (fd when no path), flags, 1 if times given,
	// 1 for a descriptor (utimensat with a NULL path: futimens)
	case NR_utimensat:
		kind = EV_UTIMES;
		st->args[0] = a0;
		st->args[1] = a3;
		st->args[2] = a2 != 0;
		if (a1) {
			path1(st, a1, &flags);
		} else {
			st->args[3] = 1;
		}
		break;
	// EV_MKNOD: args = dirfd, mode, dev
#ifdef NR_open
	case NR_mknod:
		kind = EV_MKNOD;
		st->args[0] = AT_FDCWD;
		st->args[1] = a1;
		st->args[2] = a2;
		path1(st, a0, &flags);
		break;
#endif
	case NR_mknodat:
		kind = EV_MKNOD;
		st->args[0] = a0;
		st->args[1] = a2;
		st->args[2] = a3;
		path1(st, a1, &flags);
		break;
	// EV_CHOWN: args = dirfd or fd, uid, gid, flags | 1 << 32 for a
	// descriptor
#ifdef NR_open
	case NR_chown:
	case NR_lchown:
		kind = EV_CHOWN;
		st->args[0] = AT_FDCWD;
		st->args[1] = a1 & 0xffffffff;
		st->args[2] = a2 & 0xffffffff;
		st->args[3] = nr == NR_lchown ? 0x100 : 0; // AT_SYMLINK_NOFOLLOW
		path1(st, a0, &flags);
		break;
#endif
	case NR_fchown:
		kind = EV_CHOWN;
		st->args[0] = a0;
		st->args[1] = a1 & 0xffffffff;
		st->args[2] = a2 & 0xffffffff;
		st->args[3] = 1ULL << 32;
		break;
	case NR_fchownat:
		kind = EV_CHOWN;
		st->args[0] = a0;
		st->args[1] = a2 & 0xffffffff;
		st->args[2] = a3 & 0xffffffff;
		st->args[3] = a4 & 0xffffffff;
		path1(st, a1, &flags);
		break;
	// EV_FORK: args = the clone flags; a new thread is not a new process
	// and is not reported
#ifdef NR_open
	case NR_fork:
		kind = EV_FORK;
		st->args[0] = SIGCHLD;
		break;
	case NR_vfork:
		kind = EV_FORK;
		st->args[0] = CLONE_VM | CLONE_VFORK | SIGCHLD;
		break;
#endif
	case NR_clone:
		if (a0 & CLONE_THREAD)
			return;
		kind = EV_FORK;
		st->args[0] = a0;
		break;
	// EV_SETNAME: a thread renaming itself (the name ps and comm show)
	case NR_prctl:
		if (a0 != 15) // PR_SET_NAME
			return;
		kind = EV_SETNAME;
		path1(st, a1, &flags);
		if (st->len1 > 16)
			st->len1 = 16;
		break;
	// EV_SETID: args = the ids in argument order, 0xffffffff where absent
	case NR_setuid:
	case NR_setgid:
		kind = EV_SETID;
		st->args[0] = a0 & 0xffffffff;
		st->args[1] = 0xffffffff;
		st->args[2] = 0xffffffff;
		break;
	case NR_setreuid:
	case NR_setregid:
		kind = EV_SETID;
		st->args[0] = a0 & 0xffffffff;
		st->args[1] = a1 & 0xffffffff;
		st->args[2] = 0xffffffff;
		break;
	case NR_setresuid:
	case NR_setresgid:
		kind = EV_SETID;
		st->args[0] = a0 & 0xffffffff;
		st->args[1] = a1 & 0xffffffff;
		st->args[2] = a2 & 0xffffffff;
		break;
	// EV_CAPSET: args = effective, permitted, inheritable (64-bit sets),
	// version | pid << 32 from the header
	case NR_capset: {
		__u32 hdr[2] = {};       // struct __user_cap_header_struct
		__u32 data[6] = {};      // struct __user_cap_data_struct[2]
		kind = EV_CAPSET;
		if (bpf_probe_read_user(hdr, sizeof(hdr), (const void *)a0) < 0)
			flags |= EF_FAULT1;
		if (bpf_probe_read_user(data, 12, (const void *)a1) < 0)
			flags |= EF_FAULT2;
		// Version 1 (0x19980330) has one 32-bit set; 2 and 3 have two.
		else if (hdr[0] != 0x19980330 &&
			 bpf_probe_read_user(&data[3], 12, (const void *)(a1 + 12)) < 0)
			flags |= EF_FAULT2;
		st->args[0] = data[0] | (__u64)data[3] << 32;
		st->args[1] = data[1] | (__u64)data[4] << 32;
		st->args[2] = data[2] | (__u64)data[5] << 32;
		st->args[3] = hdr[0] | (__u64)hdr[1] << 32;
		break;
	}
	}
	st->kind = kind;
	st->flags = flags;
}

SEC("raw_tp/sys_enter")
int sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	// TP_PROTO(struct pt_regs *regs, long id)
	struct pt_regs *regs = (void *)ctx->args[0];
	long nr = ctx->args[1];
	if (untraced(nr))
		return 0;

	__u64 cg;
	if (!watched_current(&cg))
		return 0;

	struct task_state *st = bpf_task_storage_get(&tasks, bpf_get_current_task_btf(), 0,
						     BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!st)
		return 0;
	st->inflight = nr + 1;
	st->kind = 0;
	stash(st, regs, nr);
	return 0;
}

static __always_inline int in_seccomp_filter(void)
{
	return bpf_get_current_task_btf()->seccomp.mode == SECCOMP_MODE_FILTER;
}

// count_refusal counts, in the cgroup's own entry, a call a wall of the
// sandbox refused: an exec with EPERM (the exec supervisor), a connect or
// send with EPERM (the egress hooks) or EACCES (Landlock's port rules).
// Counted here, at the call, so that the dispatcher can read it the
// moment an invocation ends, before the event reaches user space.
static __always_inline void count_refusal(struct watch *w, __u8 kind, long ret)
{
	if ((kind == EV_EXEC_FAILED && ret == -EPERM) ||
	    ((kind == EV_CONNECT || kind == EV_SENDTO) && (ret == -EPERM || ret == -EACCES)))
		__sync_fetch_and_add(&w->refusals, 1);
}

// emit_denied reports a syscall the seccomp filter refused. In a cgroup
// that kills escapes, a refused escape attempt first gets its caller
// SIGKILL (bpf_send_signal: delivered to the whole process as it returns
// to user space, before it runs another instruction).
static __always_inline void emit_denied(struct watch *w, __u64 cg, long nr, long ret)
{
	__u8 flags = 0;
	__sync_fetch_and_add(&w->refusals, 1);
	if (w->flags & WATCH_KILL_ESCAPES) {
		__u32 k = nr;
		__u8 *esc = bpf_map_lookup_elem(&escapes, &k);
		if (esc && *esc && bpf_send_signal(SIGKILL) == 0)
			flags = EF_KILLED;
	}
	struct denied_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_drop(w);
		return;
	}
	fill_hdr(&e->hdr, EV_DENIED, flags, cg, nr);
	e->ret = ret;
	bpf_ringbuf_submit(e, wakeup_flag());
}

static __always_inline void fill_sys(struct sys_event *e, struct task_state *st, __u8 kind, __u64 cg, long nr,
				     long ret)
{
	fill_hdr(&e->hdr, kind, st->flags, cg, nr);
	e->ret = ret;
	e->args[0] = st->args[0];
	e->args[1] = st->args[1];
	e->args[2] = st->args[2];
	e->args[3] = st->args[3];
	e->len1 = st->len1;
	e->len2 = st->len2;
	e->where_len1 = st->where_len1;
	e->where_len2 = st->where_len2;
	e->where_info1 = st->where_info1;
	e->where_info2 = st->where_info2;
	e->_pad2 = 0;
}

// place fills where1 and where2 for the stashed call that returned ret:
// the file an open opened, the file a change by descriptor changed, or
// the directory each relative path is relative to. At exit, so that an
// open's is the file the kernel really opened (every symlink followed);
// a dirfd is read as the call left it.
static __always_inline void place(struct task_state *st, __u8 kind, long ret)
{
	__u8 i1 = 0, i2 = 0;
	__u32 n1 = 0, n2 = 0;
	long fd1 = (long)st->args[0], fd2 = (long)st->args[1];
	int file1 = 0;

	switch (kind) {
	case EV_OPEN:
		if (ret >= 0) {
			fd1 = ret;
			file1 = 1;
		}
		break;
	case EV_CHMOD:
	case EV_UTIMES:
		file1 = st->args[3] == 1;
		break;
	case EV_TRUNCATE:
		file1 = st->args[2] == 1;
		break;
	case EV_CHOWN:
		file1 = (st->args[3] >> 32) != 0;
		break;
	case EV_UNLINK:
	case EV_MKDIR:
	case EV_MKNOD:
	case EV_EXEC_FAILED:
	case EV_RENAME:
	case EV_LINK:
		break;
	case EV_SYMLINK:
		// buf1 is the link's target, any string; the link is buf2,
		// relative to args[0]
		fd2 = fd1;
		fd1 = -1;
		break;
	default:
		st->where_len1 = 0;
		st->where_len2 = 0;
		st->where_info1 = 0;
		st->where_info2 = 0;
		return;
	}
	if (fd1 != -1 || file1)
		n1 = locate(st->where1, st->buf1, file1 ? 1 : st->len1, fd1, file1, &i1);
	if (kind == EV_RENAME || kind == EV_LINK || kind == EV_SYMLINK)
		n2 = locate(st->where2, st->buf2, st->len2, fd2, 0, &i2);
	else if (kind == EV_OPEN && file1)
		// what was asked too: the directory of a relative path (the
		// record is then a sys_event_path2, buf2 empty)
		n2 = locate(st->where2, st->buf1, st->len1, (long)st->args[0], 0, &i2);
	st->where_len1 = n1;
	st->where_len2 = n2;
	st->where_info1 = i1;
	st->where_info2 = i2;
}

// reread copies again, at exit, a string or address whose copy at entry
// faulted: it sat on a page the caller had not touched yet (a probe read
// cannot fault pages in), which the kernel's own copy has faulted in by
// now. The event says so (EF_LATE): between the kernel's read and this one
// a thread of the caller could have changed the buffer.
static __always_inline void reread(struct task_state *st)
{
	if ((st->flags & EF_FAULT1) && st->uptr1) {
		if (st->sock1) {
			__u64 len = st->args[1];
			if (len > ADDR_LEN)
				len = ADDR_LEN;
			if (len > 0 && bpf_probe_read_user(st->buf1, len, (const void *)st->uptr1) == 0) {
				st->len1 = len;
				st->flags = (st->flags & ~EF_FAULT1) | EF_LATE;
			}
		} else {
			__u8 f = 0;
			__u32 n = read_str(st->buf1, st->uptr1, &f, EF_TRUNC1, EF_FAULT1);
			if (!(f & EF_FAULT1)) {
				st->len1 = n;
				st->flags = (st->flags & ~EF_FAULT1) | f | EF_LATE;
			}
		}
	}
	if ((st->flags & EF_FAULT2) && st->uptr2) {
		__u8 f = 0;
		__u32 n = read_str(st->buf2, st->uptr2, &f, EF_TRUNC2, EF_FAULT2);
		if (!(f & EF_FAULT2)) {
			st->len2 = n;
			st->flags = (st->flags & ~EF_FAULT2) | f | EF_LATE;
		}
	}
}

SEC("raw_tp/sys_exit")
int sys_exit(struct bpf_raw_tracepoint_args *ctx)
{
	// TP_PROTO(struct pt_regs *regs, long ret)
	struct pt_regs *regs = (void *)ctx->args[0];
	long ret = ctx->args[1];
	long nr = -1;
	nr = *SC_NR(CAST(struct pt_regs, regs)); // (arm64: an int)
	if (untraced(nr))
		return 0;

	__u64 cg;
	struct watch *w = watched_current(&cg);
	if (!w)
		return 0;

	struct task_state *st = bpf_task_storage_get(&tasks, bpf_get_current_task_btf(), 0,
						     BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!st)
		return 0;
	__u32 inflight = st->inflight;
	__u8 kind = st->kind;
	st->inflight = 0;
	st->kind = 0;

	if (inflight == 0) {
		// No sys_enter for this call: seccomp (or a tracer) skipped
		// it. With a filter installed and EPERM/EACCES, it is a
		// refusal by the filter.
		if ((ret == -EPERM || ret == -EACCES) && in_seccomp_filter())
			emit_denied(w, cg, nr, ret);
		return 0;
	}
	if (kind == 0 || inflight != nr + 1)
		return 0;
	// A successful exec was reported by sched_process_exec.
	if (kind == EV_EXEC_FAILED && ret >= 0)
		return 0;
	count_refusal(w, kind, ret);
	// accept fills the peer's address on the way out: the kernel wrote
	// the address's full length, of which the buffer holds what fits.
	if (kind == EV_ACCEPT) {
		__u32 alen = 0, size = st->len1;
		st->len1 = 0;
		if (ret >= 0 && st->args[2] &&
		    bpf_probe_read_user(&alen, sizeof(alen), (const void *)st->args[3]) == 0) {
			if (alen > size)
				alen = size;
			if (alen > ADDR_LEN)
				alen = ADDR_LEN;
			if (alen > 0 && bpf_probe_read_user(st->buf1, alen, (const void *)st->args[2]) == 0)
				st->len1 = alen;
		}
		st->args[2] = 0;
		st->args[3] = 0;
	}

	reread(st);
	place(st, kind, ret);

	if (kind == EV_EXEC_FAILED) {
		struct exec_failed_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
		if (!e) {
			count_drop(w);
			return 0;
		}
		fill_sys(&e->sys, st, kind, cg, nr, ret);
		bpf_probe_read_kernel(e->filename, PATH_LEN, st->buf1);
		bpf_probe_read_kernel(e->args, ARGS_LEN, st->argv);
		bpf_probe_read_kernel(e->where1, PATH_LEN, st->where1);
		bpf_probe_read_kernel(e->env, ENV_LEN, st->env);
		e->env_len = st->env_len;
		e->env_info = st->env_info;
		bpf_ringbuf_submit(e, wakeup_flag());
	} else if (kind == EV_RENAME || kind == EV_LINK || kind == EV_SYMLINK || (kind == EV_OPEN && st->where_info2)) {
		struct sys_event_path2 *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
		if (!e) {
			count_drop(w);
			return 0;
		}
		fill_sys(&e->sys, st, kind, cg, nr, ret);
		bpf_probe_read_kernel(e->buf1, PATH_LEN, st->buf1);
		if (kind == EV_OPEN)
			e->sys.len2 = 0;
		else
			bpf_probe_read_kernel(e->buf2, PATH_LEN, st->buf2);
		bpf_probe_read_kernel(e->where1, PATH_LEN, st->where1);
		bpf_probe_read_kernel(e->where2, PATH_LEN, st->where2);
		bpf_ringbuf_submit(e, wakeup_flag());
	} else if (kind == EV_SETID || kind == EV_CAPSET || kind == EV_FORK) {
		struct sys_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
		if (!e) {
			count_drop(w);
			return 0;
		}
		fill_sys(e, st, kind, cg, nr, ret);
		bpf_ringbuf_submit(e, wakeup_flag());
	} else {
		struct sys_event_path *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
		if (!e) {
			count_drop(w);
			return 0;
		}
		fill_sys(&e->sys, st, kind, cg, nr, ret);
		bpf_probe_read_kernel(e->buf1, PATH_LEN, st->buf1);
		bpf_probe_read_kernel(e->where1, PATH_LEN, st->where1);
		bpf_ringbuf_submit(e, wakeup_flag());
	}
	return 0;
}
