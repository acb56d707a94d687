package main

import (
	"context"

	"golang.org/x/sys/unix"
)

// checkIOPerm asks for direct access to I/O ports, which needs
// CAP_SYS_RAWIO. It runs on a throwaway thread: port permissions belong to
// the thread, and go with it.
func checkIOPerm(ctx context.Context, p *params) *report {
	r := &report{}
	err := onThrowawayThread(func() {
		_, _, errno := unix.RawSyscall(unix.SYS_IOPERM, 0x80, 1, 1)
		if r.try("ioperm(0x80, 1, on)", errnoErr(errno)) {
			unix.RawSyscall(unix.SYS_IOPERM, 0x80, 1, 0)
		}
		_, _, errno = unix.RawSyscall(unix.SYS_IOPL, 3, 0, 0)
		if r.try("iopl(3)", errnoErr(errno)) {
			unix.RawSyscall(unix.SYS_IOPL, 0, 0, 0)
		}
	})
	if err != nil {
		r.notef("%s", err)
	}
	return r
}
