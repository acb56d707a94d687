package seccomp

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// ErrNoNewPrivs is returned by [Install] when the calling thread has not
// set no_new_privs. The kernel would accept the filter from a process
// holding CAP_SYS_ADMIN anyway; moat insists, so that the filter can never
// be loaded where a setuid exec could shed it.
var ErrNoNewPrivs = errors.New("no_new_privs is not set on the calling thread")

// ErrThreadSync is returned (wrapped) by [Install] when the kernel could
// not give the filter to every thread of the process.
var ErrThreadSync = errors.New("filter could not be synchronised to every thread")

// Install compiles p and loads it for the whole process: every thread now
// running gets it (SECCOMP_FILTER_FLAG_TSYNC), and so does every process
// and program they start, across execve. It cannot be undone.
//
// The calling thread must have set no_new_privs; the instance init sets
// it on its locked OS thread and calls Install from that same thread, as
// its last step before executing the bootstrap. Install returns
// [ErrNoNewPrivs] otherwise, [ErrInvalidPolicy] (wrapped) for a bad
// policy, and [ErrThreadSync] (wrapped) if another thread already runs
// under an unrelated filter. Never call it in the moat host process.
func Install(p *Policy) error {
	prog, err := p.Assemble()
	if err != nil {
		return err
	}
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return fmt.Errorf("encode filter: %w", err)
	}
	filter := make([]unix.SockFilter, len(raw))
	for i, in := range raw {
		filter[i] = unix.SockFilter{Code: in.Op, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	fprog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}

	// no_new_privs is per thread: check it on the thread that loads the
	// filter.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	nnp, err := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)
	if err != nil {
		return fmt.Errorf("read no_new_privs: %w", err)
	}
	if nnp != 1 {
		return ErrNoNewPrivs
	}
	// With TSYNC the call returns 0, an error, or the id of a thread it
	// could not synchronise.
	r, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
		unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(filter)
	switch {
	case errno != 0:
		return fmt.Errorf("load filter: %w", errno)
	case r != 0:
		return fmt.Errorf("load filter: thread %d: %w", r, ErrThreadSync)
	}
	return nil
}
