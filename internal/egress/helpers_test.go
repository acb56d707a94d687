package egress

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The tests build their whole world in namespaces they create and remove:
//
//	host netns H  (stands for the host: the Manager runs here)
//	   mt-*  <veth>  eth0   instance (a child process in new user+net
//	                        namespaces and a cgroup v2 directory of its own)
//	   egu*  <veth>  egs*   server netns S, 198.18.N.2 and 2001:2:0:N::2
//	                        (benchmarking ranges), echo servers
//
// H has no route but to S and its instances, so even a broken filter could
// not send a packet anywhere else; the real host's network is never
// touched.

const childEnv = "MOAT_EGRESS_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(runChild())
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

func requirePrivileges(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		needOrSkip(t, "needs root for network namespaces, nftables and cgroup BPF")
	}
	if cgroup2Root() == "" {
		needOrSkip(t, "needs a cgroup v2 hierarchy for the filter")
	}
	if err := probeFilter(); err != nil {
		needOrSkip(t, "kernel refuses cgroup sock_addr programs: %v", err)
	}
}

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

func randSuffix() string { return fmt.Sprintf("%06x", rand.IntN(1<<24)) }

// newNetns makes an empty network namespace, closed (and so destroyed, once
// nothing else holds it) at cleanup.
func newNetns(t testing.TB) int {
	t.Helper()
	type res struct {
		fd  int
		err error
	}
	ch := make(chan res, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			ch <- res{-1, err}
			return
		}
		defer unix.Close(orig)
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- res{-1, err}
			return
		}
		fd, ferr := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			ch <- res{-1, errors.Join(ferr, err)}
			return // thread stays locked and is discarded
		}
		runtime.UnlockOSThread()
		ch <- res{fd, ferr}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatalf("new netns: %v", r.err)
	}
	t.Cleanup(func() { unix.Close(r.fd) })
	h := nsHandle(t, r.fd)
	lo, err := h.LinkByName("lo")
	if err == nil {
		err = h.LinkSetUp(lo)
	}
	if err != nil {
		t.Fatalf("netns loopback up: %v", err)
	}
	return r.fd
}

func nsHandle(t testing.TB, fd int) *netlink.Handle {
	t.Helper()
	h, err := netlink.NewHandleAt(netns.NsHandle(fd), unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatalf("netlink handle: %v", err)
	}
	t.Cleanup(h.Close)
	return h
}

func mustAddr(t testing.TB, h *netlink.Handle, l netlink.Link, p string) {
	t.Helper()
	pp := netip.MustParsePrefix(p)
	a := &netlink.Addr{IPNet: &net.IPNet{IP: pp.Addr().AsSlice(), Mask: net.CIDRMask(pp.Bits(), pp.Addr().BitLen())}}
	if pp.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	if err := h.AddrAdd(l, a); err != nil {
		t.Fatalf("address %s: %v", p, err)
	}
}

// testbed is H and S joined by a veth pair, with echo servers in S.
type testbed struct {
	host     int // netns fd of H
	server   int // netns fd of S
	hostH    *netlink.Handle
	uplink   string
	n        int // subnet index: 198.18.n.0/24, 2001:2:0:n::/64
	cgroupV2 string
}

func (tb *testbed) ip4(last int) string { return fmt.Sprintf("198.18.%d.%d", tb.n, last) }
func (tb *testbed) ip6(last int) string { return fmt.Sprintf("2001:2:0:%x::%x", tb.n, last) }

