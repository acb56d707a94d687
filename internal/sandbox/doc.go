// Package sandbox spawns, watches and destroys function instances.
//
// One Manager owns every instance on a node and all the privileged work that
// goes with them: cgroups, namespaces and the Runtime API socket created
// inside each instance's network namespace. An instance is started by
// re-executing the moat binary as a small init (see Init) and is built in
// two halves. The shell: the init runs in its own namespaces and cgroups,
// the Runtime API socket exists, and the parts of the root every function
// shares are mounted; it holds nothing of any function. The claim: the
// function's code, /tmp, limits, network grants and observer are attached,
// the init pivots into the root, gives up every privilege, puts up Landlock
// and seccomp and execs the function's bootstrap with exactly the
// environment it was given: nothing of moat's own environment or
// credentials is inherited. Just before that exec, the init reports the
// walls it built (Isolation) over a UNIX socket; Spawn returns only after
// that report. With Options.Pool, the manager keeps shells built ahead and
// a Spawn claims one; a shell is used once and never returns to the pool.
//
// An instance's CPU quota follows its phase: none while moat's init works,
// at least two CPUs from the exec of the bootstrap to its first
// invocation/next (Instance.InitDone), then the function's share in
// proportion to memory over the kernel's 100 ms CFS period.
//
// # Enforce mode
//
// A Spec with Enforce turns a function's approved behaviour profile into
// two walls, so that an exec the profile does not list fails instead of
// only being reported:
//
//   - The exec supervisor. The instance's seccomp filter hands every
//     execve and execveat to moat (SECCOMP_RET_USER_NOTIF). The init loads
//     the filter with a listener and passes it to the parent with its
//     report (SCM_RIGHTS); one goroutine per instance receives each call,
//     reads the path from the caller's memory (process_vm_readv), makes it
//     absolute against the caller's working directory or directory fd as
//     the instance sees it, checks that the call still waits (so that what
//     it read was the caller's), and decides with Enforcement.Exec or
//     Enforcement.AllowExec: the call continues, or fails with EPERM and
//     the Observer is told (ExecRefused). The filter is in place before the init
//     execs the bootstrap, so that exec too waits in the kernel until the
//     supervisor, started when the report arrived, lets it continue.
//   - The Landlock execute allow-list. Instead of read and execute on the
//     whole tree, the init grants read without execute on "/", execute
//     only on the profile's executables (symlinks resolved), on their ELF
//     or #! interpreters and on the directories of "/*" and "/**" items,
//     and keeps /tmp writable but not executable unless an item lies under
//     /tmp. Shared libraries need no execute right: Landlock checks execute
//     when the kernel opens a file for execution (the program and its ELF
//     interpreter) and has no hook on mmap, so libraries are mapped with
//     the read right alone.
//
// The supervisor answers by continuing the call (the kernel then reads the
// path again), so a thread racing the answer could swap the path for
// another. Landlock closes that race: it decides on the file the kernel
// actually opens, after symlinks, so a swapped path can only reach what
// the allow-list grants. The supervisor in turn refuses what Landlock must
// grant but the profile does not list: a direct exec of ld.so, a path with
// "..", anything under /tmp but the listed files. Neither wall decides
// which code an already running process maps: that is not an exec.
//
// The supervisor answers every notification, a refusal whenever anything
// goes wrong (the path cannot be read, the caller left); it ends when the
// instance's processes are gone or the instance is closed. Close closes the
// listener, after which any exec still waiting fails with ENOSYS: an
// instance can never make moat wait, and moat never lets an exec through
// by default.
//
// The package never decides what runs or when: the invoke package does.
package sandbox
