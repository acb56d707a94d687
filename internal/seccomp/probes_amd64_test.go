package seccomp

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// Probes for the x86-only syscalls that reach I/O ports and descriptor
// tables.
func init() {
	sysProbes = append(sysProbes,
		sysProbe{"iopl", func() syscall.Errno { return raw(unix.SYS_IOPL, 4) }, unix.EPERM},
		sysProbe{"ioperm", func() syscall.Errno { return raw(unix.SYS_IOPERM, 0x10000, 1, 0) }, unix.EPERM},
		sysProbe{"modify_ldt", func() syscall.Errno { return raw(unix.SYS_MODIFY_LDT, 0xff, 0, 0) }, unix.EPERM},
	)
}