func newTestbed(t testing.TB) *testbed {
	t.Helper()
	requirePrivileges(t)
	tb := &testbed{host: newNetns(t), server: newNetns(t), n: rand.IntN(256), cgroupV2: cgroup2Root()}
	tb.hostH = nsHandle(t, tb.host)
	sfx := randSuffix()
	tb.uplink = "egu" + sfx
	err := tb.hostH.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: tb.uplink}, PeerName: "egs" + sfx, PeerNamespace: netlink.NsFd(tb.server)})
	if err != nil {
		t.Fatalf("test veth: %v", err)
	}
	// Deleted with the namespaces too; this makes it immediate.
	t.Cleanup(func() {
		if l, err := tb.hostH.LinkByName(tb.uplink); err == nil {
			tb.hostH.LinkDel(l)
		}
	})
	hl, err := tb.hostH.LinkByName(tb.uplink)
	if err != nil {
		t.Fatal(err)
	}
	mustAddr(t, tb.hostH, hl, tb.ip4(1)+"/24")
	mustAddr(t, tb.hostH, hl, tb.ip6(1)+"/64")
	if err := tb.hostH.LinkSetUp(hl); err != nil {
		t.Fatal(err)
	}
	sh := nsHandle(t, tb.server)
	sl, err := sh.LinkByName("egs" + sfx)
	if err != nil {
		t.Fatal(err)
	}
	mustAddr(t, sh, sl, tb.ip4(2)+"/24")
	mustAddr(t, sh, sl, tb.ip6(2)+"/64")
	if err := sh.LinkSetUp(sl); err != nil {
		t.Fatal(err)
	}
	// IPv6 on a link answers neighbour solicitations only once the kernel
	// has handled its carrier (for a veth whose ends have the same index
	// in their namespaces, as these do, up to a second later).
	for _, l := range []struct {
		ns   int
		name string
	}{{tb.host, tb.uplink}, {tb.server, "egs" + sfx}} {
		if err := waitOperUp(netns.NsHandle(l.ns), l.name, 10*time.Second); err != nil {
			t.Fatalf("%s: %v", l.name, err)
		}
	}
	return tb
}

// listenIn opens a listener inside netns fd; it is closed at cleanup.
func listenIn(t testing.TB, fd int, network, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	err := inNetns(fd, func() error {
		var err error
		ln, err = net.Listen(network, addr)
		return err
	})
	if err != nil {
		t.Fatalf("listen %s %s: %v", network, addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func echoTCP(t testing.TB, fd int, addr string) {
	t.Helper()
	ln := listenIn(t, fd, "tcp", addr)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
}

func echoUDP(t testing.TB, fd int, addr string) {
	t.Helper()
	var pc net.PacketConn
	err := inNetns(fd, func() error {
		var err error
		pc, err = net.ListenPacket("udp", addr)
		return err
	})
	if err != nil {
		t.Fatalf("listen udp %s: %v", addr, err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(buf[:n], from)
		}
	}()
}

// newCgroup makes a cgroup v2 directory for one test instance.
func newCgroup(t testing.TB, root string) string {
	t.Helper()
	dir := filepath.Join(root, "moat-egress-test-"+randSuffix())
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatalf("create cgroup: %v", err)
	}
	t.Cleanup(func() {
		for range 500 {
			err := syscall.Rmdir(dir)
			if err == nil || errors.Is(err, syscall.ENOENT) {
				return
			}
			if b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs")); err == nil {
				for _, f := range strings.Fields(string(b)) {
					var pid int
					fmt.Sscan(f, &pid)
					if pid > 1 {
						syscall.Kill(pid, syscall.SIGKILL)
					}
				}
			}
			time.Sleep(2 * time.Millisecond)
		}
		t.Errorf("cgroup %s not removed", dir)
	})
	return dir
}

// instance is a child process in new user and network namespaces, in its
// own cgroup, blocked until it is sent a plan of probes to run.
type instance struct {
	cmd    *exec.Cmd
	cgroup string
	plan   *os.File
	out    *bufio.Reader
}

func startInstance(t testing.TB, tb *testbed) *instance {
	t.Helper()
	inst := &instance{cgroup: newCgroup(t, tb.cgroupV2)}
	planR, planW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer planR.Close()
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer outW.Close()
	cg, err := syscall.Open(inst.cgroup, syscall.O_DIRECTORY|syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(cg)
	cmd := exec.Command("/proc/self/exe")
	cmd.Env = []string{childEnv + "=1"}
	cmd.ExtraFiles = []*os.File{planR}
	cmd.Stdout = outW
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}},
		Pdeathsig:   syscall.SIGKILL,
		UseCgroupFD: true,
		CgroupFD:    cg,
	}
	if err := cmd.Start(); err != nil {
		planW.Close()
		outR.Close()
		t.Fatalf("start instance: %v", err)
	}
	inst.cmd, inst.plan, inst.out = cmd, planW, bufio.NewReader(outR)
	t.Cleanup(func() {
		planW.Close()
		cmd.Process.Kill()
		cmd.Wait()
		outR.Close()
	})
	return inst
}

