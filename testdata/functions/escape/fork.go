package main

// Forking without exec. Several attempts need a process of their own:
// unshare(CLONE_NEWUSER) and setns into a mount namespace refuse a
// multi-threaded caller, and chroot, setuid, capset or keyctl must not
// change the function itself if they succeed. A Go program cannot run Go
// code in a forked child, so the child runs a fixed list of raw system
// calls from a nosplit function that touches nothing of the runtime, writes
// each call's outcome into a shared page, and exits (or sleeps until killed,
// to serve as a target). The same code backs the fork bomb (child.go).

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// maxOps bounds the system calls one forked child runs.
const maxOps = 24

type sysOp struct {
	trap uintptr
	args [6]uintptr
}

// opResult is written by the child into memory shared with the parent.
type opResult struct {
	ran   uintptr
	r1    uintptr
	errno uintptr
}

// cloneArgs is struct clone_args (CLONE_ARGS_SIZE_VER2).
type cloneArgs struct {
	flags, pidfd, childTID, parentTID, exitSignal, stack, stackSize, tls, setTID, setTIDSize, cgroup uint64
}

// forkProgram is what one forked child does.
type forkProgram struct {
	cloneFlags uintptr    // added to SIGCHLD for clone(2)
	clone3     *cloneArgs // if set, fork with clone3(2) instead
	ops        [maxOps]sysOp
	n          int
	keepGoing  bool // run every op even after one fails
	sleep      bool // after the ops, sleep until killed (with PR_SET_PDEATHSIG)
	ts         unix.Timespec
	res        *[maxOps]opResult

	// Parent side only.
	labels [maxOps]string
	keep   []any // what the ops' pointer arguments point into
}

// add appends one system call; label names it in reports.
func (p *forkProgram) add(label string, trap uintptr, args ...uintptr) {
	if p.n == maxOps {
		panic("forkProgram: too many ops")
	}
	op := sysOp{trap: trap}
	copy(op.args[:], args)
	p.ops[p.n] = op
	p.labels[p.n] = label
	p.n++
}

// cstr returns a pointer to a NUL-terminated copy of s that lives as long
// as p.
func (p *forkProgram) cstr(s string) uintptr {
	b, err := unix.BytePtrFromString(s)
	if err != nil {
		panic(err)
	}
	p.keep = append(p.keep, b)
	return uintptr(unsafe.Pointer(b))
}

// ptr keeps v alive as long as p and returns its address.
func (p *forkProgram) ptr(v any, addr unsafe.Pointer) uintptr {
	p.keep = append(p.keep, v)
	return uintptr(addr)
}

// rawFork forks. In the child it runs p and never returns.
//
//go:nosplit
//go:norace
func rawFork(p *forkProgram) (pid uintptr, errno syscall.Errno) {
	var r1 uintptr
	if p.clone3 != nil {
		r1, _, errno = syscall.RawSyscall(unix.SYS_CLONE3, uintptr(unsafe.Pointer(p.clone3)), unsafe.Sizeof(*p.clone3), 0)
	} else {
		r1, _, errno = syscall.RawSyscall6(unix.SYS_CLONE, p.cloneFlags|uintptr(syscall.SIGCHLD), 0, 0, 0, 0, 0)
	}
	if errno != 0 {
		return 0, errno
	}
	if r1 != 0 {
		return r1, 0
	}
	childMain(p)
	return 0, 0
}

// childMain runs in the forked child: raw system calls only, no
// allocation, no stack growth, no runtime.
//
//go:nosplit
//go:norace
func childMain(p *forkProgram) {
	if p.sleep {
		syscall.RawSyscall(unix.SYS_PRCTL, unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0)
	}
	for i := 0; i < p.n && i < maxOps; i++ {
		op := &p.ops[i]
		r1, _, e := syscall.RawSyscall6(op.trap, op.args[0], op.args[1], op.args[2], op.args[3], op.args[4], op.args[5])
		if p.res != nil {
			p.res[i].r1 = r1
			p.res[i].errno = uintptr(e)
			p.res[i].ran = 1
		}
		if e != 0 && !p.keepGoing {
			break
		}
	}
	if p.sleep {
		for {
			syscall.RawSyscall(unix.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&p.ts)), 0, 0)
		}
	}
	syscall.RawSyscall(unix.SYS_EXIT_GROUP, 0, 0, 0)
}

// sigprocmask sets the calling thread's signal mask.
func sigprocmask(how int, set, old *uint64) {
	syscall.RawSyscall6(unix.SYS_RT_SIGPROCMASK, uintptr(how), uintptr(unsafe.Pointer(set)), uintptr(unsafe.Pointer(old)), 8, 0, 0)
}

// forkChild forks a child that runs p. Signals are blocked around the
// fork so that the child never runs a Go signal handler; it inherits the
// blocked mask and can only be stopped or killed.
func forkChild(p *forkProgram) (int, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	all, old := ^uint64(0), uint64(0)
	children.mu.Lock()
	defer children.mu.Unlock()
	sigprocmask(unix.SIG_SETMASK, &all, &old)
	pid, errno := rawFork(p)
	sigprocmask(unix.SIG_SETMASK, &old, nil)
	runtime.KeepAlive(p)
	if errno != 0 {
		return 0, errno
	}
	children.pids[int(pid)] = true
	return int(pid), nil
}

// opOutcome is what one op of a forked child did.
type opOutcome struct {
	label string
	ran   bool
	r1    uintptr
	errno syscall.Errno
}

