package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"moat.dev/moat/internal/detect"
	"moat.dev/moat/internal/egress"
	"moat.dev/moat/internal/names"
	"moat.dev/moat/internal/seccomp"
)

// RuntimeAPIPort is where the Runtime API listens inside an instance's own
// network namespace, as on AWS.
const RuntimeAPIPort = 9001

// MaxPids bounds the processes and threads of one instance.
const MaxPids = 1024

// Options configure a Manager.
type Options struct {
	// CgroupParent is the directory, under each cgroup hierarchy, that holds
	// this manager's instance cgroups, and only them: NewManager removes
	// everything in it. Give every node its own (the node uses
	// "moat/<hash of its data dir>"). Default "moat/default".
	CgroupParent string
	// Namespaces gives every instance its own user, PID, mount, network,
	// IPC, UTS and cgroup namespaces, a root file system of its own, no
	// capabilities and no_new_privs (see Init). It needs root.
	Namespaces bool
	// Landlock and Seccomp add those walls (with Namespaces only).
	Landlock bool
	Seccomp  bool
	// Egress gives instances with grants their own network path; nil
	// refuses to spawn an instance that has grants.
	Egress *egress.Manager
	// UIDBase is the first host uid of the ranges instances map to: slot n
	// uses [UIDBase+n*1000, UIDBase+n*1000+1000). Default 3,000,000,000.
	UIDBase uint32
	// Executable is the moat binary re-executed as instance init; default
	// /proc/self/exe.
	Executable string
	// Observer, when set, is told of every instance's cgroup before the
	// instance's first process enters it (so the runtime sensor misses
	// none of its events) and when the instance is gone. An instance it
	// cannot observe is not started.
	Observer Observer
	// Pool is how many instances to keep built ahead of demand, in
	// their namespaces and cgroups with the shared part of their root,
	// waiting for a function (see shell.go); a Spawn that finds one
	// skips most of its work. 0 builds every instance on demand.
	Pool   int
	Logger *slog.Logger
}

// Observer watches instances from their first process to their end;
// *monitor.Monitor implements it. It hears of each instance from the
// sandbox alone: once, with everything it needs, before the function runs;
// of every exec the instance's walls refused; and once at its end.
type Observer interface {
	// Observe is called when the instance is claimed, before the
	// function's first process starts: who it runs for (Spec.Info), its
	// cgroup v2 id and the path its init will exec to start the function.
	// An error refuses the instance.
	Observe(instanceID string, info detect.InstanceInfo, cgroupID uint64, bootstrap string) error
	// ExecRefused is told of every exec the instance's exec supervisor
	// refused (enforce mode): the path the call named (empty when it
	// could not be read) and the caller's host pid. It is called from the
	// supervisor while the caller waits: it must be fast and must not
	// block.
	ExecRefused(instanceID, path string, pid int)
	// Forget is called once the instance's processes are all gone.
	Forget(instanceID string)
}

// Spec is what one instance runs. It is validated by Spawn.
type Spec struct {
	ID        string   // unique instance id: [a-z0-9-]{1,64}
	CodeDir   string   // the function's unpacked, read-only code
	Bootstrap string   // executable relative to CodeDir; default "bootstrap"
	Env       []string // the bootstrap's whole environment, KEY=VALUE
	MemoryMB  int      // hard memory limit, no swap
	TmpMB     int      // size of /tmp (EphemeralStorage); default 512
	// Egress lists the destinations the instance may reach; empty: only
	// its own loopback.
	Egress []egress.Grant
	// Hosts are /etc/hosts lines for the host names its grants pinned.
	Hosts []string
	// Info is who the instance runs for, as the Observer is told;
	// Info.Bootstrap defaults to the bootstrap's host path.
	Info detect.InstanceInfo
	// Enforce, when set, makes the instance's approved behaviour
	// profile a wall. It needs a manager with Namespaces, Landlock and
	// Seccomp; Spawn refuses it otherwise.
	Enforce *Enforcement
}

