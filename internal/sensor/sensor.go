package sensor

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/sys/unix"
)

// ErrUnavailable is returned (wrapped) by [Load] when this host cannot run
// the sensor: no BPF or BTF, missing privileges (CAP_BPF and CAP_PERFMON,
// or root), a kernel that refuses the programs or lacks a type or
// tracepoint they use. It is the platform's failure, not moat's: moat
// should say so loudly and run without the sensor only if told to.
var ErrUnavailable = errors.New("runtime sensor unavailable on this host")

// ErrClosed is returned by the methods of a closed [Sensor].
var ErrClosed = errors.New("sensor closed")

// ErrNotWatched is returned (wrapped) by [Sensor.Unwatch] and
// [Sensor.DroppedFor] for a cgroup that is not watched.
var ErrNotWatched = errors.New("cgroup not watched")

// ErrWatchFull is returned (wrapped) by [Sensor.Watch] when
// Options.MaxWatched cgroups are already watched.
var ErrWatchFull = errors.New("too many watched cgroups")

// Options configure [Load]. The zero value is usable.
type Options struct {
	// RingBytes is the size of the kernel ring buffer all instances share:
	// a power of two, at least the page size. Default 4 MiB. When user
	// space falls this far behind, records are dropped and counted.
	RingBytes int
	// MaxWatched is the most cgroups watched at once. Default 4096.
	MaxWatched int
	// EventBuffer is the capacity of the channel returned by
	// [Sensor.Events]. Default 4096.
	EventBuffer int
	// PollInterval is the longest a record waits in the ring before it is
	// read. The kernel wakes the reader only when an eighth of the ring is
	// full, so that a busy instance costs one wakeup per batch rather than
	// one per record; the reader also looks at this interval. Default
	// 25 ms.
	PollInterval time.Duration
	// SeccompAllowed lists the syscalls the instances' seccomp filter
	// allows with any arguments. The filter can refuse none of them, so
	// those the sensor does not report (read, write, futex...) are not
	// traced at all: their calls, by any process on the host, leave the
	// sensor's programs at the first test. Nil: every syscall is traced,
	// so that a refusal of any of them is seen. Names this architecture
	// lacks are ignored; an unknown name is an error.
	SeccompAllowed []string
	// Escapes names the syscalls whose refusal by an instance's seccomp
	// filter is an escape attempt (ptrace, mount, bpf...): in a cgroup
	// watched with KillEscapes, the caller is killed. Names
	// this architecture lacks are ignored; an unknown name is an error.
	Escapes []string
	// Logger receives the sensor's own warnings (malformed records,
	// ring buffer read errors), never an event. Default: discarded.
	Logger *slog.Logger

	// exitByLiveCount forces the exit program for kernels before 6.16
	// (tests).
	exitByLiveCount bool
}

const (
	defaultRingBytes   = 4 << 20
	defaultMaxWatched  = 4096
	defaultEventBuffer = 4096
	defaultPoll        = 25 * time.Millisecond
)

// Log keys.
const (
	logKeyErr = "err"
)