func (o opOutcome) String() string {
	if !o.ran {
		return o.label + ": not reached"
	}
	return o.label + ": " + errnoText(o.errno)
}

// forkRun is the outcome of a forked child.
type forkRun struct {
	ops      []opOutcome
	status   unix.WaitStatus
	timedOut bool
}

// allOK reports whether every op ran and succeeded.
func (f forkRun) allOK() bool {
	for _, o := range f.ops {
		if !o.ran || o.errno != 0 {
			return false
		}
	}
	return len(f.ops) > 0
}

func (f forkRun) String() string {
	parts := make([]string, 0, len(f.ops)+1)
	for _, o := range f.ops {
		parts = append(parts, o.String())
	}
	if f.timedOut {
		parts = append(parts, "child killed after timeout")
	}
	return strings.Join(parts, ", ")
}

// runForked forks a child that runs p, waits at most timeout for it and
// returns what each op did. The child is always reaped.
func runForked(p *forkProgram, timeout time.Duration) (forkRun, error) {
	if p.sleep {
		return forkRun{}, fmt.Errorf("runForked: program sleeps")
	}
	mem, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANONYMOUS)
	if err != nil {
		return forkRun{}, fmt.Errorf("map result page: %w", err)
	}
	defer unix.Munmap(mem)
	p.res = (*[maxOps]opResult)(unsafe.Pointer(&mem[0]))
	defer func() { p.res = nil }()
	pid, err := forkChild(p)
	if err != nil {
		return forkRun{}, fmt.Errorf("fork: %w", err)
	}
	var run forkRun
	run.status, run.timedOut = waitChild(pid, timeout)
	for i := range p.n {
		r := p.res[i]
		run.ops = append(run.ops, opOutcome{label: p.labels[i], ran: r.ran != 0, r1: r.r1, errno: syscall.Errno(r.errno)})
	}
	return run, nil
}

// forkOne is runForked for a child with one op.
func forkOne(label string, trap uintptr, args ...uintptr) (opOutcome, error) {
	var p forkProgram
	p.add(label, trap, args...)
	run, err := runForked(&p, 2*time.Second)
	if err != nil {
		return opOutcome{label: label}, err
	}
	return run.ops[0], nil
}

// target is a forked child that sleeps until it is stopped: something to
// ptrace or read the memory of.
type target struct {
	pid  int
	once sync.Once
}

func startTarget() (*target, error) {
	p := &forkProgram{sleep: true, ts: unix.Timespec{Sec: 1}}
	pid, err := forkChild(p)
	if err != nil {
		return nil, fmt.Errorf("fork target: %w", err)
	}
	return &target{pid: pid}, nil
}

// stop kills and reaps the target.
func (t *target) stop() {
	t.once.Do(func() {
		_ = unix.Kill(t.pid, unix.SIGKILL)
		waitChild(t.pid, 2*time.Second)
	})
}

// waitChild waits for the child pid to exit, kills it if it has not after
// timeout, and reaps it.
func waitChild(pid int, timeout time.Duration) (status unix.WaitStatus, timedOut bool) {
	timedOut = awaitExit(pid, timeout, func() { _ = unix.Kill(pid, unix.SIGKILL) })
	for {
		_, err := unix.Wait4(pid, &status, unix.WALL, nil)
		if err != unix.EINTR {
			break
		}
	}
	untrack(pid)
	return status, timedOut
}

// awaitExit waits until the child pid has exited, without reaping it, and
// calls kill if it has not after timeout (then waits on). Because the
// child stays unreaped, its pid (and process group) cannot be reused by
// another process before kill runs.
func awaitExit(pid int, timeout time.Duration, kill func()) (timedOut bool) {
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		var info unix.Siginfo
		for {
			err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT|unix.WALL, nil)
			if err != unix.EINTR {
				return
			}
		}
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-exited:
		return false
	case <-timer.C:
		kill()
		<-exited
		return true
	}
}

// forked records the outcome of an op that must fail.
func (r *report) forked(o opOutcome) bool {
	switch {
	case !o.ran:
		r.notef("%s: not reached", o.label)
		return false
	case o.errno == 0:
		r.escapef("%s: succeeded", o.label)
		return true
	}
	r.notef("%s: %s", o.label, errnoText(o.errno))
	return false
}

// onThrowawayThread runs f on an OS thread of its own that exits when f
// returns, taking along whatever f changed about it (credentials,
// namespaces, ptrace relationships, I/O permissions).
func onThrowawayThread(f func()) (err error) {
	done := make(chan error, 1)
	go func() {
		defer func() {
			if v := recover(); v != nil {
				done <- fmt.Errorf("panic: %v", v)
				return
			}
			done <- nil
		}()
		// No UnlockOSThread: the runtime ends the thread with the goroutine.
		runtime.LockOSThread()
		f()
	}()
	return <-done
}

// runtimeKeepAlive keeps what raw system call arguments point into alive
// until the calls have returned.
func runtimeKeepAlive(vs ...any) {
	for _, v := range vs {
		runtime.KeepAlive(v)
	}
}

// warmThreads makes the runtime start a few spare OS threads, so that it
// need not create one while a fork bomb holds every pid of the cgroup
// (the runtime aborts when it cannot create a thread it needs).
func warmThreads(n int) {
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			ts := unix.Timespec{Nsec: 20 * int64(time.Millisecond)}
			_ = unix.Nanosleep(&ts, nil)
		})
	}
	wg.Wait()
}