// Enforcement is what an approved profile allows, as walls. Two walls
// hold it: moat's exec supervisor answers every execve and execveat of
// the instance (seccomp user notification), and Landlock grants execute
// rights only on the Exec items and on what the kernel opens to run
// them. A refused exec fails with EPERM (the supervisor), or with EACCES
// when the supervisor let it through and Landlock did not.
type Enforcement struct {
	// Exec lists the executables the instance may run, as it sees them
	// (/var/task/bootstrap, /usr/bin/curl). An item ending in "/**"
	// covers every file beneath its directory; any other item with a
	// "*" is a path.Match pattern ("/usr/bin/*": every file directly in
	// /usr/bin), as in profiles. The bootstrap is always allowed.
	// Items that are not absolute are ignored.
	//
	// The supervisor matches the path as the caller gave it (made
	// absolute against its working directory or directory fd), without
	// following symlinks; a path with a ".." element is refused.
	// Landlock grants execute on what a plain item names once symlinks
	// are followed (/bin/sh grants /usr/bin/dash) and on its ELF or #!
	// interpreter, on the directory of a "/**" or "/*" item (for "/*",
	// its subdirectories too), on the literal directory before the first
	// "*" of other patterns, and on all of /tmp if an item lies under
	// /tmp (which is empty when the instance starts). An item missing
	// when the instance starts is skipped by Landlock, so its exec fails
	// with EACCES, unless it lies under /tmp.
	Exec []string
	// AllowExec, if set, is asked for every execve and execveat the
	// instance makes, instead of matching Exec: with the path (as
	// above) and the host pid of the calling process; false refuses the
	// call with EPERM. Landlock still grants execute only as Exec says.
	// It is called from the instance's supervisor goroutine, one call at
	// a time, while the caller waits: it must be fast and must not
	// block. The init's own exec of the bootstrap is not asked.
	AllowExec func(path string, pid int) bool
}

// Manager owns every instance of the node.
type Manager struct {
	opts Options
	log  *slog.Logger
	cg   *cgroupLayout

	pool *pool // nil without Options.Pool
	// starting counts the instances between Spawn and the end of their
	// init phase; the pool refills only while it is 0.
	starting atomic.Int64

	mu    sync.Mutex
	live  map[string]*Instance
	slots map[uint32]bool // uid ranges in use
	next  uint32
}

// maxSlots bounds concurrently live instances per node (uid ranges).
const maxSlots = 100000

func (m *Manager) takeSlot() (uint32, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := uint32(0); i < maxSlots; i++ {
		s := (m.next + i) % maxSlots
		if !m.slots[s] {
			m.slots[s] = true
			m.next = s + 1
			return s, nil
		}
	}
	return 0, errors.New("no free uid range for another instance")
}

func (m *Manager) freeSlot(s uint32) {
	m.mu.Lock()
	delete(m.slots, s)
	m.mu.Unlock()
}

