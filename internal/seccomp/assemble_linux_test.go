package seccomp

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"syscall"
	"testing"

	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// call is one syscall as the filter sees it (struct seccomp_data).
type call struct {
	arch uint32
	nr   uint32
	args [6]uint64
}

// native returns a call to nr with args on the architecture under test.
func native(t testing.TB, name string, args ...uint64) call {
	t.Helper()
	nr, ok := target(t).SyscallNames[name]
	if !ok {
		t.Fatalf("no syscall %q on %s", name, target(t).Name)
	}
	c := call{arch: uint32(target(t).ID), nr: uint32(nr)}
	copy(c.args[:], args)
	return c
}

func target(t testing.TB) *arch.Info {
	t.Helper()
	a, err := arch.GetInfo("")
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// simulator runs an assembled program on calls in user space.
type simulator struct{ vm *bpf.VM }

func newSimulator(t testing.TB, p *Policy) simulator {
	t.Helper()
	prog, err := p.Assemble()
	if err != nil {
		t.Fatal(err)
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatalf("the program does not verify: %v", err)
	}
	return simulator{vm}
}

// run returns the filter's verdict. The simulator loads 32-bit words big
// endian; the filter expects seccomp_data in native (little-endian) order,
// so each word is written big endian at its native offset: nr, arch, then
// each argument as its low word and its high word.
func (s simulator) run(t testing.TB, c call) uint32 {
	t.Helper()
	buf := make([]byte, 64)
	binary.BigEndian.PutUint32(buf[offNR:], c.nr)
	binary.BigEndian.PutUint32(buf[offArch:], c.arch)
	for i, a := range c.args {
		binary.BigEndian.PutUint32(buf[offArgs+8*i:], uint32(a))
		binary.BigEndian.PutUint32(buf[offArgs+8*i+4:], uint32(a>>32))
	}
	v, err := s.vm.Run(buf)
	if err != nil {
		t.Fatalf("run filter: %v", err)
	}
	return uint32(v)
}

// reference is the policy's meaning, written without BPF: the verdict the
// program must give for c.
func reference(p *Policy, target *arch.Info, c call) uint32 {
	eperm := retErrno | uint32(syscall.EPERM)
	if c.arch != uint32(target.ID) {
		return retKillProcess
	}
	if target == arch.X86_64 && c.nr >= x32SyscallBit {
		if c.nr == ^uint32(0) {
			return eperm
		}
		return retKillProcess
	}
	name, ok := target.SyscallNumbers[int(c.nr)]
	if !ok {
		return eperm
	}
	if slices.Contains(p.Notify, name) {
		return retUserNotif
	}
	for _, r := range p.Args {
		if r.Name != name {
			continue
		}
		for _, cs := range r.Cases {
			if allHold(cs.When, c) {
				return cs.Then.ret().Val
			}
		}
		return r.Else.ret().Val
	}
	if slices.Contains(p.Allow, name) {
		return retAllow
	}
	for _, r := range p.Refuse {
		if r.Name == name && r.Errno != 0 {
			return retErrno | uint32(r.Errno)
		}
	}
	return eperm
}

func allHold(conds []Cond, c call) bool {
	for _, cond := range conds {
		if !slices.Contains(cond.In, uint32(c.args[cond.Arg])&cond.Mask) {
			return false
		}
	}
	return true
}

func verdictString(v uint32) string {
	switch {
	case v == retAllow:
		return "allow"
	case v == retKillProcess:
		return "kill"
	case v == retUserNotif:
		return "notify"
	case v&unix.SECCOMP_RET_ACTION_FULL == retErrno:
		return "errno " + errnoName(syscall.Errno(v&unix.SECCOMP_RET_DATA))
	default:
		return fmt.Sprintf("%#x", v)
	}
}

type verdictCase struct {
	name string
	call call
	want uint32
}

var (
	allow  = uint32(retAllow)
	eperm  = retErrno | uint32(syscall.EPERM)
	enosys = retErrno | uint32(syscall.ENOSYS)
	kill   = uint32(retKillProcess)
	notify = uint32(retUserNotif)
)

// TestDefaultEveryNumber checks the program against the reference for
// every syscall number (with zero arguments) and for the numbers around
// the edges of the tables and the x32 range.
func TestDefaultEveryNumber(t *testing.T) {
	p := Default()
	sim := newSimulator(t, p)
	tgt := target(t)
	nrs := []uint32{x32SyscallBit - 1, x32SyscallBit, x32SyscallBit + 1, x32SyscallBit | 39, 0x7fffffff, 0x80000000, ^uint32(0) - 1, ^uint32(0)}
	for nr := range uint32(1024) {
		nrs = append(nrs, nr)
	}
	for _, nr := range nrs {
		c := call{arch: uint32(tgt.ID), nr: nr}
		if got, want := sim.run(t, c), reference(p, tgt, c); got != want {
			t.Errorf("nr %d (%s): filter says %s, policy says %s", nr, tgt.SyscallNumbers[int(nr)], verdictString(got), verdictString(want))
		}
	}
}

func TestDefaultVerdicts(t *testing.T) {
	sim := newSimulator(t, Default())
	const (
		ethPAll     = 0x0300 // htons(ETH_P_ALL)
		sockNB      = unix.SOCK_NONBLOCK | unix.SOCK_CLOEXEC
		addrNoRand  = 0x0040000
		sigchld     = uint64(syscall.SIGCHLD)
		threadFlags = unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND |
			unix.CLONE_THREAD | unix.CLONE_SYSVSEM | unix.CLONE_SETTLS |
			unix.CLONE_PARENT_SETTID | unix.CLONE_CHILD_CLEARTID
	)
	tests := []verdictCase{
		{"read", native(t, "read", 0, 0, 0), allow},
		{"futex", native(t, "futex"), allow},
		{"execve", native(t, "execve"), allow},
		{"getrandom", native(t, "getrandom"), allow},
		{"ptrace", native(t, "ptrace"), eperm},
		{"mount", native(t, "mount"), eperm},
		{"unshare", native(t, "unshare", unix.CLONE_NEWUSER), eperm},
		{"bpf", native(t, "bpf"), eperm},
		{"io_uring_setup", native(t, "io_uring_setup"), eperm},
		{"clone3", native(t, "clone3"), enosys},

		{"socket AF_UNIX stream", native(t, "socket", unix.AF_UNIX, unix.SOCK_STREAM), allow},
		{"socket AF_UNIX raw", native(t, "socket", unix.AF_UNIX, unix.SOCK_RAW), allow},
		{"socket AF_INET stream nonblock", native(t, "socket", unix.AF_INET, unix.SOCK_STREAM|sockNB), allow},
		{"socket AF_INET6 dgram", native(t, "socket", unix.AF_INET6, unix.SOCK_DGRAM, unix.IPPROTO_UDP), allow},
		{"socket AF_INET ping", native(t, "socket", unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_ICMP), allow},
		{"socket AF_NETLINK route", native(t, "socket", unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE), allow},
		{"socket AF_INET raw icmp", native(t, "socket", unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP), eperm},
		{"socket AF_INET raw nonblock", native(t, "socket", unix.AF_INET, unix.SOCK_RAW|sockNB, unix.IPPROTO_TCP), eperm},
		{"socket AF_INET6 raw", native(t, "socket", unix.AF_INET6, unix.SOCK_RAW, unix.IPPROTO_ICMPV6), eperm},
		{"socket AF_INET packet", native(t, "socket", unix.AF_INET, unix.SOCK_PACKET), eperm},
		{"socket AF_INET seqpacket", native(t, "socket", unix.AF_INET, unix.SOCK_SEQPACKET, unix.IPPROTO_SCTP), eperm},
		{"socket AF_PACKET raw", native(t, "socket", unix.AF_PACKET, unix.SOCK_RAW, ethPAll), eperm},
		{"socket AF_PACKET dgram", native(t, "socket", unix.AF_PACKET, unix.SOCK_DGRAM, ethPAll), eperm},
		{"socket AF_NETLINK audit", native(t, "socket", unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_AUDIT), eperm},
		{"socket AF_NETLINK sock_diag", native(t, "socket", unix.AF_NETLINK, unix.SOCK_DGRAM, unix.NETLINK_SOCK_DIAG), eperm},
		{"socket AF_ALG", native(t, "socket", unix.AF_ALG, unix.SOCK_SEQPACKET), eperm},
		{"socket AF_VSOCK", native(t, "socket", unix.AF_VSOCK, unix.SOCK_STREAM), eperm},
		// The kernel reads 32 bits; high garbage must not change the verdict.
		{"socket AF_INET stream high bits", native(t, "socket", 0xffffffff_00000000|unix.AF_INET, unix.SOCK_STREAM), allow},
		{"socket AF_PACKET high bits", native(t, "socket", 0x1_00000000|unix.AF_PACKET, unix.SOCK_RAW), eperm},

		{"clone thread", native(t, "clone", threadFlags), allow},
		{"clone fork", native(t, "clone", unix.CLONE_CHILD_SETTID|unix.CLONE_CHILD_CLEARTID|sigchld), allow},
		{"clone vfork pidfd", native(t, "clone", unix.CLONE_VM|unix.CLONE_VFORK|unix.CLONE_PIDFD|sigchld), allow},
		{"clone newuser", native(t, "clone", unix.CLONE_NEWUSER|sigchld), eperm},
		{"clone newns", native(t, "clone", unix.CLONE_NEWNS|sigchld), eperm},
		{"clone newpid", native(t, "clone", unix.CLONE_NEWPID|sigchld), eperm},
		{"clone newnet", native(t, "clone", unix.CLONE_NEWNET|sigchld), eperm},
		{"clone newipc", native(t, "clone", unix.CLONE_NEWIPC|sigchld), eperm},
		{"clone newuts", native(t, "clone", unix.CLONE_NEWUTS|sigchld), eperm},
		{"clone newcgroup", native(t, "clone", unix.CLONE_NEWCGROUP|sigchld), eperm},
		{"clone all namespaces", native(t, "clone", nsCloneFlags), eperm},

		{"personality query", native(t, "personality", personalityQuery), allow},
		{"personality linux", native(t, "personality", perLinux), allow},
		{"personality no randomize", native(t, "personality", addrNoRand), eperm},
		{"personality linux32", native(t, "personality", 8), eperm},

		{"ioctl FIONREAD", native(t, "ioctl", 0, unix.TIOCINQ), allow},
		{"ioctl TCGETS", native(t, "ioctl", 0, unix.TCGETS), allow},
		{"ioctl TIOCSTI", native(t, "ioctl", 0, unix.TIOCSTI), eperm},
		{"ioctl TIOCLINUX", native(t, "ioctl", 0, unix.TIOCLINUX), eperm},

		{"nr -1", call{arch: uint32(target(t).ID), nr: ^uint32(0)}, eperm},
		{"nr beyond the table", call{arch: uint32(target(t).ID), nr: 1000}, eperm},
		{"foreign arch i386", call{arch: uint32(arch.I386.ID), nr: 20}, kill},
		{"foreign arch arm", call{arch: uint32(arch.ARM.ID), nr: 20}, kill},
		{"foreign arch zero", call{arch: 0, nr: 0}, kill},
	}
	if target(t) == arch.X86_64 {
		tests = append(tests,
			verdictCase{"x32 getpid", call{arch: uint32(arch.X86_64.ID), nr: x32SyscallBit | 39}, kill},
			verdictCase{"foreign arch aarch64", call{arch: uint32(arch.AARCH64.ID), nr: 172}, kill},
		)
	} else {
		tests = append(tests, verdictCase{"foreign arch x86_64", call{arch: uint32(arch.X86_64.ID), nr: 39}, kill})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sim.run(t, tt.call); got != tt.want {
				t.Errorf("filter says %s, want %s", verdictString(got), verdictString(tt.want))
			}
			if got := reference(Default(), target(t), tt.call); got != tt.want {
				t.Errorf("reference says %s, want %s", verdictString(got), verdictString(tt.want))
			}
		})
	}
}

