package sensor

import (
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// envFSDir is where the fschanges child changes things.
const envFSDir = "SENSOR_TEST_FS_DIR"

// fdcwd is AT_FDCWD as the events carry it.
const fdcwd = -100

// TestFileSystemChanges: every kind of change to the file system beyond
// open, unlink, rename and chmod is reported with its fields: mkdir,
// hard and symbolic links, truncate and ftruncate, utimensat and
// futimens, mknod, chown by path and by descriptor, and fchmod (with the
// setuid bit); so is a thread's new name (prctl PR_SET_NAME).
func TestFileSystemChanges(t *testing.T) {
	s := loadOrSkip(t, Options{})
	cg := newCgroup(t)
	if err := s.Watch(cg.id, 0); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c := startChild(t, &cg, "fschanges", envFSDir+"="+dir)
	evs := collectUntil(t, s, eventTimeout, exitOf(c.pid))
	f := filepath.Join(dir, "f")
	ev := func(what string, match func(Event) bool) Event {
		return find(t, evs, what, func(e Event) bool { return e.PID == c.pid && e.Result >= 0 && match(e) })
	}
	ev("mkdir", func(e Event) bool {
		return e.Kind == KindMkdir && e.Path == filepath.Join(dir, "d") && e.Mode == 0o750 && e.Dirfd == fdcwd
	})
	ev("hard link", func(e Event) bool {
		return e.Kind == KindLink && e.Path == f && e.NewPath == filepath.Join(dir, "hard")
	})
	ev("symlink", func(e Event) bool {
		return e.Kind == KindSymlink && e.Target == "/etc/shadow" && e.NewPath == filepath.Join(dir, "sym") && e.NewDirfd == fdcwd
	})
	ev("truncate", func(e Event) bool { return e.Kind == KindTruncate && e.Path == f && e.Length == 10 })
	ev("ftruncate", func(e Event) bool { return e.Kind == KindTruncate && e.Path == "" && e.FD > 2 && e.Length == 3 })
	ev("utimensat with times", func(e Event) bool { return e.Kind == KindUtimes && e.Path == f && e.TimesSet })
	ev("futimens to now", func(e Event) bool { return e.Kind == KindUtimes && e.Path == "" && e.FD > 2 && !e.TimesSet })
	ev("mknod of a fifo", func(e Event) bool {
		return e.Kind == KindMknod && e.Path == filepath.Join(dir, "fifo") && e.Mode == unix.S_IFIFO|0o600
	})
	ev("chown", func(e Event) bool {
		return e.Kind == KindChown && e.Path == f && e.IDs[0] == 65534 && e.IDs[1] == 65534 && e.Flags == 0
	})
	ev("lchown", func(e Event) bool {
		return e.Kind == KindChown && e.Path == filepath.Join(dir, "sym") && e.Flags == unix.AT_SYMLINK_NOFOLLOW
	})
	ev("fchown", func(e Event) bool { return e.Kind == KindChown && e.Path == "" && e.FD > 2 && e.IDs[0] == 0 })
	ev("fchmod setuid", func(e Event) bool {
		return e.Kind == KindChmod && e.Path == "" && e.FD > 2 && e.Mode == 0o4755
	})
	ev("prctl(PR_SET_NAME)", func(e Event) bool {
		return e.Kind == KindSetName && e.Name == "kworker/0:1"
	})
}

// childFSChanges makes each change of TestFileSystemChanges in $SENSOR_TEST_FS_DIR.
func childFSChanges() error {
	dir := os.Getenv(envFSDir)
	f := filepath.Join(dir, "f")
	if err := unix.Mkdirat(unix.AT_FDCWD, filepath.Join(dir, "d"), 0o750); err != nil {
		return err
	}
	fd, err := unix.Open(f, unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	steps := []func() error{
		func() error { return unix.Linkat(unix.AT_FDCWD, f, unix.AT_FDCWD, filepath.Join(dir, "hard"), 0) },
		func() error { return unix.Symlinkat("/etc/shadow", unix.AT_FDCWD, filepath.Join(dir, "sym")) },
		func() error { return unix.Truncate(f, 10) },
		func() error { return unix.Ftruncate(fd, 3) },
		func() error {
			ts := []unix.Timespec{{Sec: 1}, {Sec: 1}}
			return unix.UtimesNanoAt(unix.AT_FDCWD, f, ts, 0)
		},
		func() error { // futimens(fd, NULL): utimensat with no path and no times
			_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, 0, 0, 0, 0)
			if e != 0 {
				return e
			}
			return nil
		},
		func() error { return unix.Mknodat(unix.AT_FDCWD, filepath.Join(dir, "fifo"), unix.S_IFIFO|0o600, 0) },
		func() error { return unix.Fchownat(unix.AT_FDCWD, f, 65534, 65534, 0) },
		func() error {
			return unix.Fchownat(unix.AT_FDCWD, filepath.Join(dir, "sym"), 65534, 65534, unix.AT_SYMLINK_NOFOLLOW)
		},
		func() error { return unix.Fchown(fd, 0, 0) },
		func() error { return unix.Fchmod(fd, 0o4755) },
		func() error { // and, last, the thread renames itself
			name, err := unix.BytePtrFromString("kworker/0:1")
			if err != nil {
				return err
			}
			return unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(name)), 0, 0, 0)
		},
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}
