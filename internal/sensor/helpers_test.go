package sensor

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"moat.dev/moat/internal/seccomp"
)

// The integration tests run for real as root: they load the sensor, make
// cgroup v2 directories of their own under the unified hierarchy, and
// start copies of the test binary in them (TestMain's child modes). The
// only network use is a listener on 127.0.0.1 that the children connect
// to.

const childEnv = "MOAT_SENSOR_TEST_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(runChild(mode))
	}
	os.Exit(m.Run())
}

// needOrSkip skips the test for a missing capability, or fails it under
// CI=true, where nothing may be skipped silently.
func needOrSkip(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true forbids skipping)", msg)
	}
	t.Skip(msg)
}

// loadOrSkip loads a sensor, or skips (fails under CI) when the host
// cannot run one.
func loadOrSkip(t testing.TB, opts Options) *Sensor {
	t.Helper()
	if os.Geteuid() != 0 {
		needOrSkip(t, "the sensor needs root (CAP_BPF, CAP_PERFMON) to load")
	}
	if cgroup2Root() == "" {
		needOrSkip(t, "needs a cgroup v2 hierarchy")
	}
	s, err := Load(opts)
	if errors.Is(err, ErrUnavailable) {
		needOrSkip(t, "%v", err)
	}
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// cgroup2Root is the mount point of the cgroup v2 hierarchy, from
// /proc/self/mountinfo ("" if there is none).
func cgroup2Root() string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	root := ""
	for _, line := range strings.Split(string(b), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		f, pf := strings.Fields(pre), strings.Fields(post)
		if ok && len(f) >= 5 && len(pf) >= 1 && pf[0] == "cgroup2" {
			if root == "" || f[4] == "/sys/fs/cgroup" {
				root = f[4]
			}
		}
	}
	return root
}

// testCgroup is a cgroup v2 directory made for one test.
type testCgroup struct {
	path string
	id   uint64
}

func newCgroup(t testing.TB) testCgroup {
	t.Helper()
	dir := filepath.Join(cgroup2Root(), fmt.Sprintf("moat-sensor-test-%d-%x", os.Getpid(), rand.Uint64()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatalf("make cgroup: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Rmdir(dir); err != nil {
			t.Errorf("remove cgroup %s: %v", dir, err)
		}
	})
	id, err := CgroupID(dir)
	if err != nil {
		t.Fatal(err)
	}
	return testCgroup{path: dir, id: id}
}

// child is a finished run of the test binary in one of its child modes.
type child struct {
	pid    int
	stdout string
}

// runChild starts the test binary in mode, in cgroup cg (or in the test's
// own cgroup when cg is nil), waits for it and fails the test if it failed.
func startChild(t testing.TB, cg *testCgroup, mode string, env ...string) child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append([]string{childEnv + "=" + mode, "PATH=/usr/bin:/bin"}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if cg != nil {
		f, err := os.Open(cg.path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(f.Fd())}
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child %s: %v", mode, err)
	}
	pid := cmd.Process.Pid
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child %s (pid %d): %v\nstdout:\n%s\nstderr:\n%s", mode, pid, err, stdout.String(), stderr.String())
	}
	return child{pid: pid, stdout: stdout.String()}
}

// collectUntil reads events until one satisfies end (included in the
// result), or fails the test after timeout.
func collectUntil(t testing.TB, s *Sensor, timeout time.Duration, end func(Event) bool) []Event {
	t.Helper()
	var got []Event
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-s.Events():
			if !ok {
				t.Fatalf("events channel closed after %d events", len(got))
			}
			got = append(got, ev)
			if end(ev) {
				return got
			}
		case <-deadline:
			t.Fatalf("no end event within %v; got %d events:\n%s", timeout, len(got), dump(got))
		}
	}
}

// exitOf matches the exit event of process pid.
func exitOf(pid int) func(Event) bool {
	return func(e Event) bool { return e.Kind == KindExit && e.PID == pid }
}

func dump(evs []Event) string {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "  %s\n", describe(e))
	}
	return b.String()
}

