package sensor

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"moat.dev/moat/internal/seccomp"
)

const eventTimeout = 20 * time.Second

// find returns the first event that matches, or fails the test.
func find(t *testing.T, evs []Event, what string, match func(Event) bool) Event {
	t.Helper()
	for _, e := range evs {
		if match(e) {
			return e
		}
	}
	t.Fatalf("no %s event among %d:\n%s", what, len(evs), dump(evs))
	return Event{}
}

// scenario runs the scenario child in cg and returns it with its events,
// up to and including its exit.
func scenario(t *testing.T, s *Sensor, cg *testCgroup, marker string) (scenarioRun, []Event) {
	t.Helper()
	r := runScenario(t, cg, marker)
	return r, collectUntil(t, s, eventTimeout, exitOf(r.pid))
}

// scenarioRun is a finished run of the scenario child, with what the test
// gave it.
type scenarioRun struct {
	child
	udp     *net.UDPConn // the socket the child sent its datagrams to
	udpPort int
	sock    string // the path the child bound an AF_UNIX socket to
	execDir string // the directory of the file the child failed to exec
}

// runScenario runs the scenario child in cg (nil: the test's own cgroup)
// and waits for it.
func runScenario(t *testing.T, cg *testCgroup, marker string) scenarioRun {
	t.Helper()
	port := listenLoopback(t)
	udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { udp.Close() })
	dir := t.TempDir()
	private := filepath.Join(dir, "private")
	if err := os.WriteFile(private, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	execDir := filepath.Join(dir, "exec")
	if err := os.Mkdir(execDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(execDir, 0o755); err != nil { // whatever the umask
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(execDir, noexecName), []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := scenarioRun{udp: udp, udpPort: udp.LocalAddr().(*net.UDPAddr).Port, sock: filepath.Join(dir, "s.sock"), execDir: execDir}
	r.child = startChild(t, cg, "scenario",
		envPort+"="+strconv.Itoa(port), envUDPPort+"="+strconv.Itoa(r.udpPort), envSock+"="+r.sock,
		envExecDir+"="+execDir, envMarker+"="+marker, envPrivate+"="+private)
	return r
}

func testMarker() string {
	return filepath.Join(os.TempDir(), "sensor-test-"+strconv.FormatUint(uint64(time.Now().UnixNano()), 36))
}

// TestScenario watches a cgroup and checks every kind of event a process
// in it causes: exec, connect, bind, listen, accept, sends that name a
// destination, capset, setgid/setuid, an open the kernel refuses, a
// syscall seccomp refuses, failed execs, the shell's file work and exits.
// The sensor is loaded as a node loads it: told the sandbox's filter, so
// that the syscalls it allows and the sensor does not report go untraced.
func TestScenario(t *testing.T) {
	s := loadOrSkip(t, Options{SeccompAllowed: seccomp.Default().Allow, Escapes: []string{"ptrace"}})
	cg := newCgroup(t)
	if err := s.Watch(cg.id, 0); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	marker := testMarker()
	c, evs := scenario(t, s, &cg, marker)
	end := time.Now()
	port := func() uint16 { // the listener's port, from the connect event
		e := find(t, evs, "connect", func(e Event) bool { return e.Kind == KindConnect && e.PID == c.pid })
		return e.Addr.Port()
	}()
	caps, _ := strconv.ParseUint(field(t, c.stdout, "caps"), 10, 64)

	for _, e := range evs {
		if e.CgroupID != cg.id {
			t.Errorf("event not stamped with the watched cgroup: %s (cgroup %d)", describe(e), e.CgroupID)
		}
		if e.Time.Before(start.Add(-time.Second)) || e.Time.After(end.Add(time.Second)) {
			t.Errorf("event time %v outside the run [%v, %v]: %s", e.Time, start, end, describe(e))
		}
	}

	mine := func(k Kind) func(Event) bool {
		return func(e Event) bool { return e.Kind == k && e.PID == c.pid }
	}
	tests := []struct {
		name  string
		match func(Event) bool
		check func(Event) string // "" if right
	}{
		{"connect to the loopback listener", mine(KindConnect), func(e Event) string {
			if e.Syscall != unix.SYS_CONNECT || e.Family != unix.AF_INET || e.Result != 0 ||
				e.Addr != netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port) || e.UID != 0 {
				return "want connect(AF_INET 127.0.0.1) = 0 as uid 0"
			}
			return ""
		}},
		{"capset", mine(KindCapset), func(e Event) string {
			if e.Syscall != unix.SYS_CAPSET || e.Result != 0 || e.Caps[0] != caps {
				return "want capset = 0 with the child's effective set " + strconv.FormatUint(caps, 16)
			}
			return ""
		}},
		{"setgid", func(e Event) bool { return mine(KindSetID)(e) && e.Syscall == unix.SYS_SETGID }, func(e Event) string {
			if e.IDs != [3]uint32{65534, NoID, NoID} || e.Result != 0 {
				return "want setgid(65534) = 0"
			}
			return ""
		}},
		{"setuid", func(e Event) bool { return mine(KindSetID)(e) && e.Syscall == unix.SYS_SETUID }, func(e Event) string {
			if e.IDs != [3]uint32{65534, NoID, NoID} || e.Result != 0 {
				return "want setuid(65534) = 0"
			}
			return ""
		}},
		{"open refused by the kernel", func(e Event) bool { return mine(KindOpen)(e) && strings.HasSuffix(e.Path, "/private") }, func(e Event) string {
			if e.Result != -int(unix.EACCES) || e.Errno != int(unix.EACCES) || e.Intent != IntentRead || e.UID != 65534 {
				return "want open(private, read) = -EACCES as uid 65534"
			}
			return ""
		}},
		{"unshare refused by seccomp", mine(KindDenied), func(e Event) string {
			if e.Syscall != unix.SYS_UNSHARE || e.Errno != int(unix.EPERM) || e.Result != -int(unix.EPERM) {
				return "want denied unshare with EPERM"
			}
			return ""
		}},
		{"exec of the shell", func(e Event) bool { return mine(KindExec)(e) && e.Path == "/bin/sh" }, func(e Event) string {
			if !slices.Equal(e.Argv, []string{"/bin/sh", "-c", scenarioScript}) || e.Argc != 3 || e.Comm != "sh" || e.Truncated || e.UID != 65534 {
				return "want argv [/bin/sh -c script], comm sh, uid 65534"
			}
			return ""
		}},
		{"exec of cat by the shell", func(e Event) bool { return e.Kind == KindExec && e.PPID == c.pid && e.Comm == "cat" }, func(e Event) string {
			if e.Path != "/usr/bin/cat" || !slices.Equal(e.Argv, []string{"cat", "/etc/hostname"}) {
				return "want /usr/bin/cat [cat /etc/hostname]"
			}
			return ""
		}},
		{"cat reads /etc/hostname", func(e Event) bool { return e.Kind == KindOpen && e.Comm == "cat" && e.Path == "/etc/hostname" }, func(e Event) string {
			if e.PPID != c.pid || e.Result < 0 || e.Intent != IntentRead || e.Syscall != unix.SYS_OPENAT {
				return "want openat(/etc/hostname, read) >= 0 by the shell's child"
			}
			return ""
		}},
		{"the shell creates the marker", func(e Event) bool { return mine(KindOpen)(e) && e.Path == marker }, func(e Event) string {
			if e.Result < 0 || e.Intent != IntentWrite|IntentCreate|IntentTrunc {
				return "want open(marker, write|create|trunc) >= 0"
			}
			return ""
		}},
		{"chmod of the marker", func(e Event) bool { return e.Kind == KindChmod && e.Path == marker }, func(e Event) string {
			if e.Result != 0 || e.Mode != 0o600 || e.PPID != c.pid {
				return "want chmod(marker, 0600) = 0 by the shell's child"
			}
			return ""
		}},
		{"rename of the marker", func(e Event) bool { return e.Kind == KindRename && e.Path == marker }, func(e Event) string {
			if e.Result != 0 || e.NewPath != marker+".moved" {
				return "want rename(marker, marker.moved) = 0"
			}
			return ""
		}},
		{"rm of the moved marker", func(e Event) bool { return e.Kind == KindUnlink && e.Path == marker+".moved" }, func(e Event) string {
			if e.Result != 0 || e.Flags != 0 || e.Comm != "rm" {
				return "want unlink(marker.moved) = 0 by rm"
			}
			return ""
		}},
		{"exit of the child", mine(KindExit), func(e Event) string {
			if e.Result != 0 || e.Signal != 0 || e.Comm != "sh" {
				return "want exit status 0 of sh"
			}
			return ""
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := find(t, evs, tc.name, tc.match)
			if msg := tc.check(e); msg != "" {
				t.Errorf("%s; got %s", msg, describe(e))
			}
		})
	}

	t.Run("socket calls, exactly", func(t *testing.T) { checkSocketEvents(t, c, evs) })
	t.Run("execs, exactly", func(t *testing.T) { checkExecEvents(t, c, evs) })
	t.Run("datagrams arrived", func(t *testing.T) {
		got := make([]string, 0, len(scenarioDatagrams))
		buf := make([]byte, 64)
		if err := c.udp.SetReadDeadline(time.Now().Add(eventTimeout)); err != nil {
			t.Fatal(err)
		}
		for range scenarioDatagrams {
			n, err := c.udp.Read(buf)
			if err != nil {
				t.Fatalf("after %q: %v", got, err)
			}
			got = append(got, string(buf[:n]))
		}
		if !slices.Equal(got, scenarioDatagrams) {
			t.Errorf("datagrams %q, want %q", got, scenarioDatagrams)
		}
	})

	// One exit per process, though every thread of the Go child exits.
	if exitHasGroupDead() {
		exits := 0
		for _, e := range evs {
			if e.Kind == KindExit && e.PID == c.pid {
				exits++
			}
		}
		if exits != 1 {
			t.Errorf("%d exit events for the child, want 1", exits)
		}
	}

	// An ordinary EACCES (or anything else that entered the kernel) is
	// never reported as a seccomp refusal.
	for _, e := range evs {
		if e.Kind == KindDenied && e.Syscall != unix.SYS_UNSHARE {
			t.Errorf("unexpected denied event: %s", describe(e))
		}
	}
	if n := s.Dropped(); n != 0 {
		t.Errorf("Dropped() = %d, want 0", n)
	}
	if n, err := s.DroppedFor(cg.id); err != nil || n != 0 {
		t.Errorf("DroppedFor = %d, %v; want 0, nil", n, err)
	}
	if n := s.Malformed(); n != 0 {
		t.Errorf("Malformed() = %d, want 0", n)
	}
}

// sockView is what a socket event says, for comparison.
type sockView struct {
	Syscall, FD, Result, Backlog int
	Family                       uint16
	Addr                         netip.AddrPort
	Path                         string
	Flags                        uint32
}

// checkSocketEvents checks that the scenario child's bind, listen,
// accept and sendto events are exactly those of its calls (netCalls): the
// descriptors and ports it printed, the two sends on a connected socket
// not reported.
func checkSocketEvents(t *testing.T, c scenarioRun, evs []Event) {
	num := func(name string) int {
		n, err := strconv.Atoi(field(t, c.stdout, name))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	lo := netip.MustParseAddr("127.0.0.1")
	lfd, ufd, xfd := num("listen-fd"), num("udp-fd"), num("unix-fd")
	dst := netip.AddrPortFrom(lo, uint16(c.udpPort))
	want := map[Kind][]sockView{
		KindBind: {
			{Syscall: unix.SYS_BIND, FD: lfd, Family: unix.AF_INET, Addr: netip.AddrPortFrom(lo, 0)},
			{Syscall: unix.SYS_BIND, FD: xfd, Family: unix.AF_UNIX, Path: c.sock},
		},
		KindListen: {{Syscall: unix.SYS_LISTEN, FD: lfd, Backlog: 7}},
		KindAccept: {
			{Syscall: unix.SYS_ACCEPT4, FD: lfd, Result: num("accepted-fd-0"), Flags: unix.SOCK_CLOEXEC,
				Family: unix.AF_INET, Addr: netip.AddrPortFrom(lo, uint16(num("peer-port")))},
			{Syscall: unix.SYS_ACCEPT, FD: lfd, Result: num("accepted-fd-1")},
		},
		KindSendto: {
			{Syscall: unix.SYS_SENDTO, FD: ufd, Result: len(scenarioDatagrams[0]), Family: unix.AF_INET, Addr: dst},
			{Syscall: unix.SYS_SENDMSG, FD: ufd, Result: len(scenarioDatagrams[1]), Family: unix.AF_INET, Addr: dst},
			{Syscall: unix.SYS_SENDMMSG, FD: ufd, Result: 1, Family: unix.AF_INET, Addr: dst},
		},
	}
	for _, k := range []Kind{KindBind, KindListen, KindAccept, KindSendto} {
		t.Run(k.String(), func(t *testing.T) {
			var got []sockView
			for _, e := range evs {
				if e.Kind == k && e.PID == c.pid {
					got = append(got, sockView{Syscall: e.Syscall, FD: e.FD, Result: e.Result, Backlog: e.Backlog,
						Family: e.Family, Addr: e.Addr, Path: e.Path, Flags: e.Flags})
				}
			}
			if diff := cmp.Diff(want[k], got, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
				t.Errorf("%s events (-want +got):\n%s", k, diff)
			}
		})
	}
}

// execView is what an exec event says, for comparison.
type execView struct {
	Syscall, Result, Errno, Dirfd, Argc int
	Path                                string
	Flags                               uint32
	Argv                                []string
	Truncated, Faulted                  bool
}

// checkExecEvents checks that the scenario child's execs are reported
// exactly once each: its start (the test binary), the four that fail
// (failedExecs), with what the child passed, and the shell's.
func checkExecEvents(t *testing.T, c scenarioRun, evs []Event) {
	dirfd, err := strconv.Atoi(field(t, c.stdout, "execdir"))
	if err != nil {
		t.Fatal(err)
	}
	// 56 arguments of 9 bytes fill 504 bytes; 7 bytes of the 57th fit.
	long := append(longArgv()[:56:56], "0000005")
	enoent, eacces := int(unix.ENOENT), int(unix.EACCES)
	self := exec.Command(os.Args[0]).Path // as startChild runs it
	want := []execView{
		{Syscall: -1, Argc: 2, Path: self, Argv: []string{os.Args[0], "-test.run=^$"}},
		{Syscall: unix.SYS_EXECVE, Result: -enoent, Errno: enoent, Dirfd: unix.AT_FDCWD, Argc: 3,
			Path: missingExe, Argv: []string{missingExe, "--flag", ""}},
		{Syscall: unix.SYS_EXECVEAT, Result: -eacces, Errno: eacces, Dirfd: dirfd, Argc: 2,
			Path: noexecName, Flags: unix.AT_SYMLINK_NOFOLLOW, Argv: []string{noexecName, "x"}},
		{Syscall: unix.SYS_EXECVE, Result: -enoent, Errno: enoent, Dirfd: unix.AT_FDCWD,
			Path: missingExe + "-noargs"},
		{Syscall: unix.SYS_EXECVE, Result: -enoent, Errno: enoent, Dirfd: unix.AT_FDCWD, Argc: 64,
			Path: missingExe, Argv: long, Truncated: true},
		{Syscall: -1, Argc: 3, Path: "/bin/sh", Argv: []string{"/bin/sh", "-c", scenarioScript}},
	}
	var got []execView
	for _, e := range evs {
		if e.Kind == KindExec && e.PID == c.pid {
			got = append(got, execView{Syscall: e.Syscall, Result: e.Result, Errno: e.Errno, Dirfd: e.Dirfd, Argc: e.Argc,
				Path: e.Path, Flags: e.Flags, Argv: e.Argv, Truncated: e.Truncated, Faulted: e.Faulted})
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("exec events (-want +got):\n%s", diff)
	}
}

// TestOutsideSilent runs the same scenario outside any watched cgroup
// (in the test's own cgroup and in an unwatched sibling), then inside the
// watched one. The ring buffer is ordered, so anything the outside runs
// had produced would arrive before the inside run's exit.
func TestOutsideSilent(t *testing.T) {
	s := loadOrSkip(t, Options{})
	watched, unwatched := newCgroup(t), newCgroup(t)
	if err := s.Watch(watched.id, 0); err != nil {
		t.Fatal(err)
	}
	outMarker := testMarker() + "-outside"
	out1 := runScenario(t, nil, outMarker)
	out2 := runScenario(t, &unwatched, outMarker)
	_, evs := scenario(t, s, &watched, testMarker())

	if len(evs) < 10 {
		t.Fatalf("only %d events from the watched run:\n%s", len(evs), dump(evs))
	}
	for _, e := range evs {
		if e.CgroupID != watched.id || e.PID == out1.pid || e.PPID == out1.pid || e.PID == out2.pid || e.PPID == out2.pid ||
			strings.Contains(e.Path, outMarker) || strings.Contains(e.NewPath, outMarker) {
			t.Errorf("event from outside the watched cgroup: %s (cgroup %d)", describe(e), e.CgroupID)
		}
	}
}

// TestUnwatch checks that a cgroup reports nothing once unwatched: a run
// in it after Unwatch, then a run in another watched cgroup as a barrier.
func TestUnwatch(t *testing.T) {
	s := loadOrSkip(t, Options{})
	a, b := newCgroup(t), newCgroup(t)
	if err := s.Watch(a.id, 0); err != nil {
		t.Fatal(err)
	}
	first, evs := scenario(t, s, &a, testMarker())
	find(t, evs, "exec in a while watched", func(e Event) bool { return e.Kind == KindExec && e.PID == first.pid })

	if err := s.Unwatch(a.id); err != nil {
		t.Fatal(err)
	}
	if err := s.Unwatch(a.id); !errors.Is(err, ErrNotWatched) {
		t.Errorf("second Unwatch = %v, want ErrNotWatched", err)
	}
	if _, err := s.DroppedFor(a.id); !errors.Is(err, ErrNotWatched) {
		t.Errorf("DroppedFor unwatched = %v, want ErrNotWatched", err)
	}
	runScenario(t, &a, testMarker())
	if err := s.Watch(b.id, 0); err != nil {
		t.Fatal(err)
	}
	barrier, evs := scenario(t, s, &b, testMarker())
	for _, e := range evs {
		if e.CgroupID != b.id {
			t.Errorf("event from unwatched cgroup: %s (cgroup %d)", describe(e), e.CgroupID)
		}
	}
	find(t, evs, "barrier exec", func(e Event) bool { return e.Kind == KindExec && e.PID == barrier.pid })
}

// TestUnavailable checks that Load without the privileges it needs (as
// uid 65534, with no capabilities) fails
// with ErrUnavailable, so that moat can say so and degrade loudly.
func TestUnavailable(t *testing.T) {
	if os.Geteuid() != 0 {
		_, err := Load(Options{})
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Load as uid %d = %v, want ErrUnavailable", os.Geteuid(), err)
		}
		return
	}
	c := startChild(t, nil, "unprivileged-load")
	if !strings.HasPrefix(c.stdout, "unavailable=true") {
		t.Fatalf("Load without capabilities: %s, want ErrUnavailable", c.stdout)
	}
	t.Logf("as uid 65534: %s", strings.TrimSpace(c.stdout))
}

func TestWatchErrors(t *testing.T) {
	s := loadOrSkip(t, Options{MaxWatched: 2, RingBytes: 1 << 16})
	for _, id := range []uint64{101, 102} {
		if err := s.Watch(id, 0); err != nil {
			t.Fatalf("Watch(%d): %v", id, err)
		}
	}
	if err := s.Watch(101, 0); err != nil {
		t.Errorf("Watch of a watched cgroup = %v, want nil", err)
	}
	if err := s.Watch(103, 0); !errors.Is(err, ErrWatchFull) {
		t.Errorf("Watch beyond MaxWatched = %v, want ErrWatchFull", err)
	}
	if err := s.Watch(0, 0); err == nil {
		t.Error("Watch(0) succeeded")
	}
	if err := s.Unwatch(999); !errors.Is(err, ErrNotWatched) {
		t.Errorf("Unwatch of unknown = %v, want ErrNotWatched", err)
	}
	if err := s.Unwatch(102); err != nil {
		t.Fatal(err)
	}
	// Unwatched cgroups free their place.
	for id := uint64(200); id < 205; id++ {
		if err := s.Watch(id, 0); err != nil {
			t.Fatal(err)
		}
		if err := s.Unwatch(id); err != nil {
			t.Fatal(err)
		}
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if _, ok := <-s.Events(); ok {
		t.Error("Events not closed by Close")
	}
	if err := s.Watch(300, 0); !errors.Is(err, ErrClosed) {
		t.Errorf("Watch after Close = %v, want ErrClosed", err)
	}
	if err := s.Unwatch(101); !errors.Is(err, ErrClosed) {
		t.Errorf("Unwatch after Close = %v, want ErrClosed", err)
	}
	if n := s.Dropped(); n != 0 {
		t.Errorf("Dropped after Close = %d", n)
	}
}

func TestOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"ring not a power of two", Options{RingBytes: 3 << 12}},
		{"ring below a page", Options{RingBytes: 1024}},
		{"negative watch limit", Options{MaxWatched: -1}},
		{"negative buffer", Options{EventBuffer: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.opts)
			if err == nil || errors.Is(err, ErrUnavailable) {
				t.Fatalf("Load(%+v) = %v, want an options error", tc.opts, err)
			}
		})
	}
}

