package sandbox

import (
	"fmt"
	"os"

	"moat.dev/moat/internal/seccomp"
)

// filters are the instance syscall filter compiled ahead, while the init
// is a shell: plain, and with execve and execveat handed to the exec
// supervisor (enforce mode).
type filters struct{ plain, supervised *seccomp.Filter }

func compileFilters() (filters, error) {
	plain, err := seccomp.Compile(seccomp.Default())
	if err != nil {
		return filters{}, fmt.Errorf("compile filter: %w", err)
	}
	p := seccomp.Default()
	p.Supervise("execve", "execveat")
	supervised, err := seccomp.Compile(p)
	if err != nil {
		return filters{}, fmt.Errorf("compile filter: %w", err)
	}
	return filters{plain, supervised}, nil
}

// install loads the instance syscall filter on every thread; it survives
// execve. With supervise, execve and execveat are handed to the parent's
// exec supervisor, and the filter's listener is returned.
func (f filters) install(supervise bool) (*os.File, error) {
	if !supervise {
		return nil, f.plain.Install()
	}
	return f.supervised.InstallListener()
}
