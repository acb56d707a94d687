package seccomp

import (
	"errors"
	"fmt"
	"slices"
	"syscall"

	"github.com/elastic/go-seccomp-bpf/arch"
)

// ErrInvalidPolicy is returned (wrapped, with every problem found) by
// [Policy.Validate], [Policy.Assemble] and [Install] for a policy that
// names an unknown syscall, names one twice, or has a malformed rule. It is
// always the platform's fault, never the function's.
var ErrInvalidPolicy = errors.New("invalid seccomp policy")

// maxErrno is the largest errno a filter may return (the kernel's
// MAX_ERRNO); larger values would not read as errors in user space.
const maxErrno = 4095

// Policy is the spec of one syscall filter: whatever it does not allow
// fails with EPERM. The zero Policy is invalid (Allow must not be empty).
type Policy struct {
	// Allow lists the syscalls permitted with any arguments.
	Allow []string
	// Notify lists the syscalls whose every call is handed to a
	// supervisor (SECCOMP_RET_USER_NOTIF): the calling thread waits
	// until the process holding the filter's [Listener] answers. A
	// policy that notifies must be loaded with [InstallListener].
	Notify []string
	// Args lists the syscalls whose verdict depends on their arguments,
	// one rule per syscall.
	Args []ArgRule
	// Refuse lists syscalls that are refused, each with the errno it
	// fails with (0 means EPERM). Only entries with another errno change
	// the program (EPERM is what every unlisted call gets); the rest are
	// there so that Validate can prove none of them is also allowed, and
	// so that the security docs and tests can name them ([Denied]).
	Refuse []Refusal
}

// Refusal is a syscall the policy refuses.
type Refusal struct {
	Name  string
	Errno syscall.Errno // 0 means EPERM
}

// ArgRule decides one syscall from its arguments: the first case whose
// conditions all hold gives the action; when none holds, Else does.
type ArgRule struct {
	Name  string
	Cases []Case
	Else  Action
}

// Case is one alternative of an [ArgRule].
type Case struct {
	When []Cond // all must hold; must not be empty
	Then Action
}

// Cond holds when the low 32 bits of argument Arg, masked with Mask,
// equal one of In.
type Cond struct {
	Arg  int      // 0 to 5
	Mask uint32   // must not be 0; ^uint32(0) compares the whole word
	In   []uint32 // each value must lie within Mask
}

// ArgIn is the condition "argument arg is one of values".
func ArgIn(arg int, values ...uint32) Cond {
	return Cond{Arg: arg, Mask: ^uint32(0), In: values}
}

// ArgMaskedIn is the condition "argument arg, masked with mask, is one of
// values".
func ArgMaskedIn(arg int, mask uint32, values ...uint32) Cond {
	return Cond{Arg: arg, Mask: mask, In: values}
}

// Action is what a filter does with a call an [ArgRule] decides. The zero
// Action is invalid, so a rule that forgets to say what it does is
// rejected instead of allowing anything.
type Action struct {
	allow  bool
	notify bool
	errno  syscall.Errno
}

// Allow is the action that lets the call through.
func Allow() Action { return Action{allow: true} }

// Fail is the action that fails the call with errno.
func Fail(errno syscall.Errno) Action { return Action{errno: errno} }

// Notify is the action that hands the call to the supervisor holding the
// filter's [Listener], which lets it continue or fails it. A policy with
// this action must be loaded with [InstallListener].
func Notify() Action { return Action{notify: true} }

// String reports the action as "allow", "notify" or "errno NAME".
func (a Action) String() string {
	switch {
	case !a.valid():
		return "invalid"
	case a.allow:
		return "allow"
	case a.notify:
		return "notify"
	default:
		return "errno " + errnoName(a.errno)
	}
}

func (a Action) valid() bool {
	n := 0
	for _, set := range []bool{a.allow, a.notify, a.errno != 0} {
		if set {
			n++
		}
	}
	return n == 1 && a.errno <= maxErrno
}

// Supervise moves the named syscalls to Notify: from Allow when they are
// there, and whatever their other rules say, every call of theirs then
// goes to the supervisor. Names are validated by [Policy.Validate].
func (p *Policy) Supervise(names ...string) {
	for _, n := range names {
		p.Allow = slices.DeleteFunc(p.Allow, func(a string) bool { return a == n })
		p.Args = slices.DeleteFunc(p.Args, func(r ArgRule) bool { return r.Name == n })
		p.Refuse = slices.DeleteFunc(p.Refuse, func(r Refusal) bool { return r.Name == n })
		if !slices.Contains(p.Notify, n) {
			p.Notify = append(p.Notify, n)
		}
	}
}

