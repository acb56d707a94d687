package main

// Checks on processes: what the function can see, signal, trace or write
// into, and a process it tries to leave behind.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// children are the pids of the processes this function started and will
// reap itself; reapOrphans leaves them alone.
var children = struct {
	mu   sync.Mutex
	pids map[int]bool
}{pids: map[int]bool{}}

func untrack(pid int) {
	children.mu.Lock()
	delete(children.pids, pid)
	children.mu.Unlock()
}

// startTracked starts cmd and records its pid before anything can reap it.
func startTracked(cmd *exec.Cmd) error {
	children.mu.Lock()
	defer children.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return err
	}
	children.pids[cmd.Process.Pid] = true
	return nil
}

// reapOrphans reaps zombies that were reparented to the function. That
// only happens when it is pid 1 of its namespace, as in the sandbox, where
// a helper's children that outlive it (the fork bomb's, when it is killed)
// would otherwise stay zombies and hold pids.
func reapOrphans() {
	if os.Getpid() != 1 {
		return
	}
	children.mu.Lock()
	defer children.mu.Unlock()
	procs, _ := listProcs()
	for _, pr := range procs {
		if pr.ppid == 1 && pr.state == 'Z' && !children.pids[pr.pid] {
			var ws unix.WaitStatus
			_, _ = unix.Wait4(pr.pid, &ws, unix.WNOHANG|unix.WALL, nil)
		}
	}
}

// procEntry is what /proc/<pid>/stat says about a process.
type procEntry struct {
	pid, ppid int
	comm      string
	state     byte
}

// parseStat parses the start of /proc/<pid>/stat: "pid (comm) state ppid
// ...", where comm may hold spaces and parentheses.
func parseStat(data string) (procEntry, error) {
	open, end := strings.IndexByte(data, '('), strings.LastIndexByte(data, ')')
	if open < 0 || end < open {
		return procEntry{}, errors.New("stat: no (comm)")
	}
	pid, err := strconv.Atoi(strings.TrimSpace(data[:open]))
	if err != nil {
		return procEntry{}, fmt.Errorf("stat: pid: %w", err)
	}
	rest := strings.Fields(data[end+1:])
	if len(rest) < 2 || len(rest[0]) != 1 {
		return procEntry{}, errors.New("stat: no state and ppid")
	}
	ppid, err := strconv.Atoi(rest[1])
	if err != nil {
		return procEntry{}, fmt.Errorf("stat: ppid: %w", err)
	}
	return procEntry{pid: pid, ppid: ppid, comm: data[open+1 : end], state: rest[0][0]}, nil
}

// listProcs reads every process in /proc.
func listProcs() ([]procEntry, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var procs []procEntry
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // exited meanwhile
		}
		if pr, err := parseStat(string(data)); err == nil {
			procs = append(procs, pr)
		}
	}
	return procs, nil
}

// ownTree is self, its ancestors and its descendants among procs: every
// process that belongs to the instance when the instance is a pid
// namespace whose pid 1 is the function or the function's parent.
func ownTree(procs []procEntry, self int) map[int]bool {
	parent := map[int]int{}
	kids := map[int][]int{}
	for _, pr := range procs {
		parent[pr.pid] = pr.ppid
		kids[pr.ppid] = append(kids[pr.ppid], pr.pid)
	}
	own := map[int]bool{self: true}
	for pid, ok := parent[self]; ok && pid != 0 && !own[pid]; pid, ok = parent[pid] {
		own[pid] = true
	}
	queue := []int{self}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		for _, kid := range kids[pid] {
			if !own[kid] {
				own[kid] = true
				queue = append(queue, kid)
			}
		}
	}
	return own
}

func describeProcs(procs []procEntry, max int) string {
	var parts []string
	for i, pr := range procs {
		if i == max {
			parts = append(parts, fmt.Sprintf("and %d more", len(procs)-max))
			break
		}
		parts = append(parts, fmt.Sprintf("%d(%s)", pr.pid, pr.comm))
	}
	return strings.Join(parts, " ")
}

func checkSeeHostProcesses(ctx context.Context, p *params) *report {
	r := &report{}
	self := os.Getpid()
	if link, err := os.Readlink("/proc/self"); err != nil {
		r.notef("readlink /proc/self: %s", errText(err))
	} else if link != strconv.Itoa(self) {
		r.escapef("/proc/self is %s but this process is pid %d: /proc belongs to another pid namespace", link, self)
	}
	procs, err := listProcs()
	if err != nil {
		r.notef("list /proc: %s", errText(err))
		return r
	}
	own := ownTree(procs, self)
	var foreign []procEntry
	for _, pr := range procs {
		if !own[pr.pid] {
			foreign = append(foreign, pr)
		}
	}
	r.notef("this process is pid %d; %d processes visible: %s", self, len(procs), describeProcs(procs, 20))
	if len(foreign) > 0 {
		r.escapef("%d processes outside this process's own tree are visible: %s", len(foreign), describeProcs(foreign, 20))
	}
	for _, pid := range p.HostPIDs {
		_, err := os.Stat("/proc/" + strconv.Itoa(pid))
		switch {
		case err != nil:
			r.notef("host pid %d: /proc/%d: %s", pid, pid, errText(err))
		case own[pid]:
			r.notef("host pid %d: /proc/%d exists but is this instance's own process %s", pid, pid, commOf(pid))
		default:
			r.escapef("host pid %d: /proc/%d is visible (%s)", pid, pid, commOf(pid))
		}
	}
	return r
}