// FuzzDefaultFilter compares the program with the reference on arbitrary
// calls, including arguments the argument rules look at.
func FuzzDefaultFilter(f *testing.F) {
	tgt, err := arch.GetInfo("")
	if err != nil {
		f.Fatal(err)
	}
	id := uint64(tgt.ID)
	for _, r := range defaultArgs {
		nr := uint64(tgt.SyscallNames[r.Name])
		for _, c := range r.Cases {
			var args [6]uint64
			for _, cond := range c.When {
				args[cond.Arg] = uint64(cond.In[0])
			}
			f.Add(id, nr, args[0], args[1], args[2], args[3])
		}
	}
	f.Add(id, uint64(x32SyscallBit|39), uint64(0), uint64(0), uint64(0), uint64(0))
	f.Add(uint64(arch.I386.ID), uint64(20), uint64(0), uint64(0), uint64(0), uint64(0))
	p := Default()
	sim := newSimulator(f, p)
	f.Fuzz(func(t *testing.T, archID, nr, a0, a1, a2, a3 uint64) {
		c := call{arch: uint32(archID), nr: uint32(nr), args: [6]uint64{a0, a1, a2, a3}}
		// Most random numbers and architectures say nothing new; fold
		// them onto the interesting ones.
		if archID&1 == 0 {
			c.arch = uint32(tgt.ID)
			c.nr %= 512
		}
		if got, want := sim.run(t, c), reference(p, tgt, c); got != want {
			t.Errorf("%+v: filter says %s, policy says %s", c, verdictString(got), verdictString(want))
		}
	})
}

