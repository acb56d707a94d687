package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A shell is an instance before it belongs to a function: its init is
// running in its own namespaces and cgroups, the Runtime API socket exists
// inside its network namespace, and the parts of its root that every
// function shares are mounted (read-only /usr, /etc files, /proc, /dev);
// the init waits, fully privileged inside its user namespace and with no
// wall up yet, for a function's spec. Claiming it (Manager.claim) attaches
// the code and /tmp, pivots into the root, gives up every privilege, puts
// up Landlock and seccomp, and execs the bootstrap, exactly as a freshly
// built instance does: a shell is the first half of every instance, and
// Spawn either takes one from the pool or builds one on the spot.
//
// A shell holds nothing of any function: no code, environment, limits
// beyond the defaults, network grants or observer. Its init's CPU is not
// limited (moat's own work), its memory is limited to shellMemory until
// the claim sets the function's.

// shellMemory bounds a shell's memory until it is claimed.
const shellMemory = 128 << 20

// shellSeq names shells' cgroups: sb-<seq>-<moat pid>.
var shellSeq atomic.Uint64

// initBase is the first message on the init's control pipe: what every
// instance of this manager shares.
type initBase struct {
	Hardened bool `json:"hardened"` // build the sandbox root in namespaces
}

// build starts a shell. It returns once the init has built the shared part
// of its root and waits for a claim.
func (m *Manager) build() (_ *Instance, err error) {
	t0 := time.Now()
	name := "sb-" + strconv.FormatUint(shellSeq.Add(1), 10) + "-" + strconv.Itoa(os.Getpid())
	cg, err := m.cg.create(name, shellMemory, MaxPids)
	if err != nil {
		return nil, err
	}
	inst := &Instance{m: m, cg: cg, done: make(chan struct{})}
	defer func() {
		if err != nil {
			inst.Close()
		}
	}()
	ctlR, ctlW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("build instance: %w", err)
	}
	defer ctlR.Close()
	inst.ctl = ctlW
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("build instance: %w", err)
	}
	inst.Output = outR
	defer outW.Close()
	repR, repW, err := reportPair()
	if err != nil {
		return nil, fmt.Errorf("build instance: %w", err)
	}
	defer repW.Close()
	inst.rep = repR

	cmd := exec.Command(m.opts.Executable, initArg)
	cmd.Args[0] = "moat-init"
	cmd.Env = []string{}
	cmd.Stdin = nil
	cmd.Stdout = outW
	cmd.Stderr = outW
	cmd.ExtraFiles = []*os.File{ctlR, repW}
	attr := &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL}
	if m.opts.Namespaces {
		slot, err := m.takeSlot()
		if err != nil {
			return nil, fmt.Errorf("build instance: %w", err)
		}
		inst.slot, inst.hasSlot = slot, true
		host := m.opts.UIDBase + slot*1000
		attr.Cloneflags = syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWNET |
			syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS | syscall.CLONE_NEWCGROUP
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(host), Size: 1000}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(host), Size: 1000}}
		attr.GidMappingsEnableSetgroups = true
		// Start as root of the new user namespace with no supplementary
		// groups: none of the host's groups may follow the instance in.
		attr.Credential = &syscall.Credential{Uid: 0, Gid: 0, Groups: []uint32{}}
	}
	fd, err := cg.v2fd()
	if err != nil {
		return nil, fmt.Errorf("build instance: open cgroup: %w", err)
	}
	if fd >= 0 {
		defer syscall.Close(fd)
		attr.UseCgroupFD = true
		attr.CgroupFD = fd
	}
	cmd.SysProcAttr = attr
	t1 := time.Now()
	inst.Times.Prepare = t1.Sub(t0)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("build instance: start init: %w", err)
	}
	t2 := time.Now()
	inst.Times.Clone = t2.Sub(t1)
	inst.cmd = cmd
	go func() {
		inst.waitErr = cmd.Wait()
		close(inst.done)
	}()
	if err := cg.addV1(cmd.Process.Pid); err != nil {
		return nil, err
	}
	if m.opts.Namespaces {
		inst.Listener, err = listenInNetns(cmd.Process.Pid, RuntimeAPIPort)
	} else {
		inst.Listener, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		return nil, fmt.Errorf("build instance: runtime api listener: %w", err)
	}
	if err := json.NewEncoder(ctlW).Encode(&initBase{Hardened: m.opts.Namespaces}); err != nil {
		return nil, fmt.Errorf("build instance: send base: %w", err)
	}
	t3 := time.Now()
	inst.Times.Host = t3.Sub(t2)
	repW.Close()
	rep, fd, err := readReport(repR)
	if fd >= 0 {
		syscall.Close(fd)
		return nil, errors.New("build instance: the init passed a descriptor with its first report")
	}
	if err != nil {
		return nil, fmt.Errorf("build instance: init died before reporting: %w", err)
	}
	if rep.Error != "" {
		return nil, fmt.Errorf("build instance: init: %s", rep.Error)
	}
	inst.Times.Walls = time.Since(t3)
	inst.Times.Root = time.Duration(rep.Steps.Root) * time.Microsecond
	return inst, nil
}

