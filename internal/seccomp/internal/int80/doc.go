// Package int80 makes an i386 system call from 64-bit code, through the
// legacy int 0x80 gate. The seccomp tests use it to check that the filter
// kills a process that calls in under a foreign architecture.
package int80