func (o Options) withDefaults() (Options, error) {
	if o.RingBytes == 0 {
		o.RingBytes = defaultRingBytes
	}
	if o.MaxWatched == 0 {
		o.MaxWatched = defaultMaxWatched
	}
	if o.EventBuffer == 0 {
		o.EventBuffer = defaultEventBuffer
	}
	if o.PollInterval == 0 {
		o.PollInterval = defaultPoll
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	page := os.Getpagesize()
	switch {
	case o.RingBytes < page || o.RingBytes&(o.RingBytes-1) != 0 || o.RingBytes > 1<<30:
		return o, fmt.Errorf("sensor options: RingBytes %d is not a power of two between the page size and 1 GiB", o.RingBytes)
	case o.MaxWatched < 0 || o.MaxWatched > 1<<20:
		return o, fmt.Errorf("sensor options: MaxWatched %d out of range", o.MaxWatched)
	case o.EventBuffer < 0:
		return o, fmt.Errorf("sensor options: EventBuffer %d is negative", o.EventBuffer)
	case o.PollInterval < time.Millisecond:
		return o, fmt.Errorf("sensor options: PollInterval %v is under 1ms", o.PollInterval)
	}
	return o, nil
}

// objects are the kernel objects the sensor loads. The generated
// sensorObjects would also create the .bss map of the layout-only globals;
// this set leaves it out.
type objects struct {
	SchedProcessExec *ebpf.Program `ebpf:"sched_process_exec"`
	SchedProcessExit *ebpf.Program `ebpf:"sched_process_exit"`
	SysEnter         *ebpf.Program `ebpf:"sys_enter"`
	SysExit          *ebpf.Program `ebpf:"sys_exit"`

	Events   *ebpf.Map `ebpf:"events"`
	Watched  *ebpf.Map `ebpf:"watched"`
	Drops    *ebpf.Map `ebpf:"drops"`
	Escapes  *ebpf.Map `ebpf:"escapes"`
	Untraced *ebpf.Map `ebpf:"untraced_nr"`
	Tasks    *ebpf.Map `ebpf:"tasks"`
}

func (o *objects) close() {
	for _, c := range []interface{ Close() error }{
		o.SchedProcessExec, o.SchedProcessExit, o.SysEnter, o.SysExit,
		o.Events, o.Watched, o.Drops, o.Escapes, o.Untraced, o.Tasks,
	} {
		if c != nil {
			c.Close()
		}
	}
}

// Sensor is the loaded, attached sensor. It is safe for concurrent use.
//
// Locking, in this order: life (read-held by every method that uses a
// kernel object, write-held by Close, so no map is used after it is
// closed).
type Sensor struct {
	objs   objects
	links  []link.Link
	rd     *ringbuf.Reader
	boot   time.Time
	log    *slog.Logger
	poll   time.Duration
	events chan Event
	stop   chan struct{} // closed by Close: the reader stops sending
	done   chan struct{} // closed by the reader when it has returned

	life   sync.RWMutex
	closed bool // guarded by life

	malformed atomic.Uint64
}

// Load loads the BPF programs, attaches them to their tracepoints and
// starts reading the ring buffer. No cgroup is watched yet, so nothing is
// reported until [Sensor.Watch].
//
// It returns ErrUnavailable (wrapped, with the kernel's reason) when the
// host cannot run the sensor, and a plain error for invalid Options.
func Load(opts Options) (*Sensor, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := checkCaps(); err != nil {
		return nil, err
	}
	spec, err := loadSensor()
	if err != nil {
		return nil, fmt.Errorf("parse sensor object: %w", err)
	}
	spec.Maps["events"].MaxEntries = uint32(opts.RingBytes)
	spec.Maps["watched"].MaxEntries = uint32(opts.MaxWatched)
	if err := spec.Variables["wakeup_bytes"].Set(uint64(opts.RingBytes / 8)); err != nil {
		return nil, fmt.Errorf("set wakeup threshold: %w", err)
	}
	// Two programs for sched_process_exit; keep the one this kernel's
	// tracepoint fits under the name the objects use.
	if !opts.exitByLiveCount && exitHasGroupDead() {
		spec.Programs["sched_process_exit"] = spec.Programs["sched_process_exit_gd"]
	}
	delete(spec.Programs, "sched_process_exit_gd")

	s := &Sensor{
		log:    opts.Logger,
		poll:   opts.PollInterval,
		events: make(chan Event, opts.EventBuffer),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	if err := spec.LoadAndAssign(&s.objs, nil); err != nil {
		return nil, fmt.Errorf("%w: load programs: %w", ErrUnavailable, err)
	}
	// sys_exit before sys_enter is harmless: nothing is watched yet.
	for _, a := range []struct {
		tp   string
		prog *ebpf.Program
	}{
		{"sched_process_exec", s.objs.SchedProcessExec},
		{"sched_process_exit", s.objs.SchedProcessExit},
		{"sys_enter", s.objs.SysEnter},
		{"sys_exit", s.objs.SysExit},
	} {
		l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: a.tp, Program: a.prog})
		if err != nil {
			s.closeKernel()
			return nil, fmt.Errorf("%w: attach %s: %w", ErrUnavailable, a.tp, err)
		}
		s.links = append(s.links, l)
	}
	if err := s.setEscapes(opts.Escapes); err != nil {
		s.closeKernel()
		return nil, err
	}
	if err := s.setUntraced(opts.SeccompAllowed); err != nil {
		s.closeKernel()
		return nil, err
	}
	s.rd, err = ringbuf.NewReader(s.objs.Events)
	if err != nil {
		s.closeKernel()
		return nil, fmt.Errorf("%w: read ring buffer: %w", ErrUnavailable, err)
	}
	s.boot, err = BootTime()
	if err != nil {
		s.rd.Close()
		s.closeKernel()
		return nil, err
	}
	go s.read()
	return s, nil
}

