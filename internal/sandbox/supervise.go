package sandbox

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"moat.dev/moat/internal/seccomp"
)

// execSupervisor answers, for one instance in enforce mode, every execve
// and execveat its processes make: the instance's seccomp filter hands
// each call to it (SECCOMP_RET_USER_NOTIF) and the calling thread waits
// in the kernel until it answers. It reads the path from the caller's
// memory, makes it absolute as the instance sees it, decides with the
// Exec patterns or AllowExec, and lets the call continue or fails it
// with EPERM. Every notification is answered, a refusal when anything
// goes wrong; a call whose caller died or left it needs no answer.
//
// Continuing a call is no guarantee about what runs: the kernel reads
// the path again after the answer, and another thread of the caller may
// have rewritten it in between. Landlock is what holds then: it checks
// the file the kernel actually opens for execution (see execRules), so
// a swapped path can only reach a file the approved profile lists or an
// interpreter one of them needs.
type execSupervisor struct {
	l         *seccomp.Listener
	patterns  execPatterns
	allow     func(path string, pid int) bool
	denied    func(path string, pid int)
	bootstrap string // the bootstrap as the instance sees it
	initPid   int    // host pid of the instance's init
	log       *slog.Logger
	done      chan struct{}
	// initExec is set until the first notification, which can only be
	// the init's own exec of the bootstrap: nothing else runs in the
	// instance before it.
	initExec bool
}

// errNotExec: the filter only hands on execve and execveat.
var errNotExec = errors.New("not an exec call")

func startExecSupervisor(l *seccomp.Listener, enf *Enforcement, denied func(path string, pid int), bootstrap string, initPid int, log *slog.Logger) *execSupervisor {
	s := &execSupervisor{
		l:         l,
		patterns:  newExecPatterns(append([]string{bootstrap}, enf.Exec...)),
		allow:     enf.AllowExec,
		denied:    denied,
		bootstrap: bootstrap,
		initPid:   initPid,
		log:       log,
		done:      make(chan struct{}),
		initExec:  true,
	}
	go s.run()
	return s
}

func (s *execSupervisor) run() {
	defer close(s.done)
	for {
		n, err := s.l.Receive()
		switch {
		case err == nil:
			s.handle(n)
		case errors.Is(err, seccomp.ErrListenerClosed), errors.Is(err, io.EOF):
			// Closed, or no process of the instance is left.
			return
		default:
			// Nobody would answer the instance's execs any more: close
			// the listener, so that they fail (ENOSYS) instead of
			// waiting.
			s.log.Error("exec supervisor stops; the instance can no longer exec", "err", err)
			s.l.Close()
			return
		}
	}
}

// stop closes the listener and waits for the supervisor's goroutine,
// which may be inside an AllowExec or Observer.ExecRefused callback.
func (s *execSupervisor) stop() error {
	s.l.Close()
	select {
	case <-s.done:
		return nil
	case <-time.After(10 * time.Second):
		return errors.New("exec supervisor did not stop: an AllowExec or Observer.ExecRefused callback blocks")
	}
}

func (s *execSupervisor) handle(n seccomp.Notification) {
	if s.initExec {
		s.initExec = false
		// The init's exec of the bootstrap is moat's own: allowed
		// without asking, even if the path cannot be read.
		if pid, err := threadGroup(n.Pid); err == nil && pid == s.initPid && s.l.Valid(n.ID) {
			s.answer(n.ID, true)
			return
		}
	}
	p, err := execPath(n)
	pid := n.Pid
	if s.allow != nil || s.denied != nil {
		tg, terr := threadGroup(n.Pid)
		if terr == nil {
			pid = tg
		}
		err = cmp.Or(err, terr)
	}
	// Whatever was read is only the caller's if the call still waits:
	// otherwise the pid may already name another process.
	if !s.l.Valid(n.ID) {
		return
	}
	ok := err == nil && s.decide(p, pid)
	if s.answer(n.ID, ok) && !ok && s.denied != nil {
		s.tell(p, pid)
	}
}

// decide asks AllowExec, or matches the Exec patterns. A panicking
// AllowExec refuses the call instead of taking moat down.
func (s *execSupervisor) decide(p string, pid int) (ok bool) {
	if s.allow == nil {
		return s.patterns.match(p)
	}
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("exec supervisor: AllowExec panicked; the exec is refused", "panic", r)
			ok = false
		}
	}()
	return s.allow(p, pid)
}

func (s *execSupervisor) tell(p string, pid int) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("exec supervisor: Observer.ExecRefused panicked", "panic", r)
		}
	}()
	s.denied(p, pid)
}

// answer lets the call continue or fails it with EPERM, and reports
// whether the caller got the answer.
func (s *execSupervisor) answer(id uint64, allow bool) bool {
	var err error
	if allow {
		err = s.l.Continue(id)
	} else {
		err = s.l.Fail(id, unix.EPERM)
	}
	if err != nil && !errors.Is(err, seccomp.ErrGone) {
		s.log.Error("exec supervisor: answer", "err", err)
	}
	return err == nil
}