func TestCgroupID(t *testing.T) {
	root := cgroup2Root()
	if root == "" {
		needOrSkip(t, "needs a cgroup v2 hierarchy")
	}
	id, err := CgroupID(root)
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(root, &st); err != nil {
		t.Fatal(err)
	}
	if id != st.Ino {
		t.Errorf("CgroupID(%s) = %d, want inode %d", root, id, st.Ino)
	}
	for _, p := range []string{t.TempDir(), "/proc/self"} {
		if _, err := CgroupID(p); !errors.Is(err, ErrNotCgroup2) {
			t.Errorf("CgroupID(%s) = %v, want ErrNotCgroup2", p, err)
		}
	}
	if _, err := CgroupID(filepath.Join(root, "cgroup.procs")); !errors.Is(err, ErrNotCgroup2) {
		t.Errorf("CgroupID of a file = %v, want ErrNotCgroup2", err)
	}
	if _, err := CgroupID("/nonexistent"); err == nil {
		t.Error("CgroupID of a missing path succeeded")
	}
}

// TestDropsCounted fills a one-page ring while nobody reads Events: the
// kernel drops what does not fit, never waits, and counts every lost
// record, globally and for the cgroup.
func TestDropsCounted(t *testing.T) {
	s := loadOrSkip(t, Options{RingBytes: os.Getpagesize(), EventBuffer: 16})
	cg := newCgroup(t)
	if err := s.Watch(cg.id, 0); err != nil {
		t.Fatal(err)
	}
	const n = 5000
	c := startLoop(t, &cg, n)
	if err := <-c.done; err != nil { // nobody reads Events meanwhile
		t.Fatalf("loop child: %v\n%s", err, c.stderr.String())
	}
	c.done <- nil
	dropped, err := s.DroppedFor(cg.id)
	if err != nil {
		t.Fatal(err)
	}
	if total := s.Dropped(); dropped == 0 || total != dropped {
		t.Fatalf("DroppedFor = %d, Dropped = %d; want equal and > 0", dropped, total)
	}
	opens := drain(t, s, cg, c)
	// Every open of the loop was either delivered or counted as dropped
	// (the count also holds the child's other records).
	if uint64(opens)+s.Dropped() < n {
		t.Errorf("%d opens delivered + %d dropped < %d opens made", opens, s.Dropped(), n)
	}
	t.Logf("%d opens: %d delivered, %d records dropped", n, opens, s.Dropped())
}