// TestDefaultGolden keeps the verdict for every syscall of the
// architecture under review in testdata: a change to the policy or to the
// library's code generation shows up as a diff of that file.
func TestDefaultGolden(t *testing.T) {
	p := Default()
	sim := newSimulator(t, p)
	tgt := target(t)
	nrs := make([]int, 0, len(tgt.SyscallNumbers))
	for nr := range tgt.SyscallNumbers {
		nrs = append(nrs, nr)
	}
	sort.Ints(nrs)
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Verdict of the default filter for every %s syscall (arguments zero).\n", tgt.Name)
	fmt.Fprintf(&b, "# Regenerate with: go test ./internal/seccomp/ -run TestDefaultGolden -update\n")
	for _, nr := range nrs {
		name := tgt.SyscallNumbers[nr]
		v := verdictString(sim.run(t, call{arch: uint32(tgt.ID), nr: uint32(nr)}))
		if slices.ContainsFunc(p.Args, func(r ArgRule) bool { return r.Name == name }) {
			v = "depends on arguments"
		}
		fmt.Fprintf(&b, "%4d %-24s %s\n", nr, name, v)
	}
	path := filepath.Join("testdata", "default_"+runtime.GOARCH+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(b.Bytes(), want) {
		t.Errorf("verdicts differ from %s; review the change and rerun with -update:\n%s", path, lineDiff(string(want), b.String()))
	}
}

func lineDiff(want, got string) string {
	w, g := bytes.Split([]byte(want), []byte("\n")), bytes.Split([]byte(got), []byte("\n"))
	var out bytes.Buffer
	for i := range max(len(w), len(g)) {
		var wl, gl []byte
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if !bytes.Equal(wl, gl) {
			fmt.Fprintf(&out, "-%s\n+%s\n", wl, gl)
		}
	}
	return out.String()
}

func TestAssembleDeterministic(t *testing.T) {
	a, err := Default().Assemble()
	if err != nil {
		t.Fatal(err)
	}
	b, err := Default().Assemble()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a, b) {
		t.Fatal("two assemblies of the default policy differ")
	}
	if len(a) > maxInsns {
		t.Fatalf("%d instructions, more than the kernel takes", len(a))
	}
	t.Logf("default filter: %d instructions", len(a))
}

