package seccomp

import (
	"fmt"
	"runtime"
	"slices"
	"syscall"

	lib "github.com/elastic/go-seccomp-bpf"
	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Layout of struct seccomp_data and the filter return values
// (include/uapi/linux/seccomp.h).
const (
	offNR   = 0
	offArch = 4
	offArgs = 16 // six 64-bit arguments follow

	retKillProcess = unix.SECCOMP_RET_KILL_PROCESS
	retErrno       = unix.SECCOMP_RET_ERRNO
	retAllow       = unix.SECCOMP_RET_ALLOW
	retUserNotif   = unix.SECCOMP_RET_USER_NOTIF

	// x32SyscallBit marks an x32 call on x86_64, which reports the same
	// audit arch as a native one (__X32_SYSCALL_BIT).
	x32SyscallBit = 0x40000000

	// maxInsns is the longest program the kernel loads (BPF_MAXINSNS).
	maxInsns = 4096
)

// Assemble compiles the policy for the architecture moat runs on (x86_64
// or arm64) into a classic BPF program for SECCOMP_SET_MODE_FILTER; see
// the package doc for its layout. It returns [ErrInvalidPolicy] (wrapped)
// for an invalid policy.
func (p *Policy) Assemble() ([]bpf.Instruction, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	target, err := arch.GetInfo("")
	if err != nil || !slices.Contains(supportedArches, target) {
		return nil, fmt.Errorf("assemble filter: architecture %s is not supported", runtime.GOARCH)
	}

	var a asm
	emitABICheck(&a, target)
	for _, n := range p.Notify {
		emitNotify(&a, target, n)
	}
	for _, r := range p.Args {
		emitArgRule(&a, target, r)
	}
	head, err := a.resolve()
	if err != nil {
		return nil, fmt.Errorf("assemble argument rules: %w", err)
	}
	tail, err := p.libraryPolicy(target).Assemble()
	if err != nil {
		return nil, fmt.Errorf("assemble allow list: %w", err)
	}
	// Every path through the program must end in a verdict; the
	// library's last instruction is its default action, which must be
	// the policy's EPERM.
	if last, ok := tail[len(tail)-1].(bpf.RetConstant); !ok || last.Val != retErrno|uint32(syscall.EPERM) {
		return nil, fmt.Errorf("assemble allow list: program ends in %v, not errno EPERM", tail[len(tail)-1])
	}
	prog := append(head, tail...)
	if len(prog) > maxInsns {
		return nil, fmt.Errorf("assemble filter: %d instructions, the kernel takes at most %d", len(prog), maxInsns)
	}
	return prog, nil
}

// emitABICheck kills the process for a call from a foreign architecture
// or, on x86_64, from the x32 ABI. It leaves the syscall number in A.
// nr -1 (a tracer skipping a call) is refused like an unknown syscall.
func emitABICheck(a *asm, target *arch.Info) {
	archOK, kill := a.label(), a.label()
	a.emit(bpf.LoadAbsolute{Off: offArch, Size: 4})
	a.jumpIf(bpf.JumpEqual, uint32(target.ID), archOK, kill)
	a.bind(kill)
	a.emit(bpf.RetConstant{Val: retKillProcess})
	a.bind(archOK)
	a.emit(bpf.LoadAbsolute{Off: offNR, Size: 4})
	if target != arch.X86_64 {
		return
	}
	x32, native, skipped, killX32 := a.label(), a.label(), a.label(), a.label()
	a.jumpIf(bpf.JumpGreaterOrEqual, x32SyscallBit, x32, native)
	a.bind(x32)
	a.jumpIf(bpf.JumpEqual, ^uint32(0), skipped, killX32)
	a.bind(skipped)
	a.emit(bpf.RetConstant{Val: retErrno | uint32(syscall.EPERM)})
	a.bind(killX32)
	a.emit(bpf.RetConstant{Val: retKillProcess})
	a.bind(native)
}

// emitNotify hands every call of the named syscall to the supervisor. It
// is entered, and leaves other calls, with the syscall number in A.
func emitNotify(a *asm, target *arch.Info, name string) {
	nr, ok := target.SyscallNames[name]
	if !ok {
		return
	}
	body, next := a.label(), a.label()
	a.jumpIf(bpf.JumpEqual, uint32(nr|target.SeccompMask), body, next)
	a.bind(body)
	a.emit(bpf.RetConstant{Val: retUserNotif})
	a.bind(next)
}

// emitArgRule emits one argument rule, entered with the syscall number in
// A. A call to another syscall skips the rule with A unchanged; a call to
// this one always ends in a verdict inside the rule, since the conditions
// overwrite A.
func emitArgRule(a *asm, target *arch.Info, r ArgRule) {
	nr, ok := target.SyscallNames[r.Name]
	if !ok {
		return
	}
	body, next := a.label(), a.label()
	a.jumpIf(bpf.JumpEqual, uint32(nr|target.SeccompMask), body, next)
	a.bind(body)
	for _, c := range r.Cases {
		nextCase := a.label()
		for _, cond := range c.When {
			// Both supported architectures are little-endian: the low
			// half of an argument comes first.
			a.emit(bpf.LoadAbsolute{Off: uint32(offArgs + 8*cond.Arg), Size: 4})
			if cond.Mask != ^uint32(0) {
				a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: cond.Mask})
			}
			holds := a.label()
			for i, v := range cond.In {
				miss := nextCase
				if i < len(cond.In)-1 {
					miss = a.label()
				}
				a.jumpIf(bpf.JumpEqual, v, holds, miss)
				if miss != nextCase {
					a.bind(miss)
				}
			}
			a.bind(holds)
		}
		a.emit(c.Then.ret())
		a.bind(nextCase)
	}
	a.emit(r.Else.ret())
	a.bind(next)
}

