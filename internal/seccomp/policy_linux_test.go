package seccomp

import (
	"errors"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/elastic/go-seccomp-bpf/arch"
)

// mustDeny is what the security docs and the escape tests rely on.
var mustDeny = []string{
	"ptrace", "mount", "umount2", "unshare", "setns", "bpf", "perf_event_open",
	"keyctl", "add_key", "request_key", "kexec_load", "kexec_file_load",
	"init_module", "finit_module", "delete_module", "userfaultfd",
	"io_uring_setup", "io_uring_enter", "io_uring_register",
	"open_by_handle_at", "name_to_handle_at", "process_vm_readv", "process_vm_writev",
	"swapon", "swapoff", "reboot", "pivot_root", "chroot", "acct",
	"settimeofday", "clock_settime", "adjtimex", "quotactl", "lookup_dcookie",
	"fanotify_init", "vhangup", "iopl", "ioperm", "create_module",
	"get_kernel_syms", "query_module", "syslog", "mount_setattr", "move_mount",
	"open_tree", "fsopen", "fsconfig", "fsmount", "fspick", "pidfd_getfd", "kcmp",
	"clone3",
}

func TestDefaultIsValid(t *testing.T) {
	p := Default()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, a := range supportedArches {
		n := 0
		for _, name := range p.Allow {
			if _, ok := a.SyscallNames[name]; ok {
				n++
			}
		}
		t.Logf("%s: %d syscalls allowed outright, %d decided by their arguments", a.Name, n, len(p.Args))
	}
}

func TestDenied(t *testing.T) {
	denied := Denied()
	if !slices.IsSorted(denied) {
		t.Errorf("Denied is not sorted: %v", denied)
	}
	for _, name := range mustDeny {
		if !slices.Contains(denied, name) {
			t.Errorf("Denied lacks %s", name)
		}
	}
	p := Default()
	sim := newSimulator(t, p)
	tgt := target(t)
	for _, name := range denied {
		if slices.Contains(p.Allow, name) {
			t.Errorf("%s is both denied and allowed", name)
		}
		nr, ok := tgt.SyscallNames[name]
		if !ok {
			continue // not on this architecture
		}
		want := eperm
		if name == "clone3" {
			want = enosys
		}
		if got := sim.run(t, call{arch: uint32(tgt.ID), nr: uint32(nr)}); got != want {
			t.Errorf("%s: filter says %s, want %s", name, verdictString(got), verdictString(want))
		}
	}
}

// TestDefaultCopies checks that a caller changing its policy does not
// change anyone else's.
func TestDefaultCopies(t *testing.T) {
	a := Default()
	a.Allow[0] = "ptrace"
	a.Args[0].Cases[0].When[0].In[0] = 17
	a.Refuse = a.Refuse[:0]
	b := Default()
	if b.Allow[0] == "ptrace" || b.Args[0].Cases[0].When[0].In[0] == 17 || len(b.Refuse) == 0 {
		t.Fatal("changing one Default policy changed another")
	}
	if len(Denied()) == 0 {
		t.Fatal("changing a Default policy emptied Denied")
	}
}

// TestDefaultArm64Names checks that every syscall a runtime needs on
// arm64 is allowed there under its arm64 name.
func TestDefaultArm64Names(t *testing.T) {
	p := Default()
	for _, name := range []string{"openat", "fstatat", "newfstatat", "getdents64", "pipe2", "dup3", "ppoll", "pselect6", "epoll_pwait", "renameat2", "faccessat"} {
		_, arm := arch.AARCH64.SyscallNames[name]
		_, x86 := arch.X86_64.SyscallNames[name]
		if !arm && !x86 {
			t.Errorf("%s exists on neither architecture", name)
		}
		if !slices.Contains(p.Allow, name) {
			t.Errorf("%s is not allowed", name)
		}
	}
	for _, name := range []string{"clone", "socket", "ioctl", "personality", "clone3"} {
		if _, ok := arch.AARCH64.SyscallNames[name]; !ok {
			t.Errorf("arm64 has no %s", name)
		}
	}
}

