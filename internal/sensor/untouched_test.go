package sensor

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The untouched child's environment.
const envUntouchedDir = "SENSOR_TEST_UNTOUCHED_DIR" // where it writes the files it maps

// untouchedPath is the path the child opens from a page it never touched.
const untouchedPath = "/etc/hostname"

// atFdcwd is AT_FDCWD as a system call argument.
var atFdcwd = func() uintptr { fd := int64(unix.AT_FDCWD); return uintptr(fd) }()

// TestUntouchedPages: a path or socket address on a page the caller has not
// touched yet cannot be read when the call begins (a BPF probe read does
// not fault pages in), which once left such events with no path and no
// address: a way to open or connect unseen. The sensor reads them again as
// the call returns, once the kernel's own copy has faulted the page in,
// and marks the event.
func TestUntouchedPages(t *testing.T) {
	s := loadOrSkip(t, Options{})
	cg := newCgroup(t)
	if err := s.Watch(cg.id, 0); err != nil {
		t.Fatal(err)
	}
	port := listenLoopback(t)
	c := startChild(t, &cg, "untouched", envPort+"="+strconv.Itoa(port), envUntouchedDir+"="+t.TempDir())
	evs := collectUntil(t, s, eventTimeout, exitOf(c.pid))
	open := find(t, evs, "the open of the untouched path", func(e Event) bool {
		return e.Kind == KindOpen && e.PID == c.pid && e.Syscall == unix.SYS_OPENAT && e.Result >= 0 && e.Path == untouchedPath
	})
	if !open.ReadAtExit || open.Faulted {
		t.Errorf("open: ReadAtExit %v, Faulted %v; want read at exit", open.ReadAtExit, open.Faulted)
	}
	conn := find(t, evs, "the connect to the untouched address", func(e Event) bool {
		return e.Kind == KindConnect && e.PID == c.pid && e.Addr.Port() == uint16(port)
	})
	if !conn.ReadAtExit || conn.Faulted || conn.Addr.Addr().String() != "127.0.0.1" {
		t.Errorf("connect: addr %v, ReadAtExit %v, Faulted %v; want 127.0.0.1:%d read at exit", conn.Addr, conn.ReadAtExit, conn.Faulted, port)
	}
	// No open or connect of the child lost its path or address (the Go
	// runtime's own first opens hit untouched pages too).
	for _, e := range evs {
		if e.PID == c.pid && (e.Kind == KindOpen || e.Kind == KindConnect) && e.Faulted {
			t.Errorf("path or address lost: %s", describe(e))
		}
	}
}

// childUntouched maps two files it wrote, one holding untouchedPath and
// one a sockaddr_in of 127.0.0.1 and $SENSOR_TEST_PORT, without touching
// either mapping (two mappings: a fault in one maps no page of the other),
// and passes those addresses straight to openat and connect.
func childUntouched() error {
	port, err := strconv.Atoi(os.Getenv(envPort))
	if err != nil {
		return err
	}
	dir := os.Getenv(envUntouchedDir)
	page := os.Getpagesize()
	path := make([]byte, page)
	copy(path, untouchedPath) // NUL-terminated by the zeros after it
	sa := make([]byte, page)
	binary.LittleEndian.PutUint16(sa[0:], unix.AF_INET)
	binary.BigEndian.PutUint16(sa[2:], uint16(port))
	copy(sa[4:8], []byte{127, 0, 0, 1})
	mapped := func(name string, b []byte) (uintptr, error) {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, b, 0o600); err != nil {
			return 0, err
		}
		fd, err := unix.Open(f, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return 0, err
		}
		defer unix.Close(fd)
		m, err := unix.Mmap(fd, 0, page, unix.PROT_READ, unix.MAP_PRIVATE)
		if err != nil {
			return 0, err
		}
		return uintptr(unsafe.Pointer(unsafe.SliceData(m))), nil // the address only: no access
	}
	pathAt, err := mapped("path", path)
	if err != nil {
		return err
	}
	saAt, err := mapped("sockaddr", sa)
	if err != nil {
		return err
	}
	fd, _, errno := unix.Syscall6(unix.SYS_OPENAT, atFdcwd, pathAt, uintptr(unix.O_RDONLY|unix.O_CLOEXEC), 0, 0, 0)
	if errno != 0 {
		return fmt.Errorf("openat from an untouched page: %w", errno)
	}
	unix.Close(int(fd))
	sock, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(sock)
	if _, _, errno := unix.Syscall(unix.SYS_CONNECT, uintptr(sock), saAt, 16); errno != 0 {
		return fmt.Errorf("connect from an untouched page: %w", errno)
	}
	return nil
}
