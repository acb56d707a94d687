// Package seccomp owns the syscall filter every function instance runs
// under: the policy (which syscalls, with which arguments, a Lambda runtime
// may make), its compilation to a classic BPF program, and loading that
// program into the instance init just before it execs the bootstrap.
//
// # Shape of the filter
//
// A [Policy] is a deterministic spec. [Default] is the allow-list for the
// runtimes moat supports (Go, Node.js, Python, Java, .NET, Ruby, and shell
// scripts calling curl); [Denied] names the refusals the security docs and
// tests rely on. [Policy.Assemble] turns a policy into a program that, in
// order:
//
//  1. kills the process when the call comes from a foreign ABI: an
//     architecture other than the one moat was built for (i386 int 0x80 on
//     x86_64, for example) or an x32 call (__X32_SYSCALL_BIT set) on x86_64;
//  2. decides the syscalls whose verdict depends on their arguments
//     ([ArgRule]s): socket (only AF_UNIX; AF_INET and AF_INET6 streams and
//     datagrams; AF_NETLINK with NETLINK_ROUTE), clone (no namespace
//     flags), personality (only PER_LINUX and the query), ioctl (no
//     TIOCSTI or TIOCLINUX terminal injection);
//  3. allows the rest of the allow-list, fails the few calls that need a
//     particular errno (clone3 gets ENOSYS so that glibc falls back to
//     clone, whose flags the filter can see), and fails everything else
//     with EPERM, so that runtimes probing for a feature degrade instead of
//     dying.
//
// Steps 1 and 2 are emitted by this package; step 3 is built by
// github.com/elastic/go-seccomp-bpf from its syscall tables. The library
// has argument conditions of its own, but (v1.6.0) when a condition fails
// the generated code goes on comparing the loaded argument, not the syscall
// number, with the syscalls that follow, so socket(39, ...) could match
// getpid's rule; it also cannot mask an argument before comparing it. The
// argument rules are therefore assembled here, each one ending in a return,
// and the library's program is appended after them unchanged.
//
// Argument rules compare the low 32 bits of an argument only: every
// argument they inspect is an int in the kernel (clone's flags are
// truncated to 32 bits by the kernel too), and libcs that sign-extend ints
// cannot slip past a 64-bit comparison.
//
// # Handing calls to a supervisor
//
// A policy may hand calls to a supervisor instead of deciding them:
// [Policy.Notify] lists syscalls whose every call is handed on, and the
// [Notify] action hands on the calls an argument rule picks. Such calls are
// decided right after the ABI check, before the argument rules, with
// SECCOMP_RET_USER_NOTIF: the calling thread waits in the kernel until the
// process holding the filter's listener answers. [InstallListener] loads
// such a policy and returns the listener; [Listener] is the supervisor's
// end, which receives each call ([Listener.Receive]), checks that it still
// waits ([Listener.Valid]) and lets it continue ([Listener.Continue]) or
// fails it ([Listener.Fail]). Enforce-mode instances hand execve and
// execveat to moat this way. Continuing a call is no security decision on
// the memory its arguments point to: the kernel reads it again, after the
// supervisor looked.
//
// # What it must never do
//
// It must never allow by default: a syscall the policy does not name is
// refused, and a call handed to a supervisor fails (ENOSYS) when no
// supervisor is left to answer. It must never turn an ordinary refusal into
// a kill; only a foreign ABI kills. And [Install] and [InstallListener] must
// only ever run in an instance init, never in the moat host process: a
// filter cannot be removed, and it binds every thread of the process that
// loads it. (A [Listener] lives in the host process; it loads nothing.)
package seccomp