func (i *instance) pid() int { return i.cmd.Process.Pid }

// run sends the plan and waits for the results. The instance exits after.
func (i *instance) run(t testing.TB, plan []probe) []probeResult {
	t.Helper()
	res, err := i.exchange(plan)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// exchange is run without a testing.TB, for use from goroutines.
func (i *instance) exchange(plan []probe) ([]probeResult, error) {
	if err := json.NewEncoder(i.plan).Encode(plan); err != nil {
		return nil, fmt.Errorf("send plan: %w", err)
	}
	i.plan.Close()
	var res []probeResult
	if err := json.NewDecoder(i.out).Decode(&res); err != nil {
		return nil, fmt.Errorf("instance results: %w", err)
	}
	if len(res) != len(plan) {
		return nil, fmt.Errorf("instance ran %d probes of %d", len(res), len(plan))
	}
	return res, nil
}

// probe is one attempt the instance makes.
type probe struct {
	Name string
	Kind string // "echo" (net.Dial, write, read back), "connect" (raw TCP connect), "sendto" (raw UDP sendto)
	Net  string // tcp4, tcp6, udp4, udp6
	Addr string // ip:port
	// WaitMs bounds a raw connect that nothing refuses (SO_SNDTIMEO);
	// default 2000.
	WaitMs int
}

type probeResult struct {
	Errno   int // 0 when the call succeeded
	Err     string
	Echoed  bool
	Elapsed time.Duration
}

// runChild is the instance side: read the plan, run it, report.
func runChild() int {
	var plan []probe
	if err := json.NewDecoder(os.NewFile(3, "plan")).Decode(&plan); err != nil {
		if errors.Is(err, io.EOF) {
			return 0 // the test ended without a plan for this instance
		}
		fmt.Fprintln(os.Stderr, "instance: read plan:", err)
		return 2
	}
	res := make([]probeResult, len(plan))
	for i, p := range plan {
		start := time.Now()
		res[i] = runProbe(p)
		res[i].Elapsed = time.Since(start)
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		return 2
	}
	return 0
}

func runProbe(p probe) probeResult {
	fail := func(err error) probeResult {
		r := probeResult{Err: err.Error()}
		var errno syscall.Errno
		if errors.As(err, &errno) {
			r.Errno = int(errno)
		}
		return r
	}
	if p.Kind == "echo" {
		c, err := net.DialTimeout(p.Net, p.Addr, 3*time.Second)
		if err != nil {
			return fail(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := c.Write([]byte("moat")); err != nil {
			return fail(err)
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil {
			return fail(err)
		}
		return probeResult{Echoed: string(buf) == "moat"}
	}
	ap, err := netip.ParseAddrPort(p.Addr)
	if err != nil {
		return fail(err)
	}
	var family int
	var sa unix.Sockaddr
	if strings.HasSuffix(p.Net, "6") {
		family, sa = unix.AF_INET6, &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
	} else {
		family, sa = unix.AF_INET, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	}
	typ := unix.SOCK_STREAM
	if strings.HasPrefix(p.Net, "udp") {
		typ = unix.SOCK_DGRAM
	}
	fd, err := unix.Socket(family, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fail(err)
	}
	defer unix.Close(fd)
	// Bounds a connect that the filter failed to refuse.
	wait := time.Duration(p.WaitMs) * time.Millisecond
	if wait == 0 {
		wait = 2 * time.Second
	}
	tv := unix.NsecToTimeval(wait.Nanoseconds())
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv)
	switch p.Kind {
	case "connect":
		err = unix.Connect(fd, sa)
	case "sendto":
		err = unix.Sendto(fd, []byte("moat"), 0, sa)
	default:
		err = fmt.Errorf("unknown probe kind %q", p.Kind)
	}
	if err != nil {
		return fail(err)
	}
	return probeResult{}
}
