package seccomp

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"moat.dev/moat/internal/seccomp/internal/int80"
)

// A filter cannot be removed, so every test that installs one does it in a
// child: the test binary re-executed with envProbe set, which TestMain
// routes to childMain. The child reports on stdout as JSON.
const (
	envProbe = "MOAT_SECCOMP_TEST_PROBE" // which probe the child runs
	envMode  = "MOAT_SECCOMP_TEST_MODE"  // modeFilter, modeNoFilter or modeNoNNP
	envArg   = "MOAT_SECCOMP_TEST_ARG"   // the probe's argument
)

const (
	modeFilter   = "filter"   // no_new_privs, then Install(Default())
	modeNoFilter = "nofilter" // no_new_privs only: the control
	modeNoNNP    = "nonnp"    // neither
)

func TestMain(m *testing.M) {
	if probe := os.Getenv(envProbe); probe != "" {
		os.Exit(childMain(probe, os.Getenv(envMode), os.Getenv(envArg)))
	}
	os.Exit(m.Run())
}

// report is what a child prints.
type report struct {
	InstallError string            `json:"installError,omitempty"`
	Status       string            `json:"status"` // the Seccomp lines of /proc/self/status
	Errnos       map[string]int    `json:"errnos,omitempty"`
	Failures     map[string]string `json:"failures,omitempty"`
	Output       string            `json:"output,omitempty"`
	NsPerOp      float64           `json:"nsPerOp,omitempty"`
	Pid          int               `json:"pid,omitempty"`
	NoNNP        bool              `json:"noNNP,omitempty"` // Install returned ErrNoNewPrivs
}

var childProbes = map[string]func(rep *report, arg string){
	"syscalls": probeSyscalls,
	"work":     probeWork,
	"exec":     probeExec,
	"run":      probeRun,
	"x32":      probeX32,
	"i386":     probeI386,
	"install":  func(*report, string) {},
	"bench":    probeBench,
	"listener": probeListener,
}

func childMain(probe, mode, arg string) int {
	runtime.LockOSThread()
	// A filter kill must not leave a core file behind.
	_ = unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{})
	fn, ok := childProbes[probe]
	if !ok {
		fmt.Fprintf(os.Stderr, "unknown probe %q\n", probe)
		return 2
	}
	var rep report
	if mode != modeNoNNP {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			fmt.Fprintf(os.Stderr, "no_new_privs: %v\n", err)
			return 2
		}
	}
	if mode == modeFilter || mode == modeNoNNP {
		if err := Install(Default()); err != nil {
			rep.InstallError = err.Error()
			rep.NoNNP = errors.Is(err, ErrNoNewPrivs)
		}
	}
	rep.Status = seccompStatus("/proc/self/status")
	if rep.InstallError == "" {
		fn(&rep, arg)
	}
	if err := json.NewEncoder(os.Stdout).Encode(&rep); err != nil {
		return 2
	}
	return 0
}

func seccompStatus(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	var lines []string
	for l := range strings.Lines(string(b)) {
		if strings.HasPrefix(l, "Seccomp") || strings.HasPrefix(l, "NoNewPrivs") {
			lines = append(lines, strings.Join(strings.Fields(l), " "))
		}
	}
	return strings.Join(lines, "; ")
}

// child is one run of the test binary as a probe.
type child struct {
	report
	state          *os.ProcessState
	stdout, stderr string
}

func runChild(t testing.TB, probe, mode, arg string) child {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), envProbe+"="+probe, envMode+"="+mode, envArg+"="+arg,
		// A race-enabled child would otherwise sleep a second at exit.
		"GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	// A session of its own: no controlling terminal for vhangup or
	// TIOCSTI to reach.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	c := child{state: cmd.ProcessState, stdout: stdout.String(), stderr: stderr.String()}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("run %s child: %v", probe, err)
	}
	if probe != "exec" && c.state.Success() {
		if err := json.Unmarshal(stdout.Bytes(), &c.report); err != nil {
			t.Fatalf("%s child: decode report: %v\nstdout: %s\nstderr: %s", probe, err, c.stdout, c.stderr)
		}
	}
	return c
}

func (c child) mustSucceed(t testing.TB) {
	t.Helper()
	if !c.state.Success() {
		t.Fatalf("child %v\nstdout: %s\nstderr: %s", c.state, c.stdout, c.stderr)
	}
	if c.InstallError != "" {
		t.Fatalf("child could not install the filter: %s", c.InstallError)
	}
}

// signal returns the signal that killed the child, or 0.
func (c child) signal() syscall.Signal {
	ws, ok := c.state.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() {
		return 0
	}
	return ws.Signal()
}

// requireOrSkip turns a machine that cannot run a probe into a skip, or
// into a failure under CI=true, where every wall must be tested.
func requireOrSkip(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why)
}

// A path that exists nowhere, so that a syscall the filter failed to
// refuse changes nothing.
var (
	nowhere   = mustBytePtr("/nonexistent-moat-seccomp-test")
	scratchFD int
	scratch   [64]byte
)

func mustBytePtr(s string) *byte {
	p, err := unix.BytePtrFromString(s)
	if err != nil {
		panic(err)
	}
	return p
}

func raw(nr uintptr, args ...uintptr) syscall.Errno {
	var a [6]uintptr
	copy(a[:], args)
	r, _, errno := unix.Syscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5])
	if errno == 0 && nr == unix.SYS_SOCKET {
		unix.Close(int(r))
	}
	return errno
}

