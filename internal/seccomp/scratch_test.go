package seccomp

import (
	"encoding/binary"
	"testing"

	lib "github.com/elastic/go-seccomp-bpf"
	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/net/bpf"
)

func TestScratchAccumulator(t *testing.T) {
	p := &lib.Policy{
		DefaultAction: lib.ActionErrno,
		Syscalls: []lib.SyscallGroup{
			{NamesWithCondtions: []lib.NameWithConditions{{Name: "socket", Conditions: lib.ArgumentConditions{{Argument: 0, Operation: lib.Equal, Value: 1}}}}, Action: lib.ActionAllow},
			{Names: []string{"getpid", "ptrace"}, Action: lib.ActionAllow},
		},
	}
	insns, err := p.Assemble()
	if err != nil {
		t.Fatal(err)
	}
	for i, in := range insns {
		t.Logf("%d: %v", i, in)
	}
	vm, err := bpf.NewVM(insns)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	binary.BigEndian.PutUint32(buf[0:], 41) // socket
	binary.BigEndian.PutUint32(buf[4:], uint32(arch.X86_64.ID))
	binary.BigEndian.PutUint32(buf[16:], 39) // arg0 lo = getpid nr
	r, _ := vm.Run(buf)
	t.Logf("socket(39,...) -> %#x", r)
	binary.BigEndian.PutUint32(buf[16:], 17)
	r, _ = vm.Run(buf)
	t.Logf("socket(17,...) -> %#x", r)
}