// exitHasGroupDead reports whether the kernel's sched_process_exit
// tracepoint passes group_dead (Linux 6.16 and later): its BTF typedef is
// void (*)(void *, struct task_struct *, bool).
func exitHasGroupDead() bool {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return false // Load fails later, and says why
	}
	var td *btf.Typedef
	if err := spec.TypeByName("btf_trace_sched_process_exit", &td); err != nil {
		return false
	}
	ptr, ok := td.Type.(*btf.Pointer)
	if !ok {
		return false
	}
	fp, ok := ptr.Target.(*btf.FuncProto)
	return ok && len(fp.Params) == 3
}

// checkCaps says plainly what is missing when the process cannot load
// tracing programs at all, rather than leaving it to the first failing
// bpf(2) call.
func checkCaps() error {
	const capSysAdmin, capPerfmon, capBPF = 21, 38, 39
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("%w: read capabilities: %w", ErrUnavailable, err)
	}
	eff := uint64(data[0].Effective) | uint64(data[1].Effective)<<32
	has := func(c uint) bool { return eff&(1<<c) != 0 }
	if !has(capSysAdmin) && !(has(capBPF) && has(capPerfmon)) {
		return fmt.Errorf("%w: needs CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN); effective set is %#x", ErrUnavailable, eff)
	}
	return nil
}

// BootTime is the wall clock time at which CLOCK_BOOTTIME was zero, the
// clock the BPF programs stamp records with: an event's Time is BootTime
// plus its kernel stamp.
func BootTime() (time.Time, error) {
	var ts unix.Timespec
	now := time.Now()
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return time.Time{}, fmt.Errorf("read boot clock: %w", err)
	}
	return now.Add(-time.Duration(ts.Nano())), nil
}

func (s *Sensor) closeKernel() {
	for _, l := range s.links {
		l.Close()
	}
	s.objs.close()
}

// read moves records from the ring buffer to the events channel until
// Close. When the channel is full it waits; the kernel then drops (and
// counts) what does not fit in the ring, and no instance ever waits. It
// is woken by the kernel when the ring fills past its threshold, and by
// its own deadline every PollInterval otherwise.
func (s *Sensor) read() {
	defer close(s.done)
	defer close(s.events)
	var rec ringbuf.Record
	s.rd.SetDeadline(time.Now().Add(s.poll))
	for {
		if err := s.rd.ReadInto(&rec); err != nil {
			switch {
			case errors.Is(err, os.ErrDeadlineExceeded):
				// The ring is drained; look again in one interval.
				s.rd.SetDeadline(time.Now().Add(s.poll))
				continue
			case errors.Is(err, ringbuf.ErrClosed), errors.Is(err, os.ErrClosed):
				return
			}
			s.log.Warn("read ring buffer", logKeyErr, err)
			continue
		}
		ev, err := decode(rec.RawSample, s.boot)
		if err != nil {
			s.malformed.Add(1)
			s.log.Warn("drop record", logKeyErr, err)
			continue
		}
		select {
		case s.events <- ev:
		case <-s.stop:
			return
		}
	}
}