// NewManager detects the host's cgroup layout and removes the leftovers of
// earlier runs (instances of a moat that was killed) before returning.
func NewManager(opts Options) (*Manager, error) {
	if opts.CgroupParent == "" {
		opts.CgroupParent = "moat/default"
	}
	if opts.Executable == "" {
		opts.Executable = "/proc/self/exe"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.UIDBase == 0 {
		opts.UIDBase = 3_000_000_000
	}
	l, err := detectCgroups(opts.CgroupParent)
	if err != nil {
		return nil, err
	}
	if err := l.prepare(); err != nil {
		return nil, err
	}
	n, err := l.sweep()
	if n > 0 {
		opts.Logger.Warn("removed leftover instances of an earlier run", "count", n)
	}
	if err != nil {
		return nil, fmt.Errorf("remove leftover instances: %w", err)
	}
	m := &Manager{opts: opts, log: opts.Logger, cg: l, live: map[string]*Instance{}, slots: map[uint32]bool{}}
	if opts.Pool > 0 {
		m.startPool(opts.Pool)
	}
	return m, nil
}

// Instance is one live function instance. Close it when done.
type Instance struct {
	ID string
	// Listener is the Runtime API socket, inside the instance's network
	// namespace when namespaces are on. The caller serves on it.
	Listener net.Listener
	// Output is the read end of the instance's stdout and stderr (one pipe,
	// so their order is kept).
	Output *os.File
	// Isolation is what the instance's init reported it applied.
	Isolation Isolation
	// Times is where its Spawn spent its time.
	Times SpawnTimes

	m         *Manager
	cmd       *exec.Cmd
	cg        *cgroup
	memBytes  int64
	pooled    bool // built by the pool's refiller (SCHED_BATCH until claimed)
	starting  bool // counted in Manager.starting until InitDone or Close
	startOnce sync.Once
	ctl       *os.File // the init's control pipe, until the claim
	rep       *os.File // the parent's end of the report socket, until the exec
	done      chan struct{}
	waitErr   error
	close     sync.Once
	closeErr  error
	slot      uint32 // uid range, with Namespaces
	hasSlot   bool
	observed  bool            // Options.Observer was told of it
	link      *egress.Link    // with grants
	super     *execSupervisor // in enforce mode
}

// DeniedConnections is how many connect/sendmsg attempts of the instance to
// destinations it was not granted the kernel refused (instances with
// grants; without any, nothing leaves the loopback to count).
func (i *Instance) DeniedConnections() uint64 {
	if i.link == nil {
		return 0
	}
	return i.link.Denied()
}

// Spawn starts an instance. The bootstrap is running when Spawn returns; it
// sees AWS_LAMBDA_RUNTIME_API pointing at inst.Listener.
func (m *Manager) Spawn(ctx context.Context, spec Spec) (*Instance, error) {
	return m.spawn(ctx, spec, false)
}

// Probe builds one instance with every wall the manager is configured for,
// without running anything in it, and returns what its init reported: the
// isolation instances actually get on this host.
func (m *Manager) Probe(ctx context.Context) (Isolation, error) {
	dir, err := os.MkdirTemp("", "moat-probe-")
	if err != nil {
		return Isolation{}, err
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o555); err != nil {
		return Isolation{}, err
	}
	inst, err := m.spawn(ctx, Spec{ID: "probe-" + strconv.Itoa(os.Getpid()), CodeDir: dir, MemoryMB: 64, TmpMB: 1}, true)
	if err != nil {
		return Isolation{}, err
	}
	defer inst.Close()
	<-inst.Done()
	return inst.Isolation, nil
}

func (m *Manager) spawn(ctx context.Context, spec Spec, probe bool) (_ *Instance, err error) {
	if !names.Instance(spec.ID) {
		return nil, fmt.Errorf("spawn: invalid instance id %q", spec.ID)
	}
	if spec.MemoryMB <= 0 {
		return nil, errors.New("spawn: memory limit is required")
	}
	if spec.Bootstrap == "" {
		spec.Bootstrap = "bootstrap"
	}
	if !filepath.IsLocal(spec.Bootstrap) {
		return nil, fmt.Errorf("spawn: bootstrap %q is not inside the code", spec.Bootstrap)
	}
	if spec.TmpMB <= 0 {
		spec.TmpMB = 512
	}
	if spec.Enforce != nil && (!m.opts.Namespaces || !m.opts.Landlock || !m.opts.Seccomp) {
		return nil, errors.New("spawn: enforce mode needs namespaces, Landlock and seccomp on this node")
	}
	if len(spec.Egress) > 0 && (!m.opts.Namespaces || m.opts.Egress == nil) {
		return nil, errors.New("spawn: the function has network grants, but egress is not available on this node")
	}
	if m.opts.Observer != nil && m.cg.v2Root == "" {
		return nil, errors.New("spawn: the runtime sensor needs a cgroup v2 hierarchy, and this host has none")
	}
	m.starting.Add(1)
	var inst *Instance
	if m.pool != nil && !probe {
		inst = m.pool.take()
	}
	if inst != nil {
		inst.Times = SpawnTimes{Pooled: true}
		inst.pooled = true
	} else if inst, err = m.build(); err != nil {
		m.doneStarting()
		return nil, fmt.Errorf("spawn: %w", err)
	}
	inst.starting = true
	if err := m.claim(inst, spec, probe); err != nil {
		inst.Close()
		return nil, fmt.Errorf("spawn: %w", err)
	}
	return inst, nil
}

// claim makes a shell the instance spec describes: its id, limits,
// observer, network and code (attach), then the walls and the exec
// (awaitWalls).
func (m *Manager) claim(inst *Instance, spec Spec, probe bool) error {
	t0 := time.Now()
	inst.ID = spec.ID
	inst.memBytes = int64(spec.MemoryMB) << 20
	ports, allPorts, err := m.attach(inst, spec)
	if err != nil {
		return err
	}
	is := m.initSpec(inst, spec, probe, ports, allPorts)
	if m.opts.Namespaces {
		// The code, as a detached read-only mount, goes to the init
		// over its report socket; the data directory is never reachable
		// by path from inside.
		code, err := detachedReadOnly(spec.CodeDir)
		if err != nil {
			return fmt.Errorf("code mount: %w", err)
		}
		err = sendFd(inst.rep, code)
		code.Close()
		if err != nil {
			return fmt.Errorf("send code: %w", err)
		}
	}
	if err := json.NewEncoder(inst.ctl).Encode(&is); err != nil {
		return fmt.Errorf("send spec: %w", err)
	}
	inst.ctl.Close()
	inst.ctl = nil
	inst.Times.Claim = time.Since(t0)
	if err := m.awaitWalls(inst, spec, is, probe); err != nil {
		return err
	}
	m.mu.Lock()
	m.live[spec.ID] = inst
	m.mu.Unlock()
	return nil
}

// attach gives a shell what is the function's on the host side: normal
// priority, its memory limit, the observer's watch, and its network grants
// (the ports Landlock then allows, or all of them).
func (m *Manager) attach(inst *Instance, spec Spec) (ports []uint16, allPorts bool, err error) {
	cg := inst.cg
	if inst.pooled {
		if err := normalPriority(inst.cmd.Process.Pid); err != nil {
			return nil, false, err
		}
	}
	if err := cg.setMemory(inst.memBytes); err != nil {
		return nil, false, err
	}
	if m.opts.Observer != nil {
		id, err := cgroupID(cg.v2)
		if err != nil {
			return nil, false, err
		}
		exe := filepath.Join(spec.CodeDir, spec.Bootstrap)
		if m.opts.Namespaces {
			exe = filepath.Join(codeMountPoint, spec.Bootstrap)
		}
		info := spec.Info
		if info.Bootstrap == "" {
			info.Bootstrap = filepath.Join(spec.CodeDir, spec.Bootstrap)
		}
		// Before the exec: the function has run nothing yet, and the
		// monitor skips the init's own events until it execs.
		if err := m.opts.Observer.Observe(spec.ID, info, id, exe); err != nil {
			return nil, false, err
		}
		inst.observed = true
	}
	if len(spec.Egress) > 0 {
		if inst.link, err = m.opts.Egress.Attach(inst.cmd.Process.Pid, spec.ID, cg.v2, spec.Egress); err != nil {
			return nil, false, fmt.Errorf("network: %w", err)
		}
		ports = inst.link.Ports()
		allPorts = ports == nil
	}
	return ports, allPorts, nil
}

// initSpec is what the init of inst is told to build and run.
func (m *Manager) initSpec(inst *Instance, spec Spec, probe bool, ports []uint16, allPorts bool) initSpec {
	env := make([]string, 0, len(spec.Env)+1)
	env = append(env, spec.Env...)
	env = append(env, "AWS_LAMBDA_RUNTIME_API="+inst.Listener.Addr().String())
	is := initSpec{
		Bootstrap: spec.Bootstrap,
		Dir:       spec.CodeDir,
		Path:      filepath.Join(spec.CodeDir, spec.Bootstrap),
		Args:      []string{filepath.Join(spec.CodeDir, spec.Bootstrap)},
		Env:       env,
		TmpMB:     spec.TmpMB,
		Landlock:  m.opts.Namespaces && m.opts.Landlock,
		Seccomp:   m.opts.Namespaces && m.opts.Seccomp,
		Probe:     probe,
		Networked: len(spec.Egress) > 0,
		Ports:     ports,
		AllPorts:  allPorts,
		Hosts:     spec.Hosts,
	}
	if spec.Enforce != nil {
		is.Enforce = true
		is.ExecAllow = spec.Enforce.Exec
		is.Supervise = true
	}
	return is
}

// awaitWalls waits for the init's report of the walls it built, starts the
// exec supervisor in enforce mode, gives the function's init phase its CPU
// and lets the init exec the bootstrap.
func (m *Manager) awaitWalls(inst *Instance, spec Spec, is initSpec, probe bool) error {
	t1 := time.Now()
	cg := inst.cg
	// The init reports the walls it built, or why it failed, then waits
	// for the go below and execs (which closes the report socket).
	rep, listenerFd, err := readReport(inst.rep)
	if err != nil {
		return fmt.Errorf("instance init died before reporting: %w", err)
	}
	inst.Times.Walls += time.Since(t1)
	us := func(n int64) time.Duration { return time.Duration(n) * time.Microsecond }
	inst.Times.Root += us(rep.Steps.Root)
	inst.Times.Privileges, inst.Times.Landlock, inst.Times.Seccomp = us(rep.Steps.Privileges), us(rep.Steps.Landlock), us(rep.Steps.Seccomp)
	if rep.Error != "" {
		if listenerFd >= 0 {
			unix.Close(listenerFd)
		}
		return fmt.Errorf("instance init: %s", rep.Error)
	}
	if (listenerFd >= 0) != is.Supervise || rep.Isolation.ExecSupervisor != is.Supervise {
		if listenerFd >= 0 {
			unix.Close(listenerFd)
		}
		return fmt.Errorf("exec supervisor wanted: %v; init's listener: %v, reported: %v", is.Supervise, listenerFd >= 0, rep.Isolation.ExecSupervisor)
	}
	if listenerFd >= 0 {
		// The init's exec of the bootstrap waits for this supervisor.
		l, err := seccomp.NewListener(listenerFd)
		if err != nil {
			return err
		}
		denied := func(string, int) {}
		if obs := m.opts.Observer; obs != nil {
			id := spec.ID
			denied = func(path string, pid int) { obs.ExecRefused(id, path, pid) }
		}
		inst.super = startExecSupervisor(l, spec.Enforce, denied, filepath.Join(codeMountPoint, spec.Bootstrap), inst.cmd.Process.Pid,
			m.log.With("instance", spec.ID))
	}
	rep.Isolation.MemoryLimit = cg.mem != ""
	rep.Isolation.PidsLimit = cg.pids != ""
	rep.Isolation.CPULimit = cg.cpu
	inst.Isolation = rep.Isolation
	if !probe {
		// The walls are up: from the exec on, the function's init phase
		// runs on its own CPU allowance. The init waits for this go.
		if err := cg.setCPU(cpuInitQuota(inst.memBytes)); err != nil {
			return err
		}
		if err := sendGo(inst.rep); err != nil {
			return fmt.Errorf("instance init died before its exec: %w", err)
		}
	}
	inst.rep.Close()
	inst.rep = nil
	return nil
}

// listenInNetns opens a TCP listener on 127.0.0.1:port inside the network
// namespace of pid, bringing its loopback up first.
func listenInNetns(pid, port int) (net.Listener, error) {
	type result struct {
		ln  net.Listener
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		// The thread is unlocked only if it returned to the host namespace;
		// otherwise the runtime discards it when this goroutine ends.
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer unix.Close(orig)
		target, err := unix.Open("/proc/"+strconv.Itoa(pid)+"/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			ch <- result{err: fmt.Errorf("enter netns: %w", err)}
			return
		}
		ln, lerr := func() (net.Listener, error) {
			if err := loopbackUp(); err != nil {
				return nil, err
			}
			return net.Listen("tcp4", "127.0.0.1:"+strconv.Itoa(port))
		}()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			if ln != nil {
				ln.Close()
			}
			ch <- result{err: fmt.Errorf("leave netns: %w", err)}
			return // thread stays locked and is destroyed
		}
		runtime.UnlockOSThread()
		ch <- result{ln, lerr}
	}()
	r := <-ch
	return r.ln, r.err
}