func (a Action) ret() bpf.RetConstant {
	switch {
	case a.allow:
		return bpf.RetConstant{Val: retAllow}
	case a.notify:
		return bpf.RetConstant{Val: retUserNotif}
	}
	return bpf.RetConstant{Val: retErrno | uint32(a.errno)}
}

// libraryPolicy is the part of the policy the library assembles: the
// allow-list, then the refusals whose errno is not EPERM, grouped by errno
// in the order they first appear; everything else gets EPERM. Names the
// target architecture lacks are left out.
func (p *Policy) libraryPolicy(target *arch.Info) *lib.Policy {
	has := func(name string) bool { _, ok := target.SyscallNames[name]; return ok }
	lp := &lib.Policy{DefaultAction: lib.ActionErrno} // the library's errno is EPERM
	var allow []string
	for _, n := range p.Allow {
		if has(n) {
			allow = append(allow, n)
		}
	}
	lp.Syscalls = append(lp.Syscalls, lib.SyscallGroup{Names: allow, Action: lib.ActionAllow})

	var errnos []syscall.Errno
	byErrno := map[syscall.Errno][]string{}
	for _, r := range p.Refuse {
		if r.Errno == 0 || r.Errno == syscall.EPERM || !has(r.Name) {
			continue
		}
		if _, ok := byErrno[r.Errno]; !ok {
			errnos = append(errnos, r.Errno)
		}
		byErrno[r.Errno] = append(byErrno[r.Errno], r.Name)
	}
	for _, e := range errnos {
		lp.Syscalls = append(lp.Syscalls, lib.SyscallGroup{
			Names:  byErrno[e],
			Action: lib.ActionErrno | lib.Action(e),
		})
	}
	return lp
}

// asm assembles straight-line BPF with forward jumps to labels.
type asm struct {
	prog  []bpf.Instruction
	at    []int // label -> index of the instruction it marks; -1 until bound
	jumps []jump
}

type label int

type jump struct {
	pc          int
	onTrue, onF label
}

func (a *asm) label() label {
	a.at = append(a.at, -1)
	return label(len(a.at) - 1)
}

// bind marks the next instruction emitted (or, at the end, whatever
// follows the program) with l.
func (a *asm) bind(l label) { a.at[l] = len(a.prog) }

func (a *asm) emit(in bpf.Instruction) { a.prog = append(a.prog, in) }

func (a *asm) jumpIf(cond bpf.JumpTest, val uint32, onTrue, onFalse label) {
	a.jumps = append(a.jumps, jump{pc: len(a.prog), onTrue: onTrue, onF: onFalse})
	a.emit(bpf.JumpIf{Cond: cond, Val: val})
}

func (a *asm) resolve() ([]bpf.Instruction, error) {
	skip := func(from int, l label) (uint8, error) {
		to := a.at[l]
		switch d := to - from - 1; {
		case to < 0:
			return 0, fmt.Errorf("instruction %d: jump to an unbound label", from)
		case d < 0:
			return 0, fmt.Errorf("instruction %d: backward jump", from)
		case d > 255:
			return 0, fmt.Errorf("instruction %d: jump of %d is too long", from, d)
		default:
			return uint8(d), nil
		}
	}
	for _, j := range a.jumps {
		in := a.prog[j.pc].(bpf.JumpIf)
		var err error
		if in.SkipTrue, err = skip(j.pc, j.onTrue); err != nil {
			return nil, err
		}
		if in.SkipFalse, err = skip(j.pc, j.onF); err != nil {
			return nil, err
		}
		a.prog[j.pc] = in
	}
	return a.prog, nil
}