// notifies reports whether the program can hand a call to a supervisor.
func (p *Policy) notifies() bool {
	if len(p.Notify) > 0 {
		return true
	}
	for _, r := range p.Args {
		if r.Else.notify {
			return true
		}
		for _, c := range r.Cases {
			if c.Then.notify {
				return true
			}
		}
	}
	return false
}

// supportedArches are the architectures moat is built for; a syscall name
// is valid when one of them has it, and a name missing from the target
// architecture (open on arm64, say) is skipped there.
var supportedArches = []*arch.Info{arch.X86_64, arch.AARCH64}

func knownSyscall(name string) bool {
	for _, a := range supportedArches {
		if _, ok := a.SyscallNames[name]; ok {
			return true
		}
	}
	return false
}

// Validate reports every problem with the policy, wrapped in
// [ErrInvalidPolicy]; it returns nil for a policy Assemble can compile.
func (p *Policy) Validate() error {
	if p == nil {
		return fmt.Errorf("%w: nil policy", ErrInvalidPolicy)
	}
	var problems []error
	bad := func(format string, args ...any) {
		problems = append(problems, fmt.Errorf(format, args...))
	}
	seen := map[string]string{} // syscall name -> the list that has it
	name := func(list, n string) {
		switch prev, dup := seen[n]; {
		case !knownSyscall(n):
			bad("%s: unknown syscall %q", list, n)
		case dup:
			bad("%s: syscall %q is already in %s", list, n, prev)
		default:
			seen[n] = list
		}
	}

	if len(p.Allow) == 0 {
		bad("allow: empty")
	}
	for _, n := range p.Allow {
		name("allow", n)
	}
	for _, n := range p.Notify {
		name("notify", n)
	}
	for _, r := range p.Args {
		name("args", r.Name)
		if len(r.Cases) == 0 {
			bad("args %s: no cases", r.Name)
		}
		if !r.Else.valid() {
			bad("args %s: invalid else action", r.Name)
		}
		for i, c := range r.Cases {
			if len(c.When) == 0 {
				bad("args %s case %d: no conditions", r.Name, i)
			}
			if !c.Then.valid() {
				bad("args %s case %d: invalid action", r.Name, i)
			}
			for _, cond := range c.When {
				if err := cond.validate(); err != nil {
					bad("args %s case %d: %w", r.Name, i, err)
				}
			}
		}
	}
	for _, r := range p.Refuse {
		name("refuse", r.Name)
		if r.Errno > maxErrno {
			bad("refuse %s: errno %d out of range", r.Name, r.Errno)
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalidPolicy, errors.Join(problems...))
	}
	return nil
}

func (c Cond) validate() error {
	switch {
	case c.Arg < 0 || c.Arg > 5:
		return fmt.Errorf("argument %d out of range 0-5", c.Arg)
	case c.Mask == 0:
		return errors.New("zero mask")
	case len(c.In) == 0:
		return fmt.Errorf("argument %d: no values", c.Arg)
	}
	for _, v := range c.In {
		if v&^c.Mask != 0 {
			return fmt.Errorf("argument %d: value %#x has bits outside mask %#x", c.Arg, v, c.Mask)
		}
	}
	return nil
}

// clone returns a deep copy, so that Default can hand out policies callers
// may change freely.
func (p *Policy) clone() *Policy {
	c := &Policy{
		Allow:  slices.Clone(p.Allow),
		Notify: slices.Clone(p.Notify),
		Refuse: slices.Clone(p.Refuse),
		Args:   make([]ArgRule, len(p.Args)),
	}
	for i, r := range p.Args {
		r.Cases = slices.Clone(r.Cases)
		for j, cs := range r.Cases {
			cs.When = slices.Clone(cs.When)
			for k, cond := range cs.When {
				cond.In = slices.Clone(cond.In)
				cs.When[k] = cond
			}
			r.Cases[j] = cs
		}
		c.Args[i] = r
	}
	return c
}

func errnoName(e syscall.Errno) string {
	switch e {
	case syscall.EPERM:
		return "EPERM"
	case syscall.ENOSYS:
		return "ENOSYS"
	case syscall.EACCES:
		return "EACCES"
	case syscall.EINVAL:
		return "EINVAL"
	default:
		return fmt.Sprintf("%d", int(e))
	}
}
