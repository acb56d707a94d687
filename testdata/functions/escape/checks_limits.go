package main

// Checks on resource limits: open files, /tmp, memory and processes. The
// last three run in a helper process (child.go) so that the limit hits the
// helper, not the function, and everything they take is given back when
// the helper is killed.

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Limits the sandbox promises, and how far past them a check goes to
// prove that a limit is missing.
const (
	fdLimit       = 1024
	fdTarget      = fdLimit + 76 // open files to hold at most
	pidsLimit     = 1024
	pidsEscape    = 1100 // a fork bomb that creates more escaped the pids limit
	memorySlackMB = 16   // allocations beyond memory_mb that are still tolerated
	overshootMB   = 64   // how far past a size limit the helpers try to go
	tmpSlackMB    = 2    // writes beyond the /tmp size that are still tolerated
	forkBombTime  = 3 * time.Second
)

// ballastMB is how much resident memory a helper carries so that the OOM
// killer prefers it to the function: the function's own, plus 8 MiB.
func ballastMB() int {
	kb, err := strconv.Atoi(strings.TrimSuffix(readStatus("self")["VmRSS"], " kB"))
	if err != nil {
		return 32
	}
	return kb>>10 + 8
}

func checkFDExhaustion(ctx context.Context, p *params) *report {
	r := &report{}
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		r.notef("getrlimit(RLIMIT_NOFILE): %s", errText(err))
	} else {
		r.notef("RLIMIT_NOFILE soft %d hard %d", lim.Cur, lim.Max)
	}
	open := 0
	if entries, err := os.ReadDir("/proc/self/fd"); err == nil {
		open = len(entries) - 1 // the directory's own descriptor
	}
	path := "/dev/null"
	if _, err := os.Stat(path); err != nil {
		path = "/"
	}
	fds := make([]int, 0, fdTarget)
	var stop error
	for open+len(fds) < fdTarget {
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			stop = err
			break
		}
		fds = append(fds, fd)
	}
	for _, fd := range fds {
		unix.Close(fd)
	}
	total := open + len(fds)
	if stop == nil {
		r.escapef("held %d open files (%d already open + %d of %s) without hitting a limit; stopped there", total, open, len(fds), path)
	} else if total > fdLimit {
		r.escapef("held %d open files (%d already open + %d of %s) before %s", total, open, len(fds), path, errText(stop))
	} else {
		r.notef("held %d open files (%d already open + %d of %s), then open: %s", total, open, len(fds), path, errText(stop))
	}
	// Raising the hard limit needs CAP_SYS_RESOURCE.
	if lim.Max < 1<<20 {
		raised := unix.Rlimit{Cur: lim.Cur, Max: lim.Max + fdLimit}
		if r.try(fmt.Sprintf("prlimit(RLIMIT_NOFILE, hard %d)", raised.Max), unix.Prlimit(0, unix.RLIMIT_NOFILE, &raised, nil)) {
			r.notef("restore: %s", errText(unix.Prlimit(0, unix.RLIMIT_NOFILE, &lim, nil)))
		}
	}
	return r
}

// tmpfsMagic is TMPFS_MAGIC.
const tmpfsMagic = 0x01021994