// pool keeps up to Options.Pool shells built ahead of the claims, so a
// cold start skips the clone, the init's start and the shared root. One
// goroutine refills it; a claim that finds it empty builds a shell itself
// (and never waits for the refiller).
type pool struct {
	ready  chan *Instance
	filled chan struct{} // signalled (never blocking) each time the pool is full
	wake   chan struct{}
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

func (m *Manager) startPool(size int) {
	p := &pool{
		ready:  make(chan *Instance, size),
		filled: make(chan struct{}, 1),
		wake:   make(chan struct{}, 1),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	m.pool = p
	go m.refill(p)
	p.kick()
}

func (p *pool) kick() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// refill builds shells while the pool has room and no instance is
// starting: between a Spawn and the end of that instance's init phase
// (Instance.InitDone, or its Close), and for refillDelay after, the
// refiller waits, since building a shell beside a starting instance
// slowed that instance's start by half on 2 CPUs (mounts, cgroups and
// namespaces share kernel locks). Its goroutine keeps an OS thread of its
// own under SCHED_BATCH, which the shells' inits inherit across the clone:
// a batch task has its full CPU weight but never preempts a running
// thread when it wakes, so refilling waits its turn behind functions and
// moat's API. SCHED_IDLE would be gentler still but inverts priorities: a
// shell's init holding a kernel lock (the cgroup or mount mutex) at the
// idle weight, on a busy machine, stalls the normal-priority spawn that
// waits for the same lock. The claim gives the init the normal policy
// back (normalPriority). A failed build is logged and retried after a
// pause.
func (m *Manager) refill(p *pool) {
	defer close(p.done)
	runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
	if err := unix.SchedSetAttr(0, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_BATCH}, 0); err != nil {
		m.log.Warn("pooled instances are built at normal priority", "err", err)
	}
	for {
		select {
		case <-p.stop:
			return
		case <-p.wake:
		}
		// Let the instance whose start just ended serve its first
		// invocation (the rest of its cold start) first.
		select {
		case <-p.stop:
			return
		case <-time.After(refillDelay):
		}
		for len(p.ready) < cap(p.ready) && m.starting.Load() == 0 {
			inst, err := m.build()
			if err != nil {
				m.log.Warn("build a pooled instance", "err", err)
				select {
				case <-p.stop:
					return
				case <-time.After(time.Second):
				}
				continue
			}
			select {
			case p.ready <- inst:
			case <-p.stop:
				inst.Close()
				return
			}
			if len(p.ready) == cap(p.ready) {
				select {
				case p.filled <- struct{}{}:
				default:
				}
			}
		}
	}
}

// refillDelay is how long the refiller waits after the last start ended
// before it builds: about one first invocation.
const refillDelay = 50 * time.Millisecond

// normalPriority gives every thread of pid the normal scheduling policy
// back (a shell's init inherited SCHED_BATCH from the refiller). It does
// nothing for a process that is already normal.
func normalPriority(pid int) error {
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	if err != nil {
		return fmt.Errorf("normal priority: %w", err)
	}
	attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_NORMAL}
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if err := unix.SchedSetAttr(tid, &attr, 0); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("normal priority: %w", err)
		}
	}
	return nil
}

// take returns a live shell from the pool, or nil when it has none.
func (p *pool) take() *Instance {
	for {
		select {
		case inst := <-p.ready:
			p.kick()
			select {
			case <-inst.done:
				// Its init died while it waited (killed from
				// outside): never hand it out.
				inst.Close()
				continue
			default:
				return inst
			}
		default:
			p.kick()
			return nil
		}
	}
}

// close stops the refiller and destroys the shells it holds. Only the
// first call does anything.
func (p *pool) close() {
	first := false
	p.once.Do(func() { first = true })
	if !first {
		return
	}
	close(p.stop)
	<-p.done
	for {
		select {
		case inst := <-p.ready:
			inst.Close()
		default:
			return
		}
	}
}
