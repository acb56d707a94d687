package sandbox

import (
	"os"

	"moat.dev/moat/internal/seccomp"
)

// installSeccomp loads the instance syscall filter on every thread; it
// survives execve. With supervise, execve and execveat are handed to the
// parent's exec supervisor, and the filter's listener is returned.
func installSeccomp(supervise bool) (*os.File, error) {
	p := seccomp.Default()
	if !supervise {
		return nil, seccomp.Install(p)
	}
	p.Supervise("execve", "execveat")
	return seccomp.InstallListener(p)
}