const none = ^uintptr(0) // -1: no such descriptor or id

// sysProbe is one syscall the child makes, with arguments chosen so that
// it fails harmlessly if nothing stops it, and the errno the default
// filter must give it (0: the filter lets it through and it succeeds).
type sysProbe struct {
	name string
	call func() syscall.Errno
	want syscall.Errno
}

func path() uintptr { return uintptr(unsafe.Pointer(nowhere)) }

func buf() uintptr { return uintptr(unsafe.Pointer(&scratch[0])) }

// cloneProbe asks for a new namespace together with CLONE_SIGHAND but not
// CLONE_VM, which the kernel rejects with EINVAL before doing anything;
// the filter must refuse it first.
func cloneProbe(flag uintptr) func() syscall.Errno {
	return func() syscall.Errno { return raw(unix.SYS_CLONE, flag|unix.CLONE_SIGHAND, 0, 0, 0, 0) }
}

var sysProbes = []sysProbe{
	{"ptrace", func() syscall.Errno { return raw(unix.SYS_PTRACE, 0xffff, 0, 0, 0) }, unix.EPERM},
	{"mount", func() syscall.Errno { return raw(unix.SYS_MOUNT, path(), path(), path(), 0, 0) }, unix.EPERM},
	{"umount2", func() syscall.Errno { return raw(unix.SYS_UMOUNT2, path(), 0) }, unix.EPERM},
	{"unshare(CLONE_NEWUSER)", func() syscall.Errno { return raw(unix.SYS_UNSHARE, unix.CLONE_NEWUSER) }, unix.EPERM},
	{"unshare(CLONE_NEWNS)", func() syscall.Errno { return raw(unix.SYS_UNSHARE, unix.CLONE_NEWNS|unix.CLONE_NEWUSER) }, unix.EPERM},
	{"setns", func() syscall.Errno { return raw(unix.SYS_SETNS, none, 0) }, unix.EPERM},
	{"bpf", func() syscall.Errno { return raw(unix.SYS_BPF, 0xffff, 0, 0) }, unix.EPERM},
	{"perf_event_open", func() syscall.Errno { return raw(unix.SYS_PERF_EVENT_OPEN, 0, 0, none, none, 0) }, unix.EPERM},
	{"keyctl", func() syscall.Errno { return raw(unix.SYS_KEYCTL, 0xffff, 0, 0, 0, 0) }, unix.EPERM},
	{"add_key", func() syscall.Errno { return raw(unix.SYS_ADD_KEY, 0, 0, 0, 0, 0) }, unix.EPERM},
	{"request_key", func() syscall.Errno { return raw(unix.SYS_REQUEST_KEY, 0, 0, 0, 0) }, unix.EPERM},
	{"userfaultfd", func() syscall.Errno { return raw(unix.SYS_USERFAULTFD, 0xffffffff) }, unix.EPERM},
	{"io_uring_setup", func() syscall.Errno { return raw(unix.SYS_IO_URING_SETUP, 0, 0) }, unix.EPERM},
	{"io_uring_enter", func() syscall.Errno { return raw(unix.SYS_IO_URING_ENTER, none, 0, 0, 0, 0, 0) }, unix.EPERM},
	{"io_uring_register", func() syscall.Errno { return raw(unix.SYS_IO_URING_REGISTER, none, 0, 0, 0) }, unix.EPERM},
	{"open_by_handle_at", func() syscall.Errno { return raw(unix.SYS_OPEN_BY_HANDLE_AT, none, 0, 0) }, unix.EPERM},
	{"name_to_handle_at", func() syscall.Errno { return raw(unix.SYS_NAME_TO_HANDLE_AT, none, 0, 0, 0, 0) }, unix.EPERM},
	{"process_vm_readv", func() syscall.Errno { return raw(unix.SYS_PROCESS_VM_READV, uintptr(os.Getpid()), 0, 0, 0, 0, 0) }, unix.EPERM},
	{"process_vm_writev", func() syscall.Errno { return raw(unix.SYS_PROCESS_VM_WRITEV, uintptr(os.Getpid()), 0, 0, 0, 0, 0) }, unix.EPERM},
	{"kexec_load", func() syscall.Errno { return raw(unix.SYS_KEXEC_LOAD, 0, 0, 0, 0xffffffff) }, unix.EPERM},
	{"kexec_file_load", func() syscall.Errno { return raw(unix.SYS_KEXEC_FILE_LOAD, none, none, 0, 0, 0xffff) }, unix.EPERM},
	{"init_module", func() syscall.Errno { return raw(unix.SYS_INIT_MODULE, 0, 0, 0) }, unix.EPERM},
	{"finit_module", func() syscall.Errno { return raw(unix.SYS_FINIT_MODULE, none, 0, 0) }, unix.EPERM},
	{"delete_module", func() syscall.Errno { return raw(unix.SYS_DELETE_MODULE, 0, 0) }, unix.EPERM},
	// Without the magic numbers reboot does nothing.
	{"reboot", func() syscall.Errno { return raw(unix.SYS_REBOOT, 0, 0, 0, 0) }, unix.EPERM},
	{"swapon", func() syscall.Errno { return raw(unix.SYS_SWAPON, path(), 0) }, unix.EPERM},
	{"swapoff", func() syscall.Errno { return raw(unix.SYS_SWAPOFF, path()) }, unix.EPERM},
	{"pivot_root", func() syscall.Errno { return raw(unix.SYS_PIVOT_ROOT, path(), path()) }, unix.EPERM},
	{"chroot", func() syscall.Errno { return raw(unix.SYS_CHROOT, path()) }, unix.EPERM},
	{"acct", func() syscall.Errno { return raw(unix.SYS_ACCT, path()) }, unix.EPERM},
	{"clock_settime", func() syscall.Errno { return raw(unix.SYS_CLOCK_SETTIME, 0xffff, 0) }, unix.EPERM},
	{"clock_adjtime", func() syscall.Errno { return raw(unix.SYS_CLOCK_ADJTIME, 0xffff, 0) }, unix.EPERM},
	{"adjtimex", func() syscall.Errno { return raw(unix.SYS_ADJTIMEX, 0) }, unix.EPERM},
	{"quotactl", func() syscall.Errno { return raw(unix.SYS_QUOTACTL, 0, 0, 0, 0) }, unix.EPERM},
	{"fanotify_init", func() syscall.Errno { return raw(unix.SYS_FANOTIFY_INIT, 0xffffffff, 0) }, unix.EPERM},
	{"vhangup", func() syscall.Errno { return raw(unix.SYS_VHANGUP) }, unix.EPERM},
	{"syslog", func() syscall.Errno { return raw(unix.SYS_SYSLOG, 1000, 0, 0) }, unix.EPERM},
	{"kcmp", func() syscall.Errno { return raw(unix.SYS_KCMP, none, none, 0xffff, 0, 0) }, unix.EPERM},
	{"pidfd_getfd", func() syscall.Errno { return raw(unix.SYS_PIDFD_GETFD, none, 0, 0) }, unix.EPERM},
	{"mount_setattr", func() syscall.Errno { return raw(unix.SYS_MOUNT_SETATTR, none, 0, 0, 0, 0) }, unix.EPERM},
	{"move_mount", func() syscall.Errno { return raw(unix.SYS_MOVE_MOUNT, none, 0, none, 0, 0) }, unix.EPERM},
	{"open_tree", func() syscall.Errno { return raw(unix.SYS_OPEN_TREE, none, 0, 0) }, unix.EPERM},
	{"fsopen", func() syscall.Errno { return raw(unix.SYS_FSOPEN, 0, 0) }, unix.EPERM},
	{"fsconfig", func() syscall.Errno { return raw(unix.SYS_FSCONFIG, none, 0, 0, 0, 0) }, unix.EPERM},
	{"fsmount", func() syscall.Errno { return raw(unix.SYS_FSMOUNT, none, 0, 0) }, unix.EPERM},
	{"fspick", func() syscall.Errno { return raw(unix.SYS_FSPICK, none, 0, 0) }, unix.EPERM},

	// glibc falls back from clone3 to clone only on ENOSYS.
	{"clone3", func() syscall.Errno { return raw(unix.SYS_CLONE3, 0, 0) }, unix.ENOSYS},
	{"clone(CLONE_NEWUSER)", cloneProbe(unix.CLONE_NEWUSER), unix.EPERM},
	{"clone(CLONE_NEWNS)", cloneProbe(unix.CLONE_NEWNS), unix.EPERM},
	{"clone(CLONE_NEWPID)", cloneProbe(unix.CLONE_NEWPID), unix.EPERM},
	{"clone(CLONE_NEWNET)", cloneProbe(unix.CLONE_NEWNET), unix.EPERM},
	{"clone(CLONE_NEWIPC)", cloneProbe(unix.CLONE_NEWIPC), unix.EPERM},
	{"clone(CLONE_NEWUTS)", cloneProbe(unix.CLONE_NEWUTS), unix.EPERM},
	{"clone(CLONE_NEWCGROUP)", cloneProbe(unix.CLONE_NEWCGROUP), unix.EPERM},
	// The same call without a namespace flag reaches the kernel.
	{"clone(CLONE_SIGHAND)", cloneProbe(0), unix.EINVAL},

	{"personality(ADDR_NO_RANDOMIZE)", func() syscall.Errno { return raw(unix.SYS_PERSONALITY, 0x0040000) }, unix.EPERM},
	{"personality(query)", func() syscall.Errno { return raw(unix.SYS_PERSONALITY, personalityQuery) }, 0},
	{"ioctl(TIOCSTI)", func() syscall.Errno { return raw(unix.SYS_IOCTL, 0, unix.TIOCSTI, buf()) }, unix.EPERM},
	{"ioctl(TIOCLINUX)", func() syscall.Errno { return raw(unix.SYS_IOCTL, 0, unix.TIOCLINUX, buf()) }, unix.EPERM},
	{"ioctl(FIONREAD)", func() syscall.Errno { return raw(unix.SYS_IOCTL, uintptr(scratchFD), unix.TIOCINQ, buf()) }, 0},

	{"socket(AF_PACKET, SOCK_RAW)", func() syscall.Errno { return raw(unix.SYS_SOCKET, unix.AF_PACKET, unix.SOCK_RAW, 0x0300) }, unix.EPERM},
	{"socket(AF_PACKET, SOCK_DGRAM)", func() syscall.Errno { return raw(unix.SYS_SOCKET, unix.AF_PACKET, unix.SOCK_DGRAM, 0x0300) }, unix.EPERM},
	{"socket(AF_INET, SOCK_RAW, IPPROTO_ICMP)", func() syscall.Errno { return raw(unix.SYS_SOCKET, unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP) }, unix.EPERM},
	{"socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6)", func() syscall.Errno {
		return raw(unix.SYS_SOCKET, unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMPV6)
	}, unix.EPERM},
	{"socket(AF_NETLINK, NETLINK_AUDIT)", func() syscall.Errno { return raw(unix.SYS_SOCKET, unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_AUDIT) }, unix.EPERM},
	{"socket(AF_NETLINK, NETLINK_SOCK_DIAG)", func() syscall.Errno {
		return raw(unix.SYS_SOCKET, unix.AF_NETLINK, unix.SOCK_DGRAM, unix.NETLINK_SOCK_DIAG)
	}, unix.EPERM},
	{"socket(AF_ALG)", func() syscall.Errno { return raw(unix.SYS_SOCKET, unix.AF_ALG, unix.SOCK_SEQPACKET, 0) }, unix.EPERM},
	{"socket(AF_INET, SOCK_STREAM)", func() syscall.Errno {
		return raw(unix.SYS_SOCKET, unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	}, 0},
	{"socket(AF_INET6, SOCK_DGRAM)", func() syscall.Errno { return raw(unix.SYS_SOCKET, unix.AF_INET6, unix.SOCK_DGRAM, 0) }, 0},
	{"socket(AF_UNIX, SOCK_SEQPACKET)", func() syscall.Errno { return raw(unix.SYS_SOCKET, unix.AF_UNIX, unix.SOCK_SEQPACKET, 0) }, 0},
	{"socket(AF_NETLINK, NETLINK_ROUTE)", func() syscall.Errno {
		return raw(unix.SYS_SOCKET, unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	}, 0},
	{"getpid", func() syscall.Errno { return raw(unix.SYS_GETPID) }, 0},
}

func probeSyscalls(rep *report, _ string) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		rep.Failures = map[string]string{"pipe": err.Error()}
		return
	}
	scratchFD = p[0]
	rep.Errnos = map[string]int{}
	for _, sp := range sysProbes {
		rep.Errnos[sp.name] = int(sp.call())
	}
}

