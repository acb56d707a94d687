package main

// Helper processes. The function re-executes itself as
//
//	bootstrap __moat_escape_child MODE ARGS...
//
// to run a check's dangerous part in a process of its own (and its own
// process group), which the function kills when it is done. Helpers report
// progress on stdout, one line at a time, so that the function knows how
// far one got even when the kernel killed it: a number per step, and
// "end REASON" when it stops by itself.

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// childArg is the hidden first argument that turns the binary into a
// helper.
const childArg = "__moat_escape_child"

func runChild(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "escape helper: no mode")
		return 2
	}
	ints := func(n int) ([]int, bool) {
		if len(args) != n+1 {
			return nil, false
		}
		var out []int
		for _, a := range args[1:] {
			v, err := strconv.Atoi(a)
			if err != nil {
				return nil, false
			}
			out = append(out, v)
		}
		return out, true
	}
	switch args[0] {
	case "sleep":
		if v, ok := ints(1); ok {
			time.Sleep(time.Duration(v[0]) * time.Second)
			return 0
		}
	case "leave":
		if len(args) == 3 {
			return childLeave(args[1], args[2])
		}
	case "memory":
		if v, ok := ints(1); ok {
			return childMemory(v[0])
		}
	case "filltmp":
		if len(args) == 4 {
			mb, err1 := strconv.Atoi(args[2])
			ballastMB, err2 := strconv.Atoi(args[3])
			if err1 == nil && err2 == nil {
				return childFillTmp(args[1], mb, ballastMB)
			}
		}
	case "forkbomb":
		if v, ok := ints(3); ok {
			return childForkBomb(v[0], time.Duration(v[1])*time.Millisecond, v[2])
		}
	}
	fmt.Fprintf(os.Stderr, "escape helper: bad arguments %q\n", args)
	return 2
}

// preferOOMKill offers this process to the OOM killer before the function
// (it may be refused: /proc is read-only to the function).
func preferOOMKill() {
	_ = os.WriteFile("/proc/self/oom_score_adj", []byte("1000"), 0)
}

// ballast maps and touches mb MiB and keeps it. The OOM killer picks the
// process with the most resident memory; a helper whose own pressure (tmpfs
// pages, forked children's page tables) is not resident memory carries
// ballast larger than the function, so that it, not the function, is
// picked. The mapping is shared, so that fork does not copy its page
// tables into every child.
func ballast(mb int) [][]byte {
	page := os.Getpagesize()
	var keep [][]byte
	for range mb {
		b, err := unix.Mmap(-1, 0, 1<<20, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANONYMOUS)
		if err != nil {
			break
		}
		for i := 0; i < len(b); i += page {
			b[i] = 1
		}
		keep = append(keep, b)
	}
	return keep
}

// childLeave starts a process that outlives this one and the invocation:
// in a new session, with nothing of the function's output open, sleeping
// for ten minutes, with marker in its command line so that the test can
// look for it among the host's processes. It writes the pid to pidFile and
// prints it, then exits without waiting, which orphans the sleeper.
func childLeave(marker, pidFile string) int {
	cmd := &exec.Cmd{
		Path:        selfExe(),
		Args:        []string{marker, childArg, "sleep", "600", marker},
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "start sleeper: %v\n", err)
		return 1
	}
	pid := strconv.Itoa(cmd.Process.Pid)
	if err := os.WriteFile(pidFile, []byte(pid+"\n"), 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "write %s: %v\n", pidFile, err)
	}
	fmt.Println(pid)
	return 0
}

// childMemory maps and touches memory one MiB at a time up to maxMB,
// printing the running total after each MiB.
func childMemory(maxMB int) int {
	preferOOMKill()
	page := os.Getpagesize()
	var keep [][]byte
	for mb := 1; mb <= maxMB; mb++ {
		b, err := unix.Mmap(-1, 0, 1<<20, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if err != nil {
			fmt.Printf("end mmap: %s\n", errText(err))
			return 1
		}
		for i := 0; i < len(b); i += page {
			b[i] = 1
		}
		keep = append(keep, b)
		fmt.Println(mb)
	}
	fmt.Printf("end reached %d MiB\n", maxMB)
	runtime.KeepAlive(keep)
	return 0
}

// childFillTmp writes to path one MiB at a time up to maxMB, printing the
// running total after each MiB. It unlinks the file first, so that its
// blocks go back to /tmp the moment this process ends, however it ends.
func childFillTmp(path string, maxMB, ballastMB int) int {
	preferOOMKill()
	defer runtime.KeepAlive(ballast(ballastMB))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		fmt.Printf("end create %s: %s\n", path, errText(err))
		return 1
	}
	if err := os.Remove(path); err != nil {
		fmt.Fprintf(os.Stderr, "unlink %s: %v (the function removes it)\n", path, err)
	}
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = byte(i)
	}
	for mb := 1; mb <= maxMB; mb++ {
		if _, err := f.Write(chunk); err != nil {
			fmt.Printf("end write: %s\n", errText(err))
			return 0
		}
		fmt.Println(mb)
	}
	fmt.Printf("end reached %d MiB\n", maxMB)
	return 0
}

// childForkBomb forks sleeping children (raw forks, fork.go) until fork
// fails, limit is reached or d has passed, prints "end COUNT REASON", then
// kills and reaps every child. The children die with this process too
// (PR_SET_PDEATHSIG), and the function kills the process group as well.
func childForkBomb(limit int, d time.Duration, ballastMB int) int {
	preferOOMKill()
	defer runtime.KeepAlive(ballast(ballastMB))
	runtime.LockOSThread()
	all, old := ^uint64(0), uint64(0)
	sigprocmask(unix.SIG_SETMASK, &all, &old)
	prog := &forkProgram{sleep: true, ts: unix.Timespec{Sec: 1}}
	pids := make([]int, 0, limit)
	deadline := time.Now().Add(d)
	reason := fmt.Sprintf("reached fork_limit %d", limit)
	for len(pids) < limit {
		if time.Now().After(deadline) {
			reason = fmt.Sprintf("time limit %s", d)
			break
		}
		pid, errno := rawFork(prog)
		if errno != 0 {
			reason = "fork: " + errnoText(errno)
			break
		}
		pids = append(pids, int(pid))
		if len(pids)%64 == 0 {
			fmt.Println(len(pids))
		}
	}
	fmt.Printf("end %d %s\n", len(pids), reason)
	for _, pid := range pids {
		_ = unix.Kill(pid, unix.SIGKILL)
	}
	for range pids {
		var ws unix.WaitStatus
		if _, err := unix.Wait4(-1, &ws, unix.WALL, nil); err == unix.ECHILD {
			break
		}
	}
	sigprocmask(unix.SIG_SETMASK, &old, nil)
	runtime.KeepAlive(prog)
	return 0
}