func commOf(pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return "comm: " + errText(err)
	}
	return strings.TrimSpace(string(data))
}

func checkSignalHost(ctx context.Context, p *params) *report {
	r := &report{}
	self := os.Getpid()
	if self == 1 {
		r.notef("kill(1, 0): %s (pid 1 is this process)", errText(unix.Kill(1, 0)))
	} else {
		r.notef("kill(1, 0): %s (pid 1 is %s)", errText(unix.Kill(1, 0)), commOf(1))
	}
	// Signal 0 to every process it may signal, itself excepted: ESRCH
	// when there is none.
	r.notef("kill(-1, 0): %s", errText(unix.Kill(-1, 0)))
	if len(p.HostPIDs) == 0 {
		r.notef("no host_pids given")
	}
	var own map[int]bool
	if procs, err := listProcs(); err == nil {
		own = ownTree(procs, self)
	}
	for _, pid := range p.HostPIDs {
		err := unix.Kill(pid, 0)
		switch {
		case err != nil && err != unix.EPERM:
			r.notef("kill(%d, 0): %s", pid, errText(err))
		case own[pid]:
			r.notef("kill(%d, 0): %s; that pid is this instance's own process %s", pid, errText(err), commOf(pid))
		default:
			// EPERM too: the process exists in this pid namespace.
			r.escapef("kill(%d, 0): %s: a host process is reachable (%s)", pid, errText(err), commOf(pid))
		}
	}
	return r
}

func checkPtrace(ctx context.Context, p *params) *report {
	r := &report{}
	if o, err := forkOne("ptrace(PTRACE_TRACEME) in a forked child", unix.SYS_PTRACE, unix.PTRACE_TRACEME, 0, 0, 0); err != nil {
		r.notef("fork for PTRACE_TRACEME: %s", errText(err))
	} else {
		r.forked(o)
	}
	if t, err := startTarget(); err != nil {
		r.notef("%s", err)
	} else {
		// Attach, wait for the stop and detach on one thread: the tracer
		// is a thread, and the thread's exit detaches whatever is left.
		err := onThrowawayThread(func() {
			if !r.try(fmt.Sprintf("ptrace(PTRACE_ATTACH, %d) (a forked child)", t.pid), unix.PtraceAttach(t.pid)) {
				return
			}
			var ws unix.WaitStatus
			if _, err := unix.Wait4(t.pid, &ws, unix.WALL, nil); err != nil {
				r.notef("wait for the tracee's stop: %s", errText(err))
			} else {
				r.notef("tracee stopped: %v (%v)", ws.Stopped(), ws.StopSignal())
			}
			r.notef("ptrace(PTRACE_DETACH, %d): %s", t.pid, errText(unix.PtraceDetach(t.pid)))
		})
		if err != nil {
			r.notef("attach: %s", err)
		}
		t.stop()
	}
	// PTRACE_SEIZE does not stop pid 1, should it succeed; the throwaway
	// tracer thread's exit detaches it again.
	what := "ptrace(PTRACE_SEIZE, 1)"
	if os.Getpid() == 1 {
		what += " (pid 1 is this process)"
	} else {
		what += fmt.Sprintf(" (pid 1 is %s)", commOf(1))
	}
	if err := onThrowawayThread(func() { r.try(what, unix.PtraceSeize(1)) }); err != nil {
		r.notef("seize: %s", err)
	}
	return r
}

// memProbe is memory with a known address in every forked copy of this
// process.
var memProbe = [8]byte{'m', 'o', 'a', 't', '-', 'm', 'e', 'm'}

func checkProcMemOther(ctx context.Context, p *params) *report {
	r := &report{}
	if t, err := startTarget(); err != nil {
		r.notef("%s", err)
	} else {
		path := fmt.Sprintf("/proc/%d/mem", t.pid)
		addr := int64(uintptr(unsafe.Pointer(&memProbe)))
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			r.notef("open %s (a forked child) for writing: %s", path, errText(err))
		} else {
			buf := make([]byte, len(memProbe))
			n, rerr := f.ReadAt(buf, addr)
			_, werr := f.WriteAt(buf[:n], addr)
			r.escapef("open %s (a forked child) for writing: succeeded; read %d bytes at %#x: %s; wrote them back: %s",
				path, n, addr, errText(rerr), errText(werr))
			f.Close()
		}
		t.stop()
	}
	if os.Getpid() == 1 {
		r.notef("/proc/1/mem: pid 1 is this process")
	} else {
		openWriteAttempt(r, "/proc/1/mem")
	}
	return r
}

