package seccomp

import (
	"errors"
	"fmt"
	"os"
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
// policy or one that hands calls to a supervisor (load that one with
// [InstallListener]), and [ErrThreadSync] (wrapped) if another thread
// already runs under an unrelated filter. Never call it in the moat host
// process.
func Install(p *Policy) error {
	f, err := Compile(p)
	if err != nil {
		return err
	}
	return f.Install()
}

// Filter is a policy compiled for the kernel, ready to load: compile it
// ahead (the instance init does, before a function claims it) and the load
// is one system call.
type Filter struct {
	prog     []unix.SockFilter
	notifies bool
}

// Compile assembles p for the architecture moat runs on. It returns
// [ErrInvalidPolicy] (wrapped) for an invalid policy.
func Compile(p *Policy) (*Filter, error) {
	prog, err := p.Assemble()
	if err != nil {
		return nil, err
	}
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return nil, fmt.Errorf("encode filter: %w", err)
	}
	filter := make([]unix.SockFilter, len(raw))
	for i, in := range raw {
		filter[i] = unix.SockFilter{Code: in.Op, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	return &Filter{prog: filter, notifies: p.notifies()}, nil
}

// Install loads the filter as [Install] does, with the same errors.
func (f *Filter) Install() error {
	if f.notifies {
		return fmt.Errorf("%w: it hands calls to a supervisor; load it with InstallListener", ErrInvalidPolicy)
	}
	_, err := f.load(unix.SECCOMP_FILTER_FLAG_TSYNC)
	return err
}

// InstallListener is [Install] for a policy that hands calls to a
// supervisor ([Policy.Notify], [Notify]): it also returns the filter's
// listener, a close-on-exec descriptor to pass to the supervising process
// (over a UNIX socket, SCM_RIGHTS), which wraps it with [NewListener].
// Until the supervisor answers, a notified call waits; once the
// supervisor has received it, only a fatal signal interrupts the wait
// where the kernel offers that (SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
// Linux 5.19). When every copy of the listener is closed, notified calls
// fail with ENOSYS: the filter never lets a call through by default.
//
// The caller should close its own copy once the supervisor has one: a
// process waiting on a listener only it holds would wait until killed.
// Errors are those of Install.
func InstallListener(p *Policy) (*os.File, error) {
	f, err := Compile(p)
	if err != nil {
		return nil, err
	}
	return f.InstallListener()
}

// InstallListener loads the filter as [InstallListener] does, with the
// same errors.
func (f *Filter) InstallListener() (*os.File, error) {
	flags := uintptr(unix.SECCOMP_FILTER_FLAG_TSYNC | unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH | unix.SECCOMP_FILTER_FLAG_NEW_LISTENER)
	fd, err := f.load(flags | unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV)
	if errors.Is(err, unix.EINVAL) {
		// A kernel older than 5.19 lacks the killable wait.
		fd, err = f.load(flags)
	}
	if err != nil {
		return nil, err
	}
	return os.NewFile(fd, "seccomp-listener"), nil
}

// load loads the filter with flags, returning what the kernel returned: a
// listener fd with SECCOMP_FILTER_FLAG_NEW_LISTENER.
func (f *Filter) load(flags uintptr) (uintptr, error) {
	filter := f.prog
	fprog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}

	// no_new_privs is per thread: check it on the thread that loads the
	// filter.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	nnp, err := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)
	if err != nil {
		return 0, fmt.Errorf("read no_new_privs: %w", err)
	}
	if nnp != 1 {
		return 0, ErrNoNewPrivs
	}
	// With TSYNC alone the call returns 0, an error, or the id of a
	// thread it could not synchronise; with TSYNC_ESRCH (required with
	// NEW_LISTENER) that thread is an ESRCH, and success returns the
	// listener.
	r, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, flags, uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(filter)
	switch {
	case errno == unix.ESRCH && flags&unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH != 0:
		return 0, fmt.Errorf("load filter: %w", ErrThreadSync)
	case errno != 0:
		return 0, fmt.Errorf("load filter: %w", errno)
	case r != 0 && flags&unix.SECCOMP_FILTER_FLAG_NEW_LISTENER == 0:
		return 0, fmt.Errorf("load filter: thread %d: %w", r, ErrThreadSync)
	}
	return r, nil
}
