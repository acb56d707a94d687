package int80

// Available says whether this architecture has the int 0x80 gate.
const Available = true

// Getpid calls i386 getpid (number 20) through int 0x80 and returns what
// the kernel left in EAX: the pid, or a negated errno.
func Getpid() uintptr
