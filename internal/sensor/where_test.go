package sensor

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// envWhereDir is the directory the where child works in.
const envWhereDir = "SENSOR_TEST_WHERE_DIR"

// TestWhere plants the path evasions a sensor that records paths as
// given misses, and shows each event with the path the kernel really
// used: an open relative to a directory descriptor (/proc/self, then
// "environ") and relative to a working directory the process moved to,
// ".." and symlinks in a path, a change made through a descriptor, a
// rename between two directory descriptors, a symlink made relative to
// one, and an exec through a symlink with the loader variables of its
// environment (and none of the others). A child process is reported as
// a fork; the threads the Go runtime starts are not.
func TestWhere(t *testing.T) {
	s := loadOrSkip(t, Options{})
	cg := newCgroup(t)
	if err := s.Watch(cg.id, 0); err != nil {
		t.Fatal(err)
	}
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := startChild(t, &cg, "where", envWhereDir+"="+dir)
	evs := collectUntil(t, s, eventTimeout, exitOf(c.pid))
	ev := func(what string, match func(Event) bool) Event {
		return find(t, evs, what, func(e Event) bool { return e.PID == c.pid && match(e) })
	}
	proc := "/proc/" + strconv.Itoa(c.pid)
	target := filepath.Join(dir, "sub", "target")

	ev("environ relative to a /proc/self descriptor", func(e Event) bool {
		return e.Kind == KindOpen && e.Path == "environ" && e.Dirfd > 2 && e.Dir == proc && e.Opened == proc+"/environ"
	})
	ev("open relative to a working directory the process moved to", func(e Event) bool {
		return e.Kind == KindOpen && e.Path == "target" && e.Dirfd == fdcwd && e.Dir == filepath.Join(dir, "sub") && e.Opened == target
	})
	ev("'..' in an absolute path", func(e Event) bool {
		return e.Kind == KindOpen && e.Path == dir+"/sub/../sub/target" && e.Opened == target && e.Dir == ""
	})
	ev("open through a symlink", func(e Event) bool {
		return e.Kind == KindOpen && e.Path == filepath.Join(dir, "link") && e.Opened == target
	})
	ev("open that failed: only its directory", func(e Event) bool {
		return e.Kind == KindOpen && e.Path == "missing" && e.Result < 0 && e.Opened == "" && e.Dir == filepath.Join(dir, "sub")
	})
	ev("fchmod names its file", func(e Event) bool {
		return e.Kind == KindChmod && e.Path == "" && e.FD > 2 && e.Mode == 0o4755 && e.Opened == target
	})
	ev("renameat between two directory descriptors", func(e Event) bool {
		return e.Kind == KindRename && e.Path == "a" && e.NewPath == "b" && e.Dir == filepath.Join(dir, "sub") && e.NewDir == dir
	})
	ev("symlinkat relative to a directory descriptor", func(e Event) bool {
		return e.Kind == KindSymlink && e.NewPath == "sym" && e.NewDir == filepath.Join(dir, "sub") && e.Dir == ""
	})
	exe, err := filepath.EvalSymlinks("/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	x := find(t, evs, "exec through a symlink with LD_PRELOAD", func(e Event) bool {
		return e.Kind == KindExec && e.Result == 0 && e.Path == filepath.Join(dir, "true-link")
	})
	if x.Opened != exe {
		t.Errorf("exec through %s: Opened %q, want %q", x.Path, x.Opened, exe)
	}
	want := []string{"LD_PRELOAD=/nonexistent/preload.so", "LD_LIBRARY_PATH=" + dir}
	if !slices.Equal(x.Env, want) {
		t.Errorf("exec Env = %q, want %q (the loader variables and nothing else)", x.Env, want)
	}
	ev("a child process (os/exec: clone with CLONE_VFORK)", func(e Event) bool {
		return e.Kind == KindFork && e.Flags&unix.CLONE_VFORK != 0 && e.Result > 0
	})
	for _, e := range evs {
		if e.Kind == KindFork && e.Flags&unix.CLONE_THREAD != 0 {
			t.Errorf("a new thread reported as a process: %s", describe(e))
		}
	}
	f := find(t, evs, "failed exec relative to the working directory", func(e Event) bool {
		return e.Kind == KindExec && e.Result < 0 && e.Path == "no-such-program"
	})
	if f.Dir != filepath.Join(dir, "sub") || !slices.Equal(f.Env, []string{"LD_AUDIT=/nonexistent/audit.so"}) {
		t.Errorf("failed exec: Dir %q Env %q", f.Dir, f.Env)
	}
}

// childWhere makes each call of TestWhere in $SENSOR_TEST_WHERE_DIR.
func childWhere() error {
	dir := os.Getenv(envWhereDir)
	sub := filepath.Join(dir, "sub")
	target := filepath.Join(sub, "target")
	if err := os.Mkdir(sub, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(target, []byte("x"), 0o644); err != nil {
		return err
	}
	if err := os.Symlink(target, filepath.Join(dir, "link")); err != nil {
		return err
	}
	if err := os.Symlink("/bin/true", filepath.Join(dir, "true-link")); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(sub, "a"), nil, 0o644); err != nil {
		return err
	}
	closeAfter := func(fd int, err error) error {
		if err == nil {
			unix.Close(fd)
		}
		return err
	}
	procSelf, err := unix.Open("/proc/self", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	if err := closeAfter(unix.Openat(procSelf, "environ", unix.O_RDONLY|unix.O_CLOEXEC, 0)); err != nil {
		return err
	}
	if err := os.Chdir(sub); err != nil {
		return err
	}
	if err := closeAfter(unix.Open("target", unix.O_RDONLY|unix.O_CLOEXEC, 0)); err != nil {
		return err
	}
	if err := closeAfter(unix.Open(dir+"/sub/../sub/target", unix.O_RDONLY|unix.O_CLOEXEC, 0)); err != nil {
		return err
	}
	if err := closeAfter(unix.Open(filepath.Join(dir, "link"), unix.O_RDONLY|unix.O_CLOEXEC, 0)); err != nil {
		return err
	}
	if _, err := unix.Open("missing", unix.O_RDONLY|unix.O_CLOEXEC, 0); err == nil {
		return os.ErrExist
	}
	fd, err := unix.Open("target", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	if err := unix.Fchmod(fd, 0o4755); err != nil {
		return err
	}
	unix.Close(fd)
	subFD, err := unix.Open(sub, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	dirFD, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	if err := unix.Renameat(subFD, "a", dirFD, "b"); err != nil {
		return err
	}
	if err := unix.Symlinkat("/etc/passwd", subFD, "sym"); err != nil {
		return err
	}
	if err := exec.Command("/bin/true").Run(); err != nil {
		return err
	}
	env := []string{"PATH=/usr/bin:/bin", "SECRET_TOKEN=do-not-read", "LD_AUDIT=/nonexistent/audit.so"}
	if err := unix.Exec("no-such-program", []string{"x"}, env); err == nil {
		return os.ErrExist
	}
	// The loader warns that it cannot preload the missing object and
	// runs the program.
	env = []string{"LD_PRELOAD=/nonexistent/preload.so", "SECRET_TOKEN=do-not-read", "LD_LIBRARY_PATH=" + dir, "LD_LIBRARY_PATHX=no"}
	return unix.Exec(filepath.Join(dir, "true-link"), []string{"true"}, env)
}