func describe(e Event) string {
	s := fmt.Sprintf("%-7s pid=%d ppid=%d tid=%d uid=%d comm=%q nr=%d result=%d errno=%d", e.Kind, e.PID, e.PPID, e.TID, e.UID, e.Comm, e.Syscall, e.Result, e.Errno)
	if e.Path != "" {
		s += fmt.Sprintf(" path=%q", e.Path)
	}
	if e.NewPath != "" {
		s += fmt.Sprintf(" new=%q", e.NewPath)
	}
	if e.Argv != nil {
		s += fmt.Sprintf(" argv=%q", e.Argv)
	}
	if e.Kind == KindOpen {
		s += fmt.Sprintf(" flags=%#o intent=%s", e.Flags, e.Intent)
	}
	if e.Addr.IsValid() {
		s += " addr=" + e.Addr.String()
	}
	if e.Opened != "" {
		s += fmt.Sprintf(" opened=%q", e.Opened)
	}
	if e.Dir != "" {
		s += fmt.Sprintf(" dir=%q", e.Dir)
	}
	if e.NewDir != "" {
		s += fmt.Sprintf(" newdir=%q", e.NewDir)
	}
	if e.Env != nil {
		s += fmt.Sprintf(" env=%q", e.Env)
	}
	return s
}

// Child modes.