// TestDeniedSyscalls makes each probe syscall under the filter and without
// it: the filter must give the wanted errno, and the control shows the
// kernel would have answered otherwise, so the answer is the filter's.
func TestDeniedSyscalls(t *testing.T) {
	filtered := runChild(t, "syscalls", modeFilter, "")
	filtered.mustSucceed(t)
	control := runChild(t, "syscalls", modeNoFilter, "")
	control.mustSucceed(t)
	if !strings.Contains(filtered.Status, "Seccomp: 2") {
		t.Errorf("filtered child status %q, want Seccomp: 2", filtered.Status)
	}
	if !strings.Contains(control.Status, "Seccomp: 0") {
		t.Errorf("control child status %q, want Seccomp: 0", control.Status)
	}
	for _, sp := range sysProbes {
		t.Run(sp.name, func(t *testing.T) {
			got, ok := filtered.Errnos[sp.name]
			if !ok {
				t.Fatal("the child did not report it")
			}
			if syscall.Errno(got) != sp.want {
				t.Errorf("under the filter: %v, want %v", errnoText(got), errnoText(int(sp.want)))
			}
			native := control.Errnos[sp.name]
			if (sp.want == unix.EPERM || sp.want == unix.ENOSYS) && syscall.Errno(native) == sp.want {
				// The kernel would have refused it the same way
				// (lockdown, a sysctl): the probe proves nothing.
				t.Logf("without the filter too: %v", errnoText(native))
			}
			if sp.want == 0 && native != 0 {
				t.Errorf("without the filter: %v, want success", errnoText(native))
			}
		})
	}
}