func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("loopback up: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback up: %w", err)
	}
	return nil
}

// Done is closed when the instance's init process has exited.
func (i *Instance) Done() <-chan struct{} { return i.done }

// ExitError is the exit status of the instance after Done is closed: nil for
// a clean exit, an *exec.ExitError otherwise.
func (i *Instance) ExitError() error {
	select {
	case <-i.done:
		return i.waitErr
	default:
		return nil
	}
}

// Pid is the host pid of the instance's first process.
func (i *Instance) Pid() int {
	if i.cmd == nil || i.cmd.Process == nil {
		return 0
	}
	return i.cmd.Process.Pid
}

// MaxMemoryMB is the instance's peak memory use so far, in MB (rounded up).
func (i *Instance) MaxMemoryMB() int {
	b := i.cg.maxMemory()
	return int((b + (1 << 20) - 1) >> 20)
}

// InitDone ends the function's init phase (call it when the runtime first
// asks for an invocation): from now on the instance's processes get the
// function's steady CPU share, in proportion to its memory. Until then they
// run with at least one full CPU.
func (i *Instance) InitDone() error {
	i.endStart()
	return i.cg.setCPU(cpuQuota(i.memBytes))
}

// endStart counts the instance's start as over, once (InitDone or Close).
func (i *Instance) endStart() {
	i.startOnce.Do(func() {
		if i.starting {
			i.m.doneStarting()
		}
	})
}