func runChild(mode string) int {
	var err error
	switch mode {
	case "scenario":
		err = childScenario()
	case "mixloop":
		err = childMixLoop()
	case "openloop":
		err = childOpenLoop()
	case "escape":
		err = childEscape()
	case "unprivileged-load":
		err = childUnprivilegedLoad()
	case "untouched":
		err = childUntouched()
	case "memfd":
		err = childMemfd()
	case "fschanges":
		err = childFSChanges()
	case "where":
		err = childWhere()
	default:
		err = fmt.Errorf("unknown child mode %q", mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	return 0
}

// Environment of the scenario child.
const (
	envPort    = "SENSOR_TEST_PORT"    // loopback TCP port to connect to
	envUDPPort = "SENSOR_TEST_UDP"     // loopback UDP port the test reads datagrams on
	envSock    = "SENSOR_TEST_SOCK"    // path to bind an AF_UNIX socket to
	envExecDir = "SENSOR_TEST_EXECDIR" // a directory holding noexecName, a file without execute permission
	envMarker  = "SENSOR_TEST_MARKER"  // file the shell creates, renames and removes
	envPrivate = "SENSOR_TEST_PRIVATE" // a 0600 root file the child may not open
)

// missingExe is what the scenario child fails to exec before its shell.
const missingExe = "/nonexistent/payload"

// noexecName is the file of envExecDir the child fails to execveat.
const noexecName = "noexec"

// scenarioScript is what the scenario child execs last, as /bin/sh -c.
const scenarioScript = `cat /etc/hostname >/dev/null; echo x > "$M"; chmod 600 "$M"; mv "$M" "$M.moved"; rm "$M.moved"`

// Datagrams the scenario child sends to the test's UDP socket: the first
// three name their destination, the last two go out on a connected socket.
var scenarioDatagrams = []string{"sendto", "sendmsg", "sendmmsg", "connected-sendto", "connected-sendmsg"}

// longArgv is the argv of the child's failed exec that does not fit: 70
// arguments of 9 bytes with their NULs.
func longArgv() []string {
	argv := make([]string, 70)
	for i := range argv {
		argv[i] = fmt.Sprintf("%08d", i)
	}
	return argv
}

// childScenario does, in order: a blocking TCP connect to the test's
// loopback listener; the socket calls of netCalls; capget + capset of the
// same sets; setgid and setuid to 65534; an open that the kernel refuses
// with EACCES (not seccomp); installs moat's seccomp filter and calls
// unshare(CLONE_NEWUSER), which the filter refuses with EPERM; four execs
// that fail (see failedExecs); then execs /bin/sh -c scenarioScript.
// It prints the effective capability set it passed to capset and the
// numbers it learnt on the way ("name value" lines).
func childScenario() error {
	port, err := strconv.Atoi(os.Getenv(envPort))
	if err != nil {
		return err
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	if err := unix.Connect(fd, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	unix.Close(fd)
	if err := netCalls(); err != nil {
		return err
	}
	// Opened while still root: nobody may not walk the test's temporary
	// directories, but may look inside this one through its descriptor.
	dirfd, err := unix.Open(os.Getenv(envExecDir), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	fmt.Printf("execdir %d\n", dirfd)

	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	fmt.Printf("caps %d\n", uint64(data[0].Effective)|uint64(data[1].Effective)<<32)

	if err := syscall.Setgid(65534); err != nil {
		return fmt.Errorf("setgid: %w", err)
	}
	if err := syscall.Setuid(65534); err != nil {
		return fmt.Errorf("setuid: %w", err)
	}
	if f, err := os.Open(os.Getenv(envPrivate)); !errors.Is(err, unix.EACCES) {
		if f != nil {
			f.Close()
		}
		return fmt.Errorf("open private file as nobody: %v, want EACCES", err)
	}

	runtime.LockOSThread()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	if err := seccomp.Install(seccomp.Default()); err != nil {
		return fmt.Errorf("install seccomp: %w", err)
	}
	if err := unix.Unshare(unix.CLONE_NEWUSER); !errors.Is(err, unix.EPERM) {
		return fmt.Errorf("unshare(CLONE_NEWUSER) under seccomp: %v, want EPERM", err)
	}
	env := []string{"PATH=/usr/bin:/bin", "M=" + os.Getenv(envMarker)}
	if err := failedExecs(dirfd, env); err != nil {
		return err
	}
	return syscall.Exec("/bin/sh", []string{"/bin/sh", "-c", scenarioScript}, env)
}

// failedExecs makes four execs that fail: execve(missingExe) with three
// arguments (ENOENT); execveat(dirfd, noexecName, AT_SYMLINK_NOFOLLOW) of
// a file without execute permission (EACCES); execve of a missing path
// with a NULL argv (ENOENT); and execve(missingExe) with longArgv, which
// does not fit in the sensor's bounds.
func failedExecs(dirfd int, env []string) error {
	if err := syscall.Exec(missingExe, []string{missingExe, "--flag", ""}, env); !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("exec %s: %v, want ENOENT", missingExe, err)
	}
	envp, err := syscall.SlicePtrFromStrings(env)
	if err != nil {
		return err
	}
	path, err := syscall.BytePtrFromString(noexecName)
	if err != nil {
		return err
	}
	argv, err := syscall.SlicePtrFromStrings([]string{noexecName, "x"})
	if err != nil {
		return err
	}
	_, _, errno := unix.Syscall6(unix.SYS_EXECVEAT, uintptr(dirfd), uintptr(unsafe.Pointer(path)),
		uintptr(unsafe.Pointer(&argv[0])), uintptr(unsafe.Pointer(&envp[0])), unix.AT_SYMLINK_NOFOLLOW, 0)
	runtime.KeepAlive(path)
	runtime.KeepAlive(argv)
	if errno != unix.EACCES {
		return fmt.Errorf("execveat %s: %v, want EACCES", noexecName, errno)
	}
	noArgs, err := syscall.BytePtrFromString(missingExe + "-noargs")
	if err != nil {
		return err
	}
	_, _, errno = unix.RawSyscall(unix.SYS_EXECVE, uintptr(unsafe.Pointer(noArgs)), 0, 0)
	runtime.KeepAlive(noArgs)
	if errno != unix.ENOENT {
		return fmt.Errorf("execve with a NULL argv: %v, want ENOENT", errno)
	}
	if err := syscall.Exec(missingExe, longArgv(), env); !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("exec %s with a long argv: %v, want ENOENT", missingExe, err)
	}
	return nil
}

// netCalls makes, in order, each socket call the sensor reports beside
// connect, and prints the descriptors and ports the test checks:
//   - TCP on 127.0.0.1: bind to port 0, listen (backlog 7), a connect to
//     it and accept4(SOCK_CLOEXEC) with a buffer for the peer, then a
//     second connect and accept(2) without one;
//   - UDP: sendto, sendmsg and sendmmsg to 127.0.0.1:SENSOR_TEST_UDP, then
//     a socket connected there and a sendto and sendmsg that name no
//     destination (the sensor must not report those two);
//   - AF_UNIX: bind of a datagram socket to SENSOR_TEST_SOCK.
func netCalls() error {
	udpPort, err := strconv.Atoi(os.Getenv(envUDPPort))
	if err != nil {
		return err
	}
	lfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(lfd)
	fmt.Printf("listen-fd %d\n", lfd)
	if err := unix.Bind(lfd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return fmt.Errorf("bind: %w", err)
	}
	if err := unix.Listen(lfd, 7); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	sa, err := unix.Getsockname(lfd)
	if err != nil {
		return err
	}
	for i, withPeer := range []bool{true, false} {
		cfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(cfd)
		if err := unix.Connect(cfd, sa); err != nil {
			return fmt.Errorf("connect to self: %w", err)
		}
		var nfd int
		if withPeer {
			local, err := unix.Getsockname(cfd)
			if err != nil {
				return err
			}
			fmt.Printf("peer-port %d\n", local.(*unix.SockaddrInet4).Port)
			if nfd, _, err = unix.Accept4(lfd, unix.SOCK_CLOEXEC); err != nil {
				return fmt.Errorf("accept4: %w", err)
			}
		} else {
			r, _, errno := unix.Syscall(unix.SYS_ACCEPT, uintptr(lfd), 0, 0)
			if errno != 0 {
				return fmt.Errorf("accept: %w", errno)
			}
			nfd = int(r)
		}
		fmt.Printf("accepted-fd-%d %d\n", i, nfd)
		unix.Close(nfd)
	}

	dst := &unix.SockaddrInet4{Port: udpPort, Addr: [4]byte{127, 0, 0, 1}}
	ufd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(ufd)
	fmt.Printf("udp-fd %d\n", ufd)
	if err := unix.Sendto(ufd, []byte(scenarioDatagrams[0]), 0, dst); err != nil {
		return fmt.Errorf("sendto: %w", err)
	}
	if _, err := unix.SendmsgN(ufd, []byte(scenarioDatagrams[1]), nil, dst, 0); err != nil {
		return fmt.Errorf("sendmsg: %w", err)
	}
	if err := sendmmsgTo(ufd, []byte(scenarioDatagrams[2]), udpPort); err != nil {
		return fmt.Errorf("sendmmsg: %w", err)
	}
	conn, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(conn)
	if err := unix.Connect(conn, dst); err != nil {
		return fmt.Errorf("connect udp: %w", err)
	}
	if err := unix.Sendto(conn, []byte(scenarioDatagrams[3]), 0, nil); err != nil {
		return fmt.Errorf("sendto on a connected socket: %w", err)
	}
	if _, err := unix.SendmsgN(conn, []byte(scenarioDatagrams[4]), nil, nil, 0); err != nil {
		return fmt.Errorf("sendmsg on a connected socket: %w", err)
	}

	xfd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(xfd)
	fmt.Printf("unix-fd %d\n", xfd)
	if err := unix.Bind(xfd, &unix.SockaddrUnix{Name: os.Getenv(envSock)}); err != nil {
		return fmt.Errorf("bind unix: %w", err)
	}
	return nil
}

// mmsghdr is struct mmsghdr, which x/sys/unix does not define.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
	_   [4]byte
}

// sendmmsgTo sends p to 127.0.0.1:port as the one message of a sendmmsg.
func sendmmsgTo(fd int, p []byte, port int) error {
	sa := unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: [4]byte{127, 0, 0, 1}}
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:], uint16(port))
	iov := unix.Iovec{Base: &p[0]}
	iov.SetLen(len(p))
	msgs := []mmsghdr{{hdr: unix.Msghdr{Name: (*byte)(unsafe.Pointer(&sa)), Namelen: unix.SizeofSockaddrInet4, Iov: &iov}}}
	msgs[0].hdr.SetIovlen(1)
	n, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(fd), uintptr(unsafe.Pointer(&msgs[0])), 1, 0, 0, 0)
	runtime.KeepAlive(msgs)
	runtime.KeepAlive(&sa)
	runtime.KeepAlive(p)
	if errno != 0 {
		return errno
	}
	if n != 1 {
		return fmt.Errorf("sent %d messages, want 1", n)
	}
	return nil
}

