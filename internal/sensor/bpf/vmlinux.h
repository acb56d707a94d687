/* SPDX-License-Identifier: (MIT OR GPL-2.0-only) */
/*
 * The kernel types the sensor reads, trimmed by hand from
 *   bpftool btf dump file /sys/kernel/btf/vmlinux format c
 * (Linux 6.18, x86_64) down to the members used, plus arm64's pt_regs.
 *
 * Every struct carries preserve_access_index, so clang emits a CO-RE
 * relocation for each member access and the loader (cilium/ebpf) fixes the
 * offset up against the running kernel's BTF. Member order and padding here
 * therefore do not matter; only names and types do. A member missing from
 * the running kernel fails the load, which Load reports as ErrUnavailable.
 */
#ifndef MOAT_SENSOR_VMLINUX_H
#define MOAT_SENSOR_VMLINUX_H

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef signed char __s8;
typedef short __s16;
typedef int __s32;
typedef long long __s64;
typedef _Bool bool;
typedef int pid_t;

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

typedef struct {
	int counter;
} atomic_t;

#if defined(__TARGET_ARCH_x86)
struct pt_regs {
	unsigned long r9;
	unsigned long r10;
	unsigned long r8;
	unsigned long dx;
	unsigned long si;
	unsigned long di;
	unsigned long orig_ax;
};
#elif defined(__TARGET_ARCH_arm64)
struct pt_regs {
	unsigned long regs[31];
	unsigned long orig_x0;
	int syscallno;
};
#else
#error "the sensor supports x86_64 and arm64 only"
#endif

struct seccomp {
	int mode;
};

struct signal_struct {
	atomic_t live;
};

struct mm_struct {
	unsigned long arg_start;
	unsigned long arg_end;
};

struct qstr {
	const unsigned char *name;
};

struct dentry {
	struct dentry *d_parent;
	struct qstr d_name;
};

struct vfsmount {
	struct dentry *mnt_root;
};

struct path {
	struct vfsmount *mnt;
	struct dentry *dentry;
};

/* fs/mount.h: the vfsmount is embedded in its struct mount. */
struct mount {
	struct mount *mnt_parent;
	struct dentry *mnt_mountpoint;
	struct vfsmount mnt;
};

struct fs_struct {
	struct path root;
	struct path pwd;
};

struct inode {
	unsigned int i_nlink;
};

struct file {
	struct path f_path;
	struct inode *f_inode;
};

struct fdtable {
	unsigned int max_fds;
	struct file **fd;
};

struct files_struct {
	struct fdtable *fdt;
};

struct task_struct {
	pid_t pid;
	pid_t tgid;
	int exit_code;
	struct task_struct *real_parent;
	struct mm_struct *mm;
	struct signal_struct *signal;
	struct seccomp seccomp;
	struct fs_struct *fs;
	struct files_struct *files;
};

struct linux_binprm {
	int argc;
	const char *filename;
	struct file *file;
};

#pragma clang attribute pop

/* Context of BPF_PROG_TYPE_RAW_TRACEPOINT: the tracepoint's arguments. */
struct bpf_raw_tracepoint_args {
	__u64 args[0];
};

/* UAPI values (include/uapi/linux/bpf.h); stable ABI, no relocation. */
enum {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_RINGBUF = 27,
	BPF_MAP_TYPE_TASK_STORAGE = 29,
};

enum {
	BPF_RB_NO_WAKEUP = 1,
	BPF_RB_FORCE_WAKEUP = 2,
	BPF_RB_AVAIL_DATA = 0,
};

enum {
	BPF_ANY = 0,
	BPF_F_NO_PREALLOC = 1,
	BPF_LOCAL_STORAGE_GET_F_CREATE = 1,
};

#endif /* MOAT_SENSOR_VMLINUX_H */
