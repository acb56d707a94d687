package detect

import "testing"

func TestUnknownNumbersNamed(t *testing.T) {
	if SyscallName(100000) != "syscall_100000" || ErrnoName(4095) != "errno_4095" {
		t.Error("unknown numbers are not named by number")
	}
}