func errnoText(e int) string {
	if e == 0 {
		return "success"
	}
	return fmt.Sprintf("%s (%s)", syscall.Errno(e).Error(), errnoName(syscall.Errno(e)))
}

// probeWork does the ordinary work of a Go runtime and a shell under the
// filter; each failure is reported by step.
func probeWork(rep *report, _ string) {
	rep.Failures = map[string]string{}
	step := func(name string, fn func() error) {
		if err := fn(); err != nil {
			rep.Failures[name] = err.Error()
		}
	}
	step("shell", func() error {
		out, err := exec.Command("/bin/sh", "-c", "echo ok; ls / >/dev/null; cat /proc/self/status >/dev/null; echo done | cat").CombinedOutput()
		if err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
		if string(out) != "ok\ndone\n" {
			return fmt.Errorf("output %q", out)
		}
		return nil
	})
	step("goroutines and timers", func() error {
		var wg sync.WaitGroup
		var mu sync.Mutex
		total := 0
		for i := range 64 {
			wg.Go(func() {
				timer := time.NewTimer(time.Duration(i%5) * time.Millisecond)
				<-timer.C
				for range 1000 {
					mu.Lock()
					total++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		runtime.GC()
		if total != 64*1000 {
			return fmt.Errorf("total %d", total)
		}
		return nil
	})
	step("tcp loopback", func() error {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer ln.Close()
		done := make(chan error, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				done <- err
				return
			}
			defer c.Close()
			_, err = io.Copy(c, c)
			done <- err
		}()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return err
		}
		if _, err := c.Write([]byte("ping")); err != nil {
			return err
		}
		got := make([]byte, 4)
		if _, err := io.ReadFull(c, got); err != nil {
			return err
		}
		c.Close()
		if err := <-done; err != nil {
			return err
		}
		if string(got) != "ping" {
			return fmt.Errorf("echo %q", got)
		}
		return nil
	})
	step("http loopback", func() error {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, "hello from the sandbox")
		})}
		go srv.Serve(ln)
		defer srv.Close()
		resp, err := http.Get("http://" + ln.Addr().String() + "/")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if string(body) != "hello from the sandbox" {
			return fmt.Errorf("body %q", body)
		}
		return nil
	})
	step("udp loopback", func() error {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer pc.Close()
		c, err := net.Dial("udp", pc.LocalAddr().String())
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := c.Write([]byte("dgram")); err != nil {
			return err
		}
		b := make([]byte, 16)
		n, _, err := pc.ReadFrom(b)
		if err != nil {
			return err
		}
		if string(b[:n]) != "dgram" {
			return fmt.Errorf("got %q", b[:n])
		}
		return nil
	})
	step("unix socket", func() error {
		dir, err := os.MkdirTemp("", "moat-seccomp-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		ln, err := net.Listen("unix", filepath.Join(dir, "s"))
		if err != nil {
			return err
		}
		defer ln.Close()
		go func() {
			if c, err := ln.Accept(); err == nil {
				c.Write([]byte("x"))
				c.Close()
			}
		}()
		c, err := net.Dial("unix", filepath.Join(dir, "s"))
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = io.ReadAll(c)
		return err
	})
	step("net.Interfaces (NETLINK_ROUTE)", func() error {
		ifs, err := net.Interfaces()
		if err != nil {
			return err
		}
		if len(ifs) == 0 {
			return errors.New("no interfaces")
		}
		return nil
	})
	step("getrandom", func() error {
		b := make([]byte, 32)
		if _, err := unix.Getrandom(b, 0); err != nil {
			return err
		}
		_, err := rand.Read(b)
		return err
	})
	step("epoll", func() error {
		ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			return err
		}
		defer unix.Close(ep)
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
			return err
		}
		defer unix.Close(p[0])
		defer unix.Close(p[1])
		if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, p[0], &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(p[0])}); err != nil {
			return err
		}
		if _, err := unix.Write(p[1], []byte("e")); err != nil {
			return err
		}
		ev := make([]unix.EpollEvent, 1)
		n, err := unix.EpollWait(ep, ev, 1000)
		if err != nil {
			return err
		}
		if n != 1 || ev[0].Fd != int32(p[0]) {
			return fmt.Errorf("epoll_wait: %d events", n)
		}
		return nil
	})
	step("futex", func() error {
		// Unbuffered channels between goroutines on other threads park
		// and wake them through futexes.
		ping, pong := make(chan int), make(chan int)
		go func() {
			for v := range ping {
				pong <- v + 1
			}
			close(pong)
		}()
		for i := range 1000 {
			ping <- i
			if v := <-pong; v != i+1 {
				return fmt.Errorf("got %d", v)
			}
		}
		close(ping)
		return nil
	})
	step("mmap and mprotect", func() error {
		b, err := unix.Mmap(-1, 0, 1<<16, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if err != nil {
			return err
		}
		b[100] = 42
		if err := unix.Mprotect(b, unix.PROT_READ|unix.PROT_EXEC); err != nil {
			return err
		}
		if err := unix.Madvise(b, unix.MADV_DONTNEED); err != nil {
			return err
		}
		return unix.Munmap(b)
	})
	step("files", func() error {
		dir, err := os.MkdirTemp("", "moat-seccomp-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
		if err := os.WriteFile(a, []byte("data"), 0o600); err != nil {
			return err
		}
		if err := os.Rename(a, b); err != nil {
			return err
		}
		if err := os.Symlink(b, a); err != nil {
			return err
		}
		got, err := os.ReadFile(a)
		if err != nil {
			return err
		}
		if string(got) != "data" {
			return fmt.Errorf("read %q", got)
		}
		ents, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		if len(ents) != 2 {
			return fmt.Errorf("%d entries", len(ents))
		}
		return nil
	})
	step("pipes and exec with pidfd", func() error {
		cmd := exec.Command("/bin/cat")
		cmd.Stdin = strings.NewReader("through a pipe")
		out, err := cmd.Output()
		if err != nil {
			return err
		}
		if string(out) != "through a pipe" {
			return fmt.Errorf("output %q", out)
		}
		return nil
	})
	// TSYNC: every thread of the process runs under the filter.
	step("every thread filtered", func() error {
		tasks, err := filepath.Glob("/proc/self/task/*/status")
		if err != nil {
			return err
		}
		if len(tasks) < 2 {
			return fmt.Errorf("only %d threads", len(tasks))
		}
		for _, task := range tasks {
			if s := seccompStatus(task); !strings.Contains(s, "Seccomp: 2") || !strings.Contains(s, "NoNewPrivs: 1") {
				return fmt.Errorf("%s: %s", task, s)
			}
		}
		return nil
	})
}

func TestAllowedWork(t *testing.T) {
	c := runChild(t, "work", modeFilter, "")
	c.mustSucceed(t)
	if len(c.Failures) > 0 {
		for step, err := range c.Failures {
			t.Errorf("%s: %s", step, err)
		}
		t.Logf("child stderr: %s", c.stderr)
	}
}

// probeExec replaces the child with a shell that tries to make a user
// namespace: the filter must survive the execve.
func probeExec(rep *report, _ string) {
	script := `grep '^Seccomp:' /proc/self/status
if unshare -U true; then echo unshare=allowed; else echo unshare=refused; fi`
	err := syscall.Exec("/bin/sh", []string{"sh", "-c", script}, os.Environ())
	rep.Failures = map[string]string{"exec": err.Error()}
}

func TestFilterSurvivesExec(t *testing.T) {
	if _, err := exec.LookPath("unshare"); err != nil {
		requireOrSkip(t, "no unshare(1) on this machine")
	}
	c := runChild(t, "exec", modeFilter, "")
	if !c.state.Success() {
		t.Fatalf("shell: %v\nstdout: %s\nstderr: %s", c.state, c.stdout, c.stderr)
	}
	if !strings.Contains(c.stdout, "Seccomp:\t2") {
		t.Errorf("the shell does not run under the filter:\n%s", c.stdout)
	}
	if !strings.Contains(c.stdout, "unshare=refused") {
		t.Errorf("unshare -U succeeded after exec:\n%s", c.stdout)
	}
	if !strings.Contains(c.stderr, "Operation not permitted") {
		t.Errorf("unshare failed, but not with EPERM: %s", c.stderr)
	}
}

// probeRun serves "hello" over HTTP on loopback, then starts a command (a
// runtime) under the filter with the server's URL in MOAT_TEST_URL, and
// reports its combined output.
func probeRun(rep *report, arg string) {
	rep.Failures = map[string]string{}
	var argv []string
	if err := json.Unmarshal([]byte(arg), &argv); err != nil {
		rep.Failures["args"] = err.Error()
		return
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		rep.Failures["listen"] = err.Error()
		return
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello")
	})}
	go srv.Serve(ln)
	defer srv.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "MOAT_TEST_URL=http://"+ln.Addr().String()+"/")
	out, err := cmd.CombinedOutput()
	rep.Output = string(out)
	if err != nil {
		rep.Failures["run"] = err.Error()
	}
}

