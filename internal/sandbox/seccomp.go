package sandbox

import "moat.dev/moat/internal/seccomp"

// installSeccomp loads the instance syscall filter on every thread; it
// survives execve.
func installSeccomp() error { return seccomp.Install(seccomp.Default()) }