// Events returns the channel of decoded events, in the order the kernel
// wrote them. It is closed by [Sensor.Close]. Read it promptly: while it is
// full, the kernel drops new records and counts them ([Sensor.Dropped]).
func (s *Sensor) Events() <-chan Event { return s.events }

// Watch starts reporting the tasks of the cgroup v2 directory whose id is
// cgroupID (see [CgroupID]); its events carry that id, which is how their
// consumer knows whose they are. Watching an already watched cgroup keeps
// its first flags. Call it before the instance's first process enters the
// cgroup.
//
// It returns ErrWatchFull (wrapped) when Options.MaxWatched cgroups are
// watched, and ErrClosed after Close.
func (s *Sensor) Watch(cgroupID uint64, flags WatchFlags) error {
	if cgroupID == 0 {
		return fmt.Errorf("watch cgroup: id 0")
	}
	s.life.RLock()
	defer s.life.RUnlock()
	if s.closed {
		return ErrClosed
	}
	err := s.objs.Watched.Update(cgroupID, sensorWatch{Flags: uint32(flags)}, ebpf.UpdateNoExist)
	switch {
	case err == nil, errors.Is(err, ebpf.ErrKeyExist):
		return nil
	case errors.Is(err, unix.E2BIG):
		err = ErrWatchFull
	}
	return fmt.Errorf("watch cgroup %d: %w", cgroupID, err)
}

// Unwatch stops reporting the cgroup. Records already in the ring buffer
// still arrive.
//
// It returns ErrNotWatched (wrapped) for a cgroup not watched, and
// ErrClosed after Close.
func (s *Sensor) Unwatch(cgroupID uint64) error {
	s.life.RLock()
	defer s.life.RUnlock()
	if s.closed {
		return ErrClosed
	}
	if err := s.objs.Watched.Delete(cgroupID); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			err = ErrNotWatched
		}
		return fmt.Errorf("unwatch cgroup %d: %w", cgroupID, err)
	}
	return nil
}

// Dropped returns the number of records the kernel could not put in the
// ring buffer since Load, all cgroups together.
func (s *Sensor) Dropped() uint64 {
	s.life.RLock()
	defer s.life.RUnlock()
	if s.closed {
		return 0
	}
	var perCPU []uint64
	if err := s.objs.Drops.Lookup(uint32(0), &perCPU); err != nil {
		s.log.Warn("read drop counter", logKeyErr, err)
		return 0
	}
	var n uint64
	for _, v := range perCPU {
		n += v
	}
	return n
}

// DroppedFor returns the number of records of one watched cgroup the
// kernel could not put in the ring buffer: its record is incomplete when
// this is not zero. It returns ErrNotWatched (wrapped) for a cgroup not
// watched.
func (s *Sensor) DroppedFor(cgroupID uint64) (uint64, error) {
	v, err := s.entry(cgroupID, "drops")
	return v.Dropped, err
}

// entry reads the watched map's entry of a cgroup; what names the
// counter asked for, in errors.
func (s *Sensor) entry(cgroupID uint64, what string) (sensorWatch, error) {
	s.life.RLock()
	defer s.life.RUnlock()
	if s.closed {
		return sensorWatch{}, ErrClosed
	}
	var v sensorWatch
	if err := s.objs.Watched.Lookup(cgroupID, &v); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			err = ErrNotWatched
		}
		return sensorWatch{}, fmt.Errorf("%s of cgroup %d: %w", what, cgroupID, err)
	}
	return v, nil
}