// javaProgram exercises a JVM: threads, a socket, an HTTP client, a child
// process, and the garbage collector.
const javaProgram = `
import java.net.*;
import java.net.http.*;
import java.util.concurrent.*;

public class Probe {
    public static void main(String[] args) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(4);
        Future<Integer> sum = pool.submit(() -> { int s = 0; for (int i = 0; i < 1000; i++) s += i; return s; });
        HttpClient client = HttpClient.newHttpClient();
        String body = client.send(HttpRequest.newBuilder(URI.create(System.getenv("MOAT_TEST_URL"))).build(),
            HttpResponse.BodyHandlers.ofString()).body();
        Process p = new ProcessBuilder("true").start();
        for (int i = 0; i < 100; i++) { byte[] garbage = new byte[1 << 20]; }
        System.gc();
        System.out.println("java=" + body + " " + sum.get() + " " + p.waitFor());
        pool.shutdown();
    }
}
`

// TestRuntimes starts the language runtimes installed on this machine
// under the filter, each doing threads, a child process, and an HTTP round
// trip on loopback: the allow-list must be enough for them.
func TestRuntimes(t *testing.T) {
	javaSource := filepath.Join(t.TempDir(), "Probe.java")
	if err := os.WriteFile(javaSource, []byte(javaProgram), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		argv []string
		want string
	}{
		{"sh and curl", []string{"/bin/sh", "-c", `
			curl -sS --max-time 5 "$MOAT_TEST_URL"; echo " curl=$?"
			curl -sS --max-time 5 http://127.0.0.1:1/ 2>/dev/null; echo "refused=$?"
			(echo a; echo b) | sort -r | tr -d '\n'; echo
			x=$(date +%s) && test -n "$x" && echo date=ok`}, "hello curl=0\nrefused=7\nba\ndate=ok"},
		{"python3", []string{"python3", "-c", `
import socket, subprocess, threading, hashlib, os, urllib.request, multiprocessing.pool
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.bind(("127.0.0.1", 0)); srv.listen(1)
def serve():
    c, _ = srv.accept(); c.sendall(c.recv(16)); c.close()
t = threading.Thread(target=serve); t.start()
c = socket.create_connection(srv.getsockname()); c.sendall(b"py"); assert c.recv(16) == b"py"; t.join()
assert subprocess.run(["true"]).returncode == 0
with multiprocessing.pool.ThreadPool(4) as p: assert sum(p.map(lambda x: x*x, range(10))) == 285
body = urllib.request.urlopen(os.environ["MOAT_TEST_URL"]).read().decode()
print("python=" + body, len(os.urandom(8)), hashlib.sha256(b"").hexdigest()[:8], socket.getaddrinfo("localhost", 80)[0][0].name)
`}, "python=hello 8 e3b0c442"},
		{"node", []string{"node", "-e", `
const http = require('http'), cp = require('child_process'), fs = require('fs'), os = require('os');
http.get(process.env.MOAT_TEST_URL, r => {
  let b = ''; r.on('data', d => b += d); r.on('end', () => {
    fs.readFile('/proc/self/status', (e) => {
      if (e) throw e;
      console.log('node=' + b, cp.execSync('echo child').toString().trim(), os.cpus().length > 0);
    });
  });
});`}, "node=hello child true"},
		{"java", []string{"java", "-XX:+UseSerialGC", javaSource}, "java=hello 499500 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := exec.LookPath(tt.argv[0]); err != nil {
				t.Skipf("%s is not installed", tt.argv[0])
			}
			arg, err := json.Marshal(tt.argv)
			if err != nil {
				t.Fatal(err)
			}
			c := runChild(t, "run", modeFilter, string(arg))
			c.mustSucceed(t)
			if len(c.Failures) > 0 || !strings.Contains(c.Output, tt.want) {
				t.Errorf("%v under the filter: %v\noutput:\n%s", tt.argv[0], c.Failures, c.Output)
			}
		})
	}
}