// execPath returns the absolute path, as the instance sees it, that an
// execve or execveat call names, without following symlinks. With an
// error the path may still be set (see execTarget).
func execPath(n seccomp.Notification) (string, error) {
	dirfd, addr, flags := int32(unix.AT_FDCWD), n.Args[0], 0
	switch n.Nr {
	case unix.SYS_EXECVE:
	case unix.SYS_EXECVEAT:
		dirfd, addr, flags = int32(n.Args[0]), n.Args[1], int(n.Args[4])
	default:
		return "", errNotExec
	}
	raw, err := readCString(n.Pid, addr, unix.PathMax)
	if err != nil {
		return "", fmt.Errorf("read path: %w", err)
	}
	if raw == "" && flags&unix.AT_EMPTY_PATH == 0 {
		return "", unix.ENOENT
	}
	var base string
	if !path.IsAbs(raw) {
		// The caller's working directory or directory fd, as the
		// kernel names it from inside the instance's own root (the
		// instance root is the root of its mount namespace, so the
		// name stops there).
		link := "/proc/" + strconv.Itoa(n.Pid) + "/cwd"
		if dirfd != unix.AT_FDCWD {
			link = "/proc/" + strconv.Itoa(n.Pid) + "/fd/" + strconv.Itoa(int(dirfd))
		}
		if base, err = os.Readlink(link); err != nil {
			return "", err
		}
	}
	return execTarget(raw, base)
}

// Reasons execTarget gives no path.
var (
	errDotDot = errors.New("path has a \"..\" element")
	errNoBase = errors.New("relative path against no directory")
)

// execTarget joins raw, the path an exec call gave, with base, the
// directory it is relative to (ignored when raw is absolute; the file
// itself for execveat with AT_EMPTY_PATH and an empty raw), and cleans
// the result. A path with a ".." element is refused: the kernel resolves
// ".." after symlinks, which a lexical clean cannot, so the cleaned name
// could match an Exec pattern while the kernel runs something else. A
// base that is no absolute path (a pipe, a deleted file) is refused too.
// With errDotDot, the joined path is returned for the record.
func execTarget(raw, base string) (string, error) {
	p := raw
	if !path.IsAbs(p) {
		if !path.IsAbs(base) || strings.HasSuffix(base, " (deleted)") {
			return "", errNoBase
		}
		if p == "" {
			p = base
		} else {
			p = base + "/" + p
		}
	}
	for el := range strings.SplitSeq(p, "/") {
		if el == ".." {
			return p, errDotDot
		}
	}
	return path.Clean(p), nil
}

// readCString reads a NUL-terminated string of fewer than max bytes at
// addr in the memory of process (or thread) pid, page by page, so that a
// string ending just before an unmapped page is read whole.
func readCString(pid int, addr uint64, max int) (string, error) {
	const page = 4096
	var chunk [page]byte
	var out []byte
	for len(out) < max {
		n := min(page-int(addr%page), max-len(out))
		local := []unix.Iovec{{Base: &chunk[0], Len: uint64(n)}}
		remote := []unix.RemoteIovec{{Base: uintptr(addr), Len: n}}
		got, err := unix.ProcessVMReadv(pid, local, remote, 0)
		if err != nil {
			return "", err
		}
		if got <= 0 {
			return "", unix.EFAULT
		}
		if i := bytes.IndexByte(chunk[:got], 0); i >= 0 {
			return string(append(out, chunk[:i]...)), nil
		}
		out = append(out, chunk[:got]...)
		addr += uint64(got)
	}
	return "", unix.ENAMETOOLONG
}

// threadGroup returns the process id (thread group) of host thread tid.
func threadGroup(tid int) (int, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(tid) + "/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "Tgid:"); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, fmt.Errorf("no Tgid in /proc/%d/status", tid)
}

// execPatterns matches exec paths against an approved profile's Exec
// items, as the profile package does: an item equals the path, or ends
// in "/**" and the path lies beneath its directory, or holds a "*" and
// matches as a path.Match pattern ("/usr/bin/*": every file directly in
// /usr/bin). Items that are not absolute are ignored.
type execPatterns struct {
	exact map[string]bool
	trees []string // "dir/" of "dir/**" items
	globs []string
}

func newExecPatterns(items []string) execPatterns {
	p := execPatterns{exact: map[string]bool{}}
	for _, it := range items {
		switch {
		case !path.IsAbs(it):
		case strings.HasSuffix(it, "/**"):
			p.trees = append(p.trees, strings.TrimSuffix(it, "**"))
		case strings.Contains(it, "*"):
			p.globs = append(p.globs, it)
		default:
			p.exact[path.Clean(it)] = true
		}
	}
	return p
}

func (p execPatterns) match(file string) bool {
	if p.exact[file] {
		return true
	}
	for _, t := range p.trees {
		if strings.HasPrefix(file, t) {
			return true
		}
	}
	for _, g := range p.globs {
		if ok, _ := path.Match(g, file); ok {
			return true
		}
	}
	return false
}
