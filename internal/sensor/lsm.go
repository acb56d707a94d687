package sensor

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// ProbeLSM reports whether this host lets moat load and attach BPF LSM
// programs (BPF_PROG_TYPE_LSM on the bprm_check_security hook, which
// decides every exec), the extra enforcement backend some hosts allow:
// nil if it does, else the kernel's refusal. It loads and attaches a
// program that allows everything, then detaches it. Hosts whose kernel
// lists "bpf" among its LSMs may still refuse (lockdown, or a kernel
// built without the hook's BTF): only loading it tells.
func ProbeLSM() error {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "moat_lsm_probe",
		Type:         ebpf.LSM,
		AttachType:   ebpf.AttachLSMMac,
		AttachTo:     "bprm_check_security",
		License:      "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
	})
	if errors.Is(err, unix.EPERM) {
		// cilium/ebpf adds a hint about MEMLOCK, which does not apply:
		// the kernel refuses the program type.
		return fmt.Errorf("load BPF LSM program: the kernel refused it: %w", unix.EPERM)
	}
	if err != nil {
		return fmt.Errorf("load BPF LSM program: %w", err)
	}
	defer prog.Close()
	l, err := link.AttachLSM(link.LSMOptions{Program: prog})
	if err != nil {
		return fmt.Errorf("attach BPF LSM program: %w", err)
	}
	return l.Close()
}
