//go:build !amd64

package int80

// Available says whether this architecture has the int 0x80 gate.
const Available = false

// Getpid is not available on this architecture.
func Getpid() uintptr { panic("int80: no int 0x80 gate on this architecture") }