func probeX32(rep *report, _ string) {
	_, _, errno := unix.RawSyscall(x32SyscallBit|unix.SYS_GETPID, 0, 0, 0)
	rep.Errnos = map[string]int{"x32 getpid": int(errno)}
}

func TestX32Killed(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("x32 exists on x86_64 only")
	}
	c := runChild(t, "x32", modeFilter, "")
	if sig := c.signal(); sig != syscall.SIGSYS {
		t.Fatalf("child %v (report %+v), want killed by SIGSYS", c.state, c.report)
	}
	// Without the filter the call fails and the process lives on.
	control := runChild(t, "x32", modeNoFilter, "")
	control.mustSucceed(t)
	t.Logf("without the filter: %s", errnoText(control.Errnos["x32 getpid"]))
}

func probeI386(rep *report, _ string) {
	rep.Output = strconv.Itoa(int(int32(int80.Getpid())))
	rep.Pid = os.Getpid()
}

// TestForeignArchKilled makes a real i386 system call under the filter.
// The same property, the kill verdict for every foreign architecture, is
// proven on every host in the BPF interpreter (TestDefaultVerdicts,
// "foreign arch ..."); this test adds the kernel's own evaluation where the
// kernel runs i386 code at all.
func TestForeignArchKilled(t *testing.T) {
	if !int80.Available {
		t.Skip("not applicable: no i386 gate on this architecture")
	}
	control := runChild(t, "i386", modeNoFilter, "")
	if noI386Gate(control) {
		// Not a missing capability of the test machine: no seccomp
		// filter can see a call that never enters the kernel.
		t.Skip("not applicable on this host: without any filter, int 0x80 faults (the kernel runs no i386 code), " +
			"so no foreign-architecture system call can reach seccomp; TestDefaultVerdicts/foreign_arch_i386 proves the kill verdict in the BPF interpreter")
	}
	if !control.state.Success() || control.Output != strconv.Itoa(control.Pid) {
		requireOrSkip(t, fmt.Sprintf("i386 emulation does not work here: %v %+v\nstderr: %s", control.state, control.report, control.stderr))
	}
	c := runChild(t, "i386", modeFilter, "")
	if sig := c.signal(); sig != syscall.SIGSYS {
		t.Fatalf("child %v (report %+v), want killed by SIGSYS", c.state, c.report)
	}
}