func checkProcessVM(ctx context.Context, p *params) *report {
	r := &report{}
	t, err := startTarget()
	if err != nil {
		r.notef("%s", err)
		return r
	}
	defer t.stop()
	buf := make([]byte, len(memProbe))
	local := []unix.Iovec{{Base: &buf[0]}}
	local[0].SetLen(len(buf))
	remote := []unix.RemoteIovec{{Base: uintptr(unsafe.Pointer(&memProbe)), Len: len(memProbe)}}
	n, err := unix.ProcessVMReadv(t.pid, local, remote, 0)
	if r.try(fmt.Sprintf("process_vm_readv(%d) (a forked child)", t.pid), err) {
		r.notef("read %d bytes: %q", n, buf[:n])
	}
	_, err = unix.ProcessVMWritev(t.pid, local, remote, 0)
	r.try(fmt.Sprintf("process_vm_writev(%d) (the same bytes back)", t.pid), err)
	return r
}

// leftPIDFile is where leave_process writes the pid it leaves behind.
const leftPIDFile = "/tmp/left.pid"

func leftoverMarker(nonce string) string { return "moat-escape-leftover-" + nonce }

func checkLeaveProcess(ctx context.Context, p *params) *report {
	r := &report{}
	marker := leftoverMarker(p.Nonce)
	h := runHelper(3*time.Second, "leave", marker, leftPIDFile)
	if h.err != nil {
		r.notef("start helper: %s", errText(h.err))
		return r
	}
	pid, err := strconv.Atoi(strings.TrimSpace(h.out))
	if err != nil {
		r.notef("helper %s; printed %q; stderr %q", h.state, h.out, h.stderr)
		return r
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	switch {
	case err != nil:
		r.notef("left pid %d, but /proc/%d/cmdline: %s", pid, pid, errText(err))
	case !bytes.Contains(cmdline, []byte(marker)):
		r.notef("left pid %d, but its command line %q lacks the marker", pid, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
	default:
		status := readStatus(strconv.Itoa(pid))
		r.notef("left pid %d (NSpid %s, PPid %s) sleeping 600 s with %s in its command line, in a session of its own; pid written to %s; "+
			"the test must find no host process with that marker once the instance is gone", pid, status["NSpid"], status["PPid"], marker, leftPIDFile)
	}
	return r
}

// readStatus parses /proc/<pid>/status into its fields.
func readStatus(pid string) map[string]string {
	data, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return map[string]string{}
	}
	return parseStatus(string(data))
}

func parseStatus(data string) map[string]string {
	fields := map[string]string{}
	for line := range strings.SplitSeq(data, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok {
			fields[k] = strings.Join(strings.Fields(v), " ")
		}
	}
	return fields
}

// helperRun is the outcome of a helper process (child.go).
type helperRun struct {
	out, stderr string
	state       *os.ProcessState
	err         error // starting it
	timedOut    bool
}

// runHelper runs this binary as a helper in a process group of its own,
// kills the whole group after timeout (and, in any case, anything the
// helper left in its group once it has exited), and returns what it
// printed.
func runHelper(timeout time.Duration, args ...string) helperRun {
	cmd := exec.Command(selfExe(), append([]string{childArg}, args...)...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = time.Second
	if err := startTracked(cmd); err != nil {
		return helperRun{err: err}
	}
	pid := cmd.Process.Pid
	var h helperRun
	h.timedOut = awaitExit(pid, timeout, func() { _ = unix.Kill(-pid, unix.SIGKILL) })
	// The helper is not reaped yet, so its process group still exists.
	_ = unix.Kill(-pid, unix.SIGKILL)
	_ = cmd.Wait()
	untrack(pid)
	h.state = cmd.ProcessState
	h.out = out.String()
	h.stderr = strings.TrimSpace(stderr.String())
	if len(h.stderr) > 300 {
		h.stderr = h.stderr[:300] + "..."
	}
	return h
}

// selfExe is the path that runs this binary again.
func selfExe() string {
	if _, err := os.Stat("/proc/self/exe"); err == nil {
		return "/proc/self/exe"
	}
	if exe, err := os.Executable(); err == nil {
		return exe
	}
	return os.Args[0]
}

// exitText describes how a process ended.
func exitText(state *os.ProcessState) string {
	if state == nil {
		return "did not run"
	}
	if ws, ok := state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return "killed by signal " + unix.SignalName(ws.Signal()) + " (" + ws.Signal().String() + ")"
	}
	return fmt.Sprintf("exited with status %d", state.ExitCode())
}

// lastInt is the last line of out that is a number, and whether there is
// one.
func lastInt(out string) (int, bool) {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for _, line := range slices.Backward(lines) {
		if n, err := strconv.Atoi(strings.TrimSpace(line)); err == nil {
			return n, true
		}
	}
	return 0, false
}

// endLine is what follows "end " on the helper's last such line.
func endLine(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for _, line := range slices.Backward(lines) {
		if rest, ok := strings.CutPrefix(line, "end "); ok {
			return rest
		}
	}
	return ""
}