func checkFillTmp(ctx context.Context, p *params) *report {
	r := &report{}
	limitMB := p.TmpLimitMB
	var st unix.Statfs_t
	if err := unix.Statfs("/tmp", &st); err != nil {
		r.notef("statfs /tmp: %s", errText(err))
	} else {
		sizeMB := int(uint64(st.Blocks) * uint64(st.Bsize) >> 20)
		r.notef("statfs /tmp: %d MiB, %d MiB free, tmpfs %v", sizeMB, uint64(st.Bavail)*uint64(st.Bsize)>>20, st.Type == tmpfsMagic)
		switch {
		case limitMB == 0:
			limitMB = sizeMB
			r.notef("no tmp_limit_mb given: taking the size statfs reports")
		case sizeMB > limitMB+tmpSlackMB:
			r.escapef("/tmp is %d MiB, larger than tmp_limit_mb %d", sizeMB, limitMB)
		}
	}
	if limitMB == 0 {
		limitMB = 512
		r.notef("no size known: assuming 512 MiB")
	}
	maxMB := limitMB + overshootMB
	path := fmt.Sprintf("/tmp/moat-escape-fill-%s-%d", p.Nonce, os.Getpid())
	defer os.Remove(path)
	h := runHelper(15*time.Second, "filltmp", path, strconv.Itoa(maxMB), strconv.Itoa(ballastMB()))
	if h.err != nil {
		r.notef("start helper: %s", errText(h.err))
		return r
	}
	written, _ := lastInt(h.out)
	how := endLine(h.out)
	if how == "" {
		how = "helper " + exitText(h.state)
		if h.stderr != "" {
			how += ": " + h.stderr
		}
	}
	if h.timedOut {
		how += " (killed after its timeout)"
	}
	if written > limitMB+tmpSlackMB {
		r.escapef("wrote %d MiB to /tmp, more than its %d MiB; stopped by: %s", written, limitMB, how)
	} else {
		r.notef("wrote %d MiB to /tmp (size %d MiB); stopped by: %s", written, limitMB, how)
	}
	return r
}

func checkMemoryBomb(ctx context.Context, p *params) *report {
	r := &report{}
	maxMB := p.MemoryMB + overshootMB
	h := runHelper(15*time.Second, "memory", strconv.Itoa(maxMB))
	if h.err != nil {
		r.notef("start helper: %s", errText(h.err))
		return r
	}
	allocated, _ := lastInt(h.out)
	how := exitText(h.state)
	if end := endLine(h.out); end != "" {
		how = end + ", " + how
	}
	if h.timedOut {
		how += " (killed after its timeout)"
	}
	if allocated > p.MemoryMB+memorySlackMB {
		r.escapef("a child allocated and touched %d MiB, more than memory_mb %d + %d; %s", allocated, p.MemoryMB, memorySlackMB, how)
	} else {
		r.notef("a child allocated and touched %d MiB of at most %d (memory_mb %d); %s", allocated, maxMB, p.MemoryMB, how)
	}
	r.notef("the function survived")
	return r
}

func checkForkBomb(ctx context.Context, p *params) *report {
	r := &report{}
	warmThreads(8)
	h := runHelper(forkBombTime+12*time.Second, "forkbomb", strconv.Itoa(p.ForkLimit), strconv.Itoa(int(forkBombTime.Milliseconds())), strconv.Itoa(ballastMB()))
	if h.err != nil {
		r.notef("start helper: %s", errText(h.err))
		return r
	}
	// Without an end line the count is the last progress line, printed
	// every 64 forks: a lower bound.
	created, _ := lastInt(h.out)
	count := fmt.Sprintf("at least %d", created)
	how := endLine(h.out)
	if how == "" {
		how = "helper " + exitText(h.state)
		if h.stderr != "" {
			how += ": " + h.stderr
		}
	} else if n, rest, ok := strings.Cut(how, " "); ok {
		if v, err := strconv.Atoi(n); err == nil {
			created, how = v, rest
			count = n
		}
	}
	if h.timedOut {
		how += " (killed after its timeout)"
	}
	switch {
	case created > pidsEscape:
		r.escapef("a child forked %s processes, more than the pids limit %d; stopped by: %s", count, pidsLimit, how)
	case p.ForkLimit <= pidsEscape && created >= p.ForkLimit:
		r.notef("a child forked %s processes and stopped at fork_limit %d, too few to judge the pids limit", count, p.ForkLimit)
	default:
		r.notef("a child forked %s processes; stopped by: %s", count, how)
	}
	reapOrphans()
	if procs, err := listProcs(); err == nil {
		r.notef("afterwards %d processes are visible", len(procs))
	}
	return r
}