func TestValidate(t *testing.T) {
	ok := Case{When: []Cond{ArgIn(0, 1)}, Then: Allow()}
	tests := []struct {
		name   string
		policy Policy
		want   string // substring of the error; "" means valid
	}{
		{"minimal", Policy{Allow: []string{"read"}}, ""},
		{"arm64 only name", Policy{Allow: []string{"fstatat"}}, ""},
		{"empty", Policy{}, "allow: empty"},
		{"unknown", Policy{Allow: []string{"read", "frobnicate"}}, `unknown syscall "frobnicate"`},
		{"duplicate", Policy{Allow: []string{"read", "read"}}, `"read" is already in allow`},
		{"allowed and refused", Policy{Allow: []string{"read", "ptrace"}, Refuse: []Refusal{{Name: "ptrace"}}}, `"ptrace" is already in allow`},
		{"allowed and decided by args", Policy{Allow: []string{"read", "socket"}, Args: []ArgRule{{Name: "socket", Cases: []Case{ok}, Else: Fail(syscall.EPERM)}}}, `"socket" is already in allow`},
		{"errno too large", Policy{Allow: []string{"read"}, Refuse: []Refusal{{Name: "ptrace", Errno: 5000}}}, "out of range"},
		{"rule without cases", Policy{Allow: []string{"read"}, Args: []ArgRule{{Name: "socket", Else: Fail(syscall.EPERM)}}}, "no cases"},
		{"rule without else", Policy{Allow: []string{"read"}, Args: []ArgRule{{Name: "socket", Cases: []Case{ok}}}}, "invalid else action"},
		{"case without action", Policy{Allow: []string{"read"}, Args: []ArgRule{{Name: "socket", Cases: []Case{{When: ok.When}}, Else: Allow()}}}, "case 0: invalid action"},
		{"case without conditions", Policy{Allow: []string{"read"}, Args: []ArgRule{{Name: "socket", Cases: []Case{{Then: Allow()}}, Else: Allow()}}}, "no conditions"},
		{"argument 6", Policy{Allow: []string{"read"}, Args: []ArgRule{{Name: "socket", Cases: []Case{{When: []Cond{ArgIn(6, 1)}, Then: Allow()}}, Else: Allow()}}}, "argument 6 out of range"},
		{"zero mask", Policy{Allow: []string{"read"}, Args: []ArgRule{{Name: "socket", Cases: []Case{{When: []Cond{{Arg: 0, In: []uint32{0}}}, Then: Allow()}}, Else: Allow()}}}, "zero mask"},
		{"no values", Policy{Allow: []string{"read"}, Args: []ArgRule{{Name: "socket", Cases: []Case{{When: []Cond{ArgIn(0)}, Then: Allow()}}, Else: Allow()}}}, "no values"},
		{"value outside mask", Policy{Allow: []string{"read"}, Args: []ArgRule{{Name: "socket", Cases: []Case{{When: []Cond{ArgMaskedIn(1, 0xf, 0x10)}, Then: Allow()}}, Else: Allow()}}}, "outside mask"},
		{"errno out of range in action", Policy{Allow: []string{"read"}, Args: []ArgRule{{Name: "socket", Cases: []Case{ok}, Else: Fail(5000)}}}, "invalid else action"},
		{"notify", Policy{Allow: []string{"read"}, Notify: []string{"execve"}}, ""},
		{"notify in a rule", Policy{Allow: []string{"read"}, Args: []ArgRule{{Name: "socket", Cases: []Case{{When: ok.When, Then: Notify()}}, Else: Allow()}}}, ""},
		{"notify unknown", Policy{Allow: []string{"read"}, Notify: []string{"frobnicate"}}, `notify: unknown syscall "frobnicate"`},
		{"allowed and notified", Policy{Allow: []string{"read", "execve"}, Notify: []string{"execve"}}, `"execve" is already in allow`},
		{"notified twice", Policy{Allow: []string{"read"}, Notify: []string{"execve", "execve"}}, `"execve" is already in notify`},
		{"two actions", Policy{Allow: []string{"read"}, Args: []ArgRule{{Name: "socket", Cases: []Case{ok}, Else: Action{allow: true, notify: true}}}}, "invalid else action"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.policy.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if _, err := tt.policy.Assemble(); err != nil {
					t.Fatalf("Assemble: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want an error containing %q", err, tt.want)
			}
			if !errors.Is(err, ErrInvalidPolicy) {
				t.Errorf("Validate error %v is not ErrInvalidPolicy", err)
			}
			if _, err := tt.policy.Assemble(); !errors.Is(err, ErrInvalidPolicy) {
				t.Errorf("Assemble = %v, want ErrInvalidPolicy", err)
			}
		})
	}
}

func TestActionString(t *testing.T) {
	for _, tt := range []struct {
		a    Action
		want string
	}{
		{Allow(), "allow"},
		{Fail(syscall.EPERM), "errno EPERM"},
		{Fail(syscall.ENOSYS), "errno ENOSYS"},
		{Notify(), "notify"},
		{Action{}, "invalid"},
		{Action{allow: true, errno: syscall.EPERM}, "invalid"},
	} {
		if got := tt.a.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.a, got, tt.want)
		}
	}
}

// TestSupervise checks that Supervise moves syscalls to Notify from every
// other list, once, and leaves a valid policy.
func TestSupervise(t *testing.T) {
	p := Default()
	p.Supervise("execve", "execveat", "socket", "ptrace", "execve")
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	if want := []string{"execve", "execveat", "socket", "ptrace"}; !slices.Equal(p.Notify, want) {
		t.Errorf("Notify = %v, want %v", p.Notify, want)
	}
	for _, n := range p.Notify {
		if slices.Contains(p.Allow, n) ||
			slices.ContainsFunc(p.Args, func(r ArgRule) bool { return r.Name == n }) ||
			slices.ContainsFunc(p.Refuse, func(r Refusal) bool { return r.Name == n }) {
			t.Errorf("%s is still in another list", n)
		}
	}
	if d := Default(); len(d.Notify) != 0 || !slices.Contains(d.Allow, "execve") {
		t.Error("Supervise changed the default policy")
	}
}
