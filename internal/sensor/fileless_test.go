package sensor

import (
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestFilelessExec: a program copied into a memfd and run with
// execveat(fd, "", AT_EMPTY_PATH) never touches a path; its exec event
// says so (Fileless) and names what ran (ExeName "memfd:payload"), where
// before it was only an exec of "/dev/fd/N". The child's own exec, of a
// linked file, is not fileless.
func TestFilelessExec(t *testing.T) {
	s := loadOrSkip(t, Options{})
	cg := newCgroup(t)
	if err := s.Watch(cg.id, 0); err != nil {
		t.Fatal(err)
	}
	c := startChild(t, &cg, "memfd")
	evs := collectUntil(t, s, eventTimeout, exitOf(c.pid))
	mem := find(t, evs, "the exec of the memfd", func(e Event) bool {
		return e.Kind == KindExec && e.PID == c.pid && e.Result == 0 && strings.HasPrefix(e.Path, "/dev/fd/")
	})
	if !mem.Fileless || !strings.HasPrefix(mem.ExeName, "memfd:payload") {
		t.Errorf("memfd exec: Fileless %v, ExeName %q; want fileless memfd:payload (%s)", mem.Fileless, mem.ExeName, describe(mem))
	}
	if len(mem.Argv) == 0 || mem.Argv[0] != "payload" {
		t.Errorf("memfd exec argv %q", mem.Argv)
	}
	for _, e := range evs {
		if e.Kind == KindExec && e.PID == c.pid && !strings.HasPrefix(e.Path, "/dev/fd/") {
			if e.Fileless || e.ExeName == "" {
				t.Errorf("exec of a linked file: Fileless %v, ExeName %q (%s)", e.Fileless, e.ExeName, describe(e))
			}
		}
	}
}

// childMemfd copies /usr/bin/true into a memfd and runs it from there.
func childMemfd() error {
	fd, err := unix.MemfdCreate("payload", 0)
	if err != nil {
		return err
	}
	src, err := os.Open("/usr/bin/true")
	if err != nil {
		return err
	}
	defer src.Close()
	dst := os.NewFile(uintptr(fd), "memfd")
	if _, err := io.Copy(dst, src); err != nil {
		return err
	}
	empty, err := unix.BytePtrFromString("")
	if err != nil {
		return err
	}
	argv, err := syscall.SlicePtrFromStrings([]string{"payload"})
	if err != nil {
		return err
	}
	envv, err := syscall.SlicePtrFromStrings([]string{"PATH=/usr/bin:/bin"})
	if err != nil {
		return err
	}
	_, _, errno := unix.Syscall6(unix.SYS_EXECVEAT, uintptr(fd), uintptr(unsafe.Pointer(empty)),
		uintptr(unsafe.Pointer(&argv[0])), uintptr(unsafe.Pointer(&envv[0])), unix.AT_EMPTY_PATH, 0)
	return fmt.Errorf("execveat of a memfd: %w", errno)
}