// noI386Gate tells an i386 probe child that the kernel refused the int 0x80
// gate itself (a general protection fault: SIGSEGV from the kernel in the
// gate instruction) from any other failure.
func noI386Gate(c child) bool {
	return !c.state.Success() && strings.Contains(c.stderr, "signal SIGSEGV: segmentation violation code=0x80") &&
		strings.Contains(c.stderr, "int80.Getpid")
}

func TestInstallNeedsNoNewPrivs(t *testing.T) {
	c := runChild(t, "install", modeNoNNP, "")
	if !c.state.Success() {
		t.Fatalf("child %v\nstderr: %s", c.state, c.stderr)
	}
	if !c.NoNNP {
		t.Fatalf("Install without no_new_privs = %q, want ErrNoNewPrivs", c.InstallError)
	}
	if !strings.Contains(c.Status, "Seccomp: 0") {
		t.Errorf("a filter was loaded anyway: %s", c.Status)
	}
}

func TestInstallInvalidPolicy(t *testing.T) {
	// Install validates before it touches the process, so this is safe
	// in the test process itself.
	for _, p := range []*Policy{nil, {}, {Allow: []string{"frobnicate"}}, supervisedExec()} {
		if err := Install(p); !errors.Is(err, ErrInvalidPolicy) {
			t.Fatalf("Install(%+v) = %v, want ErrInvalidPolicy", p, err)
		}
	}
	if s := seccompStatus("/proc/self/status"); !strings.Contains(s, "Seccomp: 0") {
		t.Fatalf("test process: %s", s)
	}
}