// TestArgRuleFallsThrough checks that a call to a syscall after an
// argument rule is compared on its number, not on the argument the rule
// loaded: socket(AF=getpid's number) must not be allowed as getpid.
func TestArgRuleFallsThrough(t *testing.T) {
	getpid := uint32(target(t).SyscallNames["getpid"])
	p := &Policy{
		Allow: []string{"getpid"},
		Args: []ArgRule{
			{Name: "socket", Cases: []Case{{When: []Cond{ArgIn(0, unix.AF_UNIX)}, Then: Allow()}}, Else: Fail(syscall.EACCES)},
			{Name: "personality", Cases: []Case{{When: []Cond{ArgIn(0, 0)}, Then: Allow()}}, Else: Fail(syscall.EPERM)},
		},
	}
	sim := newSimulator(t, p)
	for _, tt := range []verdictCase{
		{"socket(getpid nr)", native(t, "socket", uint64(getpid)), retErrno | uint32(syscall.EACCES)},
		{"personality(getpid nr)", native(t, "personality", uint64(getpid)), eperm},
		{"getpid", native(t, "getpid"), allow},
		{"socket AF_UNIX", native(t, "socket", unix.AF_UNIX), allow},
		{"close", native(t, "close"), eperm},
	} {
		if got := sim.run(t, tt.call); got != tt.want {
			t.Errorf("%s: filter says %s, want %s", tt.name, verdictString(got), verdictString(tt.want))
		}
	}
}