// childMixLoop runs SENSOR_TEST_N rounds of what a function that works
// the system does: fork and exec /bin/true and wait for it, open and close
// a file ten times, and connect to a closed loopback port (refused).
func childMixLoop() error {
	n, err := strconv.Atoi(os.Getenv("SENSOR_TEST_N"))
	if err != nil {
		return err
	}
	attr := &syscall.ProcAttr{Env: []string{}, Files: []uintptr{0, 1, 2}}
	start := time.Now()
	for range n {
		pid, err := syscall.ForkExec("/bin/true", []string{"true"}, attr)
		if err != nil {
			return err
		}
		var ws syscall.WaitStatus
		if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil {
			return err
		}
		for range 10 {
			fd, err := unix.Open("/etc/hostname", unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				return err
			}
			unix.Close(fd)
		}
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		_ = unix.Connect(fd, &unix.SockaddrInet4{Port: 1, Addr: [4]byte{127, 0, 0, 1}})
		unix.Close(fd)
	}
	fmt.Printf("ns %d\n", time.Since(start).Nanoseconds())
	return nil
}

// childOpenLoop opens and closes /etc/hostname SENSOR_TEST_N times and
// prints the time the loop took, in nanoseconds.
func childOpenLoop() error {
	n, err := strconv.Atoi(os.Getenv("SENSOR_TEST_N"))
	if err != nil {
		return err
	}
	path := []byte("/etc/hostname\x00")
	p := uintptr(unsafe.Pointer(&path[0]))
	dirfd := unix.AT_FDCWD
	start := time.Now()
	for range n {
		fd, _, errno := unix.Syscall6(unix.SYS_OPENAT, uintptr(dirfd), p, unix.O_RDONLY|unix.O_CLOEXEC, 0, 0, 0)
		if errno != 0 {
			return errno
		}
		unix.Syscall(unix.SYS_CLOSE, fd, 0, 0)
	}
	fmt.Printf("ns %d\n", time.Since(start).Nanoseconds())
	return nil
}