// TestExitLiveCount runs the exit program for kernels before 6.16 (the
// last thread is the one that finds signal->live at 0) on this kernel.
func TestExitLiveCount(t *testing.T) {
	s := loadOrSkip(t, Options{exitByLiveCount: true})
	cg := newCgroup(t)
	if err := s.Watch(cg.id, 0); err != nil {
		t.Fatal(err)
	}
	c, evs := scenario(t, s, &cg, testMarker())
	e := find(t, evs, "exit", exitOf(c.pid))
	if e.Result != 0 || e.Signal != 0 || e.Comm != "sh" {
		t.Errorf("want exit status 0 of sh; got %s", describe(e))
	}
	find(t, evs, "exit of cat", func(e Event) bool { return e.Kind == KindExit && e.Comm == "cat" && e.PPID == c.pid })
}

// TestExitSignal checks the exit of a process killed by a signal, with
// both exit programs.
func TestExitSignal(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
	}{{"group_dead", Options{}}, {"live count", Options{exitByLiveCount: true}}} {
		t.Run(tc.name, func(t *testing.T) {
			s := loadOrSkip(t, tc.opts)
			cg := newCgroup(t)
			if err := s.Watch(cg.id, 0); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(cg.path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			cmd := exec.Command("/bin/sh", "-c", "kill -KILL $$")
			cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(f.Fd())}
			if err := cmd.Run(); err == nil {
				t.Fatal("shell survived kill -KILL")
			}
			e := collectUntil(t, s, eventTimeout, exitOf(cmd.Process.Pid))
			if got := e[len(e)-1]; got.Signal != int(syscall.SIGKILL) {
				t.Errorf("exit signal = %d, want SIGKILL; %s", got.Signal, describe(got))
			}
		})
	}
}

// TestCloseReleases loads and closes the sensor a few times and checks
// that no file descriptor (program, map, link, ring) is left open.
func TestCloseReleases(t *testing.T) {
	loadOrSkip(t, Options{}).Close() // warm caches (kernel BTF) first
	fds := func() int {
		d, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(d)
	}
	before := fds()
	for range 5 {
		s, err := Load(Options{RingBytes: 1 << 16})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if after := fds(); after != before {
		t.Errorf("%d file descriptors open after 5 Load/Close, %d before", after, before)
	}
}