// RefusalsFor returns the number of calls of a watched cgroup's processes
// that a wall of the sandbox refused: syscalls the seccomp filter refused,
// execs refused with EPERM (the exec supervisor), connects and sends
// refused with EPERM or EACCES (egress hooks, Landlock). The kernel counts
// them at the call, so the count is exact the moment the call returns,
// before the events are read. It returns ErrNotWatched (wrapped) for a
// cgroup not watched.
func (s *Sensor) RefusalsFor(cgroupID uint64) (uint64, error) {
	v, err := s.entry(cgroupID, "refusals")
	return uint64(v.Refusals), err
}

// Malformed returns the number of records that could not be decoded (a
// mismatch between the BPF object and the decoder; never expected).
func (s *Sensor) Malformed() uint64 { return s.malformed.Load() }

// Close detaches the programs, stops the reader, closes the Events channel
// and frees the kernel objects. Records still in the ring are discarded.
func (s *Sensor) Close() error {
	s.life.Lock()
	defer s.life.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	for _, l := range s.links {
		l.Close()
	}
	s.links = nil
	close(s.stop)
	s.rd.Close()
	<-s.done
	s.objs.close()
	return nil
}

// watch.flags (bpf/sensor.c)
const watchKillEscapes = 1

// setEscapes marks the named syscalls in the escapes map.
func (s *Sensor) setEscapes(names []string) error {
	return markSyscalls(s.objs.Escapes, "Escapes", names)
}

// setUntraced marks in the untraced map the syscalls of allowed that the
// sensor does not report.
func (s *Sensor) setUntraced(allowed []string) error {
	var names []string
	for _, n := range allowed {
		if !slices.Contains(reportedSyscalls, n) {
			names = append(names, n)
		}
	}
	return markSyscalls(s.objs.Untraced, "SeccompAllowed", names)
}

// markSyscalls sets m[nr] to 1 for each named syscall of this
// architecture; option names the Options field, for errors.
func markSyscalls(m *ebpf.Map, option string, names []string) error {
	info, err := arch.GetInfo("")
	if err != nil {
		return fmt.Errorf("sensor: %w", err)
	}
	for _, n := range names {
		nr, ok := info.SyscallNames[n]
		if !ok {
			if knownSyscall(n) {
				continue // not on this architecture
			}
			return fmt.Errorf("sensor options: %s: unknown syscall %q", option, n)
		}
		if nr < 0 || nr >= maxSyscallNr {
			return fmt.Errorf("sensor options: %s: syscall %q number %d out of range", option, n, nr)
		}
		if err := m.Update(uint32(nr), uint8(1), ebpf.UpdateAny); err != nil {
			return fmt.Errorf("%w: %s: mark syscall %s: %w", ErrUnavailable, option, n, err)
		}
	}
	return nil
}

// reportedSyscalls are the syscalls whose calls the sensor reports: the
// cases of stash in bpf/sensor.c (a test checks the two agree). They are
// traced whatever the seccomp filter allows.
var reportedSyscalls = []string{
	"open", "creat", "openat", "openat2",
	"unlink", "unlinkat", "rmdir", "rename", "renameat", "renameat2",
	"chmod", "fchmodat", "fchmodat2", "fchmod",
	"mkdir", "mkdirat", "link", "linkat", "symlink", "symlinkat", "truncate", "ftruncate", "utimensat",
	"mknod", "mknodat", "chown", "fchown", "lchown", "fchownat", "prctl",
	"execve", "execveat",
	"connect", "bind", "listen", "accept", "accept4", "sendto", "sendmsg", "sendmmsg",
	"setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "capset",
	"clone", "fork", "vfork",
}

// maxSyscallNr bounds the escapes map (MAX_SYSCALL_NR in bpf/sensor.c).
const maxSyscallNr = 1024

// knownSyscall reports whether any architecture moat is built for has a
// syscall of that name.
func knownSyscall(name string) bool {
	for _, a := range []*arch.Info{arch.X86_64, arch.AARCH64} {
		if _, ok := a.SyscallNames[name]; ok {
			return true
		}
	}
	return false
}