// probeListener loads Default with uname handed to a supervisor and
// supervises itself from another goroutine: the first uname is let
// through, the second failed with EACCES; after the listener is closed, a
// third fails with ENOSYS. The errnos are reported under "continue",
// "fail" and "closed"; anything unexpected under Failures.
func probeListener(rep *report, _ string) {
	rep.Errnos = map[string]int{}
	rep.Failures = map[string]string{}
	p := Default()
	p.Supervise("uname")
	f, err := InstallListener(p)
	if err != nil {
		rep.InstallError = err.Error()
		return
	}
	// The listener owns its own descriptor.
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	f.Close()
	if err != nil {
		rep.Failures["dup"] = err.Error()
		return
	}
	l, err := NewListener(fd)
	if err != nil {
		rep.Failures["listener"] = err.Error()
		return
	}
	tid := unix.Gettid()
	type seen struct {
		n     Notification
		valid bool
		err   error
	}
	got := make(chan seen)
	ended := make(chan error, 1)
	go func() {
		answers := []func(uint64) error{l.Continue, func(id uint64) error { return l.Fail(id, unix.EACCES) }}
		for _, answer := range answers {
			n, err := l.Receive()
			if err != nil {
				got <- seen{err: err}
				return
			}
			s := seen{n: n, valid: l.Valid(n.ID)}
			s.err = answer(n.ID)
			if s.err == nil && l.Valid(n.ID) {
				s.err = errors.New("still valid after the answer")
			}
			got <- s
		}
		_, err := l.Receive()
		ended <- err
	}()
	var uts unix.Utsname
	uname := func() syscall.Errno { return raw(unix.SYS_UNAME, uintptr(unsafe.Pointer(&uts))) }
	for _, name := range []string{"continue", "fail"} {
		// This thread waits in the kernel until the goroutine answers.
		rep.Errnos[name] = int(uname())
		s := <-got
		switch {
		case s.err != nil:
			rep.Failures[name] = s.err.Error()
		case s.n.Nr != unix.SYS_UNAME:
			rep.Failures[name] = fmt.Sprintf("notification for syscall %d", s.n.Nr)
		case s.n.Pid != tid:
			rep.Failures[name] = fmt.Sprintf("notification pid %d, the caller is %d", s.n.Pid, tid)
		case !s.valid:
			rep.Failures[name] = "notification not valid before the answer"
		}
	}
	if err := l.Close(); err != nil {
		rep.Failures["close"] = err.Error()
	}
	if err := <-ended; !errors.Is(err, ErrListenerClosed) {
		rep.Failures["receive after close"] = fmt.Sprint(err)
	}
	rep.Errnos["closed"] = int(uname())
}

// TestListener supervises a call from the process that loaded the filter:
// Continue lets it run, Fail fails it, and without a listener it fails
// with ENOSYS instead of running.
func TestListener(t *testing.T) {
	c := runChild(t, "listener", modeNoFilter, "")
	c.mustSucceed(t)
	for name, f := range c.Failures {
		t.Errorf("%s: %s", name, f)
	}
	for name, want := range map[string]syscall.Errno{"continue": 0, "fail": unix.EACCES, "closed": unix.ENOSYS} {
		if got := syscall.Errno(c.Errnos[name]); got != want {
			t.Errorf("%s: uname errno %v, want %v", name, errnoText(int(got)), errnoText(int(want)))
		}
	}
}

// probeBench makes the syscall named by arg ("getpid N", "read N",
// "ioctl N", "ptrace N") N times and reports the mean cost.
func probeBench(rep *report, arg string) {
	var kind string
	var n int
	if _, err := fmt.Sscanf(arg, "%s %d", &kind, &n); err != nil {
		rep.Failures = map[string]string{"arg": err.Error()}
		return
	}
	fd, err := unix.Open("/dev/zero", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		rep.Failures = map[string]string{"open": err.Error()}
		return
	}
	b := make([]byte, 8)
	var one func()
	switch kind {
	case "getpid":
		one = func() { unix.RawSyscall(unix.SYS_GETPID, 0, 0, 0) }
	case "read":
		one = func() { unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b))) }
	case "ioctl":
		one = func() { unix.RawSyscall(unix.SYS_IOCTL, uintptr(fd), unix.TIOCINQ, uintptr(unsafe.Pointer(&b[0]))) }
	case "ptrace":
		one = func() { unix.RawSyscall(unix.SYS_PTRACE, 0xffff, 0, 0) }
	default:
		rep.Failures = map[string]string{"arg": "unknown syscall " + kind}
		return
	}
	for range 1000 { // warm up
		one()
	}
	start := time.Now()
	for range n {
		one()
	}
	rep.NsPerOp = float64(time.Since(start).Nanoseconds()) / float64(n)
}

// BenchmarkSyscall measures, in children, one syscall without and with
// the default filter. getpid and read are allowed whatever their
// arguments, so the kernel's seccomp action cache lets them through
// without running the program; ioctl is decided by its arguments, so
// every call runs the program's first rules; ptrace (with a bad request,
// so that the kernel refuses it too without the filter) is refused, which
// runs the whole program. The ns/syscall metric is the child's mean.
func BenchmarkSyscall(b *testing.B) {
	for _, kind := range []string{"getpid", "read", "ioctl", "ptrace"} {
		for _, mode := range []string{modeNoFilter, modeFilter} {
			b.Run(kind+"/"+mode, func(b *testing.B) {
				n := max(b.N, 100000)
				c := runChild(b, "bench", mode, fmt.Sprintf("%s %d", kind, n))
				c.mustSucceed(b)
				if len(c.Failures) > 0 {
					b.Fatal(c.Failures)
				}
				b.ReportMetric(c.NsPerOp, "ns/syscall")
			})
		}
	}
}

// TestFilterCost prints the cost of the filter per syscall, so that a
// plain test run shows it too.
func TestFilterCost(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	var lines []string
	for _, kind := range []string{"getpid", "read", "ioctl", "ptrace"} {
		var ns [2]float64
		for i, mode := range []string{modeNoFilter, modeFilter} {
			c := runChild(t, "bench", mode, kind+" 200000")
			c.mustSucceed(t)
			if len(c.Failures) > 0 {
				t.Fatal(c.Failures)
			}
			ns[i] = c.NsPerOp
		}
		lines = append(lines, fmt.Sprintf("%-7s without filter %6.1f ns/syscall, with filter %6.1f ns/syscall", kind, ns[0], ns[1]))
	}
	for _, l := range lines {
		t.Log(l)
	}
}