// supervisedExec is the policy enforce-mode instances run under: Default
// with execve and execveat handed to the supervisor.
func supervisedExec() *Policy {
	p := Default()
	p.Supervise("execve", "execveat")
	return p
}

// TestNotifyVerdicts checks a policy that hands calls to a supervisor:
// the named syscalls notify whatever their arguments, everything else
// keeps its verdict, and foreign ABIs are still killed first.
func TestNotifyVerdicts(t *testing.T) {
	p := supervisedExec()
	sim := newSimulator(t, p)
	tgt := target(t)
	for nr := range uint32(1024) {
		c := call{arch: uint32(tgt.ID), nr: nr, args: [6]uint64{1, 2, 3}}
		if got, want := sim.run(t, c), reference(p, tgt, c); got != want {
			t.Errorf("nr %d (%s): filter says %s, policy says %s", nr, tgt.SyscallNumbers[int(nr)], verdictString(got), verdictString(want))
		}
	}
	tests := []verdictCase{
		{"execve", native(t, "execve"), notify},
		{"execveat", native(t, "execveat", 3, 0, 0, 0, unix.AT_EMPTY_PATH), notify},
		{"read", native(t, "read"), allow},
		{"ptrace", native(t, "ptrace"), eperm},
		{"socket AF_PACKET", native(t, "socket", unix.AF_PACKET, unix.SOCK_RAW), eperm},
		{"foreign arch", call{arch: uint32(arch.I386.ID), nr: 11}, kill},
	}
	if tgt == arch.X86_64 {
		tests = append(tests, verdictCase{"x32 execve", call{arch: uint32(tgt.ID), nr: x32SyscallBit | 59}, kill})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sim.run(t, tt.call); got != tt.want {
				t.Errorf("filter says %s, want %s", verdictString(got), verdictString(tt.want))
			}
		})
	}
}

// TestNotifyInArgRule checks the Notify action inside an argument rule:
// only the matching calls go to the supervisor.
func TestNotifyInArgRule(t *testing.T) {
	p := &Policy{
		Allow: []string{"getpid"},
		Args:  []ArgRule{{Name: "socket", Cases: []Case{{When: []Cond{ArgIn(0, unix.AF_INET)}, Then: Notify()}}, Else: Allow()}},
	}
	sim := newSimulator(t, p)
	for _, tt := range []verdictCase{
		{"socket AF_INET", native(t, "socket", unix.AF_INET, unix.SOCK_STREAM), notify},
		{"socket AF_UNIX", native(t, "socket", unix.AF_UNIX, unix.SOCK_STREAM), allow},
		{"getpid", native(t, "getpid"), allow},
	} {
		if got := sim.run(t, tt.call); got != tt.want {
			t.Errorf("%s: filter says %s, want %s", tt.name, verdictString(got), verdictString(tt.want))
		}
	}
}

// FuzzSupervisedFilter is FuzzDefaultFilter for the policy with execve
// and execveat handed to the supervisor.
func FuzzSupervisedFilter(f *testing.F) {
	tgt, err := arch.GetInfo("")
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range []string{"execve", "execveat", "socket", "clone"} {
		f.Add(uint64(tgt.ID), uint64(tgt.SyscallNames[name]), uint64(0), uint64(0))
	}
	p := supervisedExec()
	sim := newSimulator(f, p)
	f.Fuzz(func(t *testing.T, archID, nr, a0, a1 uint64) {
		c := call{arch: uint32(archID), nr: uint32(nr), args: [6]uint64{a0, a1}}
		if archID&1 == 0 {
			c.arch = uint32(tgt.ID)
			c.nr %= 512
		}
		if got, want := sim.run(t, c), reference(p, tgt, c); got != want {
			t.Errorf("%+v: filter says %s, policy says %s", c, verdictString(got), verdictString(want))
		}
	})
}
