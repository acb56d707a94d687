/* SPDX-License-Identifier: (MIT OR GPL-2.0-only) */
/*
 * The few BPF helpers and macros the sensor uses, declared here so that
 * regenerating needs clang and nothing else (no libbpf headers). Helper
 * numbers are the stable UAPI ones (enum bpf_func_id).
 */
#ifndef MOAT_SENSOR_HELPERS_H
#define MOAT_SENSOR_HELPERS_H

#define SEC(name) __attribute__((section(name), used))
#define __always_inline inline __attribute__((always_inline))

/* BTF-defined maps. */
#define __uint(name, val) int(*name)[val]
#define __type(name, val) typeof(val) *name

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static __u64 (*bpf_get_current_pid_tgid)(void) = (void *)14;
static __u64 (*bpf_get_current_uid_gid)(void) = (void *)15;
static long (*bpf_get_current_comm)(void *buf, __u32 size) = (void *)16;
static __u64 (*bpf_get_current_task)(void) = (void *)35;
static __u64 (*bpf_get_current_cgroup_id)(void) = (void *)80;
static long (*bpf_send_signal)(__u32 sig) = (void *)109;
static long (*bpf_probe_read_user)(void *dst, __u32 size, const void *src) = (void *)112;
static long (*bpf_probe_read_kernel)(void *dst, __u32 size, const void *src) = (void *)113;
static long (*bpf_probe_read_user_str)(void *dst, __u32 size, const void *src) = (void *)114;
static long (*bpf_probe_read_kernel_str)(void *dst, __u32 size, const void *src) = (void *)115;
static __u64 (*bpf_ktime_get_boot_ns)(void) = (void *)125;
static void *(*bpf_ringbuf_reserve)(void *ringbuf, __u64 size, __u64 flags) = (void *)131;
static void (*bpf_ringbuf_submit)(void *data, __u64 flags) = (void *)132;
static __u64 (*bpf_ringbuf_query)(void *ringbuf, __u64 flags) = (void *)134;
static void *(*bpf_task_storage_get)(void *map, struct task_struct *task, void *value, __u64 flags) = (void *)156;
static struct task_struct *(*bpf_get_current_task_btf)(void) = (void *)158;
static long (*bpf_loop)(__u32 nr_loops, void *callback_fn, void *callback_ctx, __u64 flags) = (void *)181;

/*
 * CAST(type, p): the kernel pointer p as a typed, read-only pointer to a
 * struct type of the running kernel (kfunc bpf_rdonly_cast, Linux 6.2),
 * whose members then load directly: each load is fault-safe (a bad
 * pointer reads as zero), and the verifier turns the cast itself into a
 * move, so a member costs a load, not a helper call.
 */
extern void *bpf_rdonly_cast(const void *obj__ign, __u32 btf_id__k) __attribute__((section(".ksyms")));
#define CAST(type, p) ((type *)bpf_rdonly_cast((const void *)(p), __builtin_btf_type_id(*(type *)0, 1)))

#endif /* MOAT_SENSOR_HELPERS_H */