// childUnprivilegedLoad becomes uid and gid 65534 on every thread, which
// empties the capability sets, then tries to load the sensor and prints
// whether the error was ErrUnavailable.
func childUnprivilegedLoad() error {
	if err := syscall.Setgid(65534); err != nil {
		return fmt.Errorf("setgid: %w", err)
	}
	if err := syscall.Setuid(65534); err != nil {
		return fmt.Errorf("setuid: %w", err)
	}
	s, err := Load(Options{})
	if err == nil {
		s.Close()
		fmt.Println("loaded")
		return nil
	}
	fmt.Printf("unavailable=%v err=%v\n", errors.Is(err, ErrUnavailable), err)
	return nil
}

// field returns the value printed by a child as "name value".
func field(t testing.TB, out, name string) string {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return v
		}
	}
	t.Fatalf("child printed no %q in:\n%s", name, out)
	return ""
}

// listenLoopback listens on 127.0.0.1 on a free port and accepts (and
// closes) connections until the test ends.
func listenLoopback(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// childEscape installs moat's seccomp filter, tries ptrace (refused: an
// escape attempt) and, if it is still alive, says so.
func childEscape() error {
	runtime.LockOSThread()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	if err := seccomp.Install(seccomp.Default()); err != nil {
		return fmt.Errorf("install seccomp: %w", err)
	}
	if err := unix.PtraceAttach(1); !errors.Is(err, unix.EPERM) {
		return fmt.Errorf("ptrace under seccomp: %v, want EPERM", err)
	}
	fmt.Println("survived")
	return nil
}
