package main

import (
	"context"
	"time"
)

// check is one escape attempt.
type check struct {
	name    string
	timeout time.Duration
	run     func(ctx context.Context, p *params) *report
}

const short = 5 * time.Second

// registry lists every check in run order: the observations first, the
// checks that change something after them, and the resource bombs last, so
// that a bomb cannot disturb another check. leave_process runs last of all
// because see_host_processes would count its leftover.
var registry = []check{
	{"see_host_processes", short, checkSeeHostProcesses},
	{"caps", short, checkCaps},
	{"seccomp_nnp", short, checkSeccompNNP},
	{"read_shadow", short, checkReadShadow},
	{"read_host_paths", short, checkReadHostPaths},
	{"write_var_task", short, checkWriteVarTask},
	{"write_root", short, checkWriteRoot},
	{"overwrite_exe", short, checkOverwriteExe},
	{"devices", short, checkDevices},
	{"open_by_handle_at", short, checkOpenByHandleAt},
	{"proc_sys_write", short, checkProcSysWrite},
	{"sysrq", short, checkSysrq},
	{"sysfs_write", short, checkSysfsWrite},
	{"dmesg", short, checkDmesg},
	{"ptrace", short, checkPtrace},
	{"proc_mem_other", short, checkProcMemOther},
	{"process_vm", short, checkProcessVM},
	{"signal_host", short, checkSignalHost},
	{"mount", short, checkMount},
	{"unshare_userns", short, checkUnshare},
	{"setns", short, checkSetns},
	{"chroot_escape", short, checkChrootEscape},
	{"setuid", short, checkSetuid},
	{"setuid_binary", 10 * time.Second, checkSetuidBinary},
	{"keyctl", short, checkKeyctl},
	{"bpf", short, checkBPF},
	{"perf_event_open", short, checkPerfEventOpen},
	{"userfaultfd", short, checkUserfaultfd},
	{"io_uring", short, checkIOUring},
	{"kernel_modules", short, checkKernelModules},
	{"reboot", short, checkReboot},
	{"kexec_load", short, checkKexecLoad},
	{"swapon", short, checkSwapon},
	{"ioperm", short, checkIOPerm},
	{"hostname", short, checkHostname},
	{"clock", short, checkClock},
	{"cgroup_escape", short, checkCgroupEscape},
	{"raw_socket", short, checkRawSocket},
	{"packet_socket", short, checkPacketSocket},
	{"routes", short, checkRoutes},
	{"metadata", short, checkMetadata},
	{"reach_api", short, checkReachAPI},
	{"reach_other_instance", short, checkReachOther},
	{"unix_sockets", short, checkUnixSockets},
	{"tmp_cross_invocation", short, checkTmpCrossInvocation},
	{"fd_exhaustion", short, checkFDExhaustion},
	{"fill_tmp", 20 * time.Second, checkFillTmp},
	{"memory_bomb", 20 * time.Second, checkMemoryBomb},
	{"fork_bomb", 20 * time.Second, checkForkBomb},
	{"leave_process", short, checkLeaveProcess},
}

func checkByName(name string) *check {
	for i := range registry {
		if registry[i].name == name {
			return &registry[i]
		}
	}
	return nil
}

func checkNames() []string {
	names := make([]string, len(registry))
	for i, c := range registry {
		names[i] = c.name
	}
	return names
}