// doneStarting notes that one instance's start is over; the last one lets
// the pool refill.
func (m *Manager) doneStarting() {
	if m.starting.Add(-1) == 0 && m.pool != nil {
		m.pool.kick()
	}
}

// OOMKilled reports whether the kernel killed a process of the instance for
// exceeding its memory limit.
func (i *Instance) OOMKilled() bool { return i.cg.oomKills() > 0 }

// Kill kills every process of the instance. It does not wait.
func (i *Instance) Kill() {
	if i.cmd != nil && i.cmd.Process != nil {
		_ = i.cmd.Process.Signal(syscall.SIGKILL)
	}
	i.cg.killAll()
}

// Close kills the instance, waits for it to exit and removes everything it
// held: processes, listener, pipe and cgroups.
func (i *Instance) Close() error {
	i.close.Do(func() {
		i.endStart()
		i.Kill()
		if i.super != nil {
			i.closeErr = i.super.stop()
		}
		if i.cmd != nil {
			select {
			case <-i.done:
			case <-time.After(10 * time.Second):
				i.closeErr = errors.New("close instance: init did not exit after SIGKILL")
			}
		}
		if i.Listener != nil {
			i.Listener.Close()
		}
		if i.Output != nil {
			i.Output.Close()
		}
		if i.ctl != nil {
			i.ctl.Close()
		}
		if i.rep != nil {
			i.rep.Close()
		}
		if i.link != nil {
			if err := i.link.Close(); err != nil && i.closeErr == nil {
				i.closeErr = err
			}
		}
		if i.observed {
			i.m.opts.Observer.Forget(i.ID)
		}
		if err := i.cg.destroy(); err != nil && i.closeErr == nil {
			i.closeErr = err
		}
		if i.ID != "" {
			i.m.mu.Lock()
			if i.m.live[i.ID] == i {
				delete(i.m.live, i.ID)
			}
			i.m.mu.Unlock()
		}
		if i.hasSlot {
			i.m.freeSlot(i.slot)
		}
	})
	return i.closeErr
}

// Close destroys the pooled shells and closes every live instance.
func (m *Manager) Close() error {
	if m.pool != nil {
		m.pool.close()
	}
	m.mu.Lock()
	all := make([]*Instance, 0, len(m.live))
	for _, i := range m.live {
		all = append(all, i)
	}
	m.mu.Unlock()
	var errs []error
	for _, i := range all {
		errs = append(errs, i.Close())
	}
	return errors.Join(errs...)
}

// removeParent removes the manager's empty parent cgroups (tests use a
// parent of their own).
func (m *Manager) removeParent() { m.cg.removeParent() }

// detachedReadOnly clones the mount of dir into a detached, read-only,
// nosuid, nodev mount and returns its fd; the instance init attaches it at
// /var/task with move_mount. The data directory stays unreachable from the
// instance: no path to it is ever resolved inside.
func detachedReadOnly(dir string) (*os.File, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, dir, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("open_tree %s: %w", dir, err)
	}
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("mount_setattr: %w", err)
	}
	return os.NewFile(uintptr(fd), "code"), nil
}
