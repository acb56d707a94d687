package monitor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sys/unix"

	"moat.dev/moat/internal/detect"
	"moat.dev/moat/internal/rules"
	"moat.dev/moat/internal/sensor"
)

// Source is the runtime sensor as the monitor uses it; *sensor.Sensor
// implements it.
type Source interface {
	Events() <-chan sensor.Event
	Watch(cgroupID uint64, flags sensor.WatchFlags) error
	Unwatch(cgroupID uint64) error
	Dropped() uint64
	DroppedFor(cgroupID uint64) (uint64, error)
	RefusalsFor(cgroupID uint64) (uint64, error)
}

// Options configure a Monitor.
type Options struct {
	// Sensor is the loaded sensor; nil means monitoring is off on this
	// node, and SensorError says why.
	Sensor      Source
	SensorError error
	// LSMError is what probing for BPF LSM found (sensor.ProbeLSM): nil
	// when the host allows it. Reported in Status only.
	LSMError error
	// PollInterval is the sensor's: the longest an event waits in the
	// kernel before it is read. Records are written a few intervals after
	// their invocation ends. Default 25 ms.
	PollInterval time.Duration

	JS jetstream.JetStream
	// KV holds profiles and the user rules file (store.BucketMonitor).
	KV jetstream.KeyValue
	// TraceSubject and AlertSubject prefix the subjects records and
	// alerts are published on (store.SubjectTraces, store.SubjectAlerts).
	TraceSubject, AlertSubject string
	// AlertStream and TraceStream are the streams' names, for readers.
	AlertStream, TraceStream string

	// Profiles learns from and checks every attributed event against its
	// version's behaviour profile (*profiles.Store); required.
	Profiles Profiles
	// MaxRecordEvents bounds the events kept in one record (default
	// 4096); the rest are counted by kind.
	MaxRecordEvents int
	Logger          *slog.Logger
}

// Profiles is the profile service the monitor feeds: it learns from or
// checks each event, counts invocations toward learning windows, and is
// told of instances ahead of their events.
type Profiles interface {
	Prepare(ctx context.Context, function, version string) error
	Judge(ev *detect.Event) []detect.Alert
	Invoked(function, version string)
	Errors() uint64
}

// Status is the monitor's part of `moat status`.
type Status struct {
	Monitoring string `json:"monitoring"` // "on" or "off"
	Reason     string `json:"reason,omitempty"`
	// BPFLSM says whether the host lets moat load BPF LSM programs:
	// "unavailable: REASON", or "available (unused)": moat's walls do not
	// depend on it, and no LSM backend is built yet.
	BPFLSM string `json:"bpfLSM,omitempty"`
	Counters
}

// Counters are the monitor's running totals.
type Counters struct {
	Events           uint64 `json:"events"`
	SensorDropped    uint64 `json:"sensorDropped"`
	UnknownCgroup    uint64 `json:"unknownCgroupEvents"`
	RecordsWritten   uint64 `json:"recordsWritten"`
	QuietInvocations uint64 `json:"quietInvocations"` // records not stored: nothing happened
	RecordErrors     uint64 `json:"recordErrors"`
	EventsOmitted    uint64 `json:"eventsOmitted"`
	Alerts           uint64 `json:"alerts"`
	AlertErrors      uint64 `json:"alertErrors"`
	RuleEvalErrors   uint64 `json:"ruleEvalErrors"`
	ProfileErrors    uint64 `json:"profileErrors"`
	WatchedInstances int    `json:"watchedInstances"`
}

// Monitor attributes, records and judges the events of a node's
// instances. Its methods are safe for concurrent use.
//
// Locking: mu guards instances and byCgroup; each instance's fields are
// guarded by mu as well (events are handled by one goroutine, so the
// lock is rarely contended). The profile service is called without mu.
type Monitor struct {
	opts Options
	log  *slog.Logger
	src  Source
	boot time.Time // wall time of CLOCK_BOOTTIME zero, as the sensor stamps events

	mu        sync.Mutex
	instances map[string]*instance // by instance id
	byCgroup  map[uint64]*instance

	engine  atomic.Pointer[rules.Engine]
	retire  atomic.Pointer[func(string)] // SetRetire
	metrics *metrics

	quiet quietRing

	bootSync atomic.Pointer[clockSync] // see now

	// noDropsAt is when (on the sensor's clock, Unix ns) the sensor's
	// node-wide drop counter was last read as zero (see droppedSince).
	noDropsAt atomic.Int64

	events, unknown, records, recordErrs, omitted, quietCount atomic.Uint64
	alerts, alertErrs                                         atomic.Uint64

	// queue holds records waiting for their last events (see after).
	qmu   sync.Mutex
	queue []pendingWork
	qwake chan struct{}
	acks  chan ack

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New starts a Monitor. With no sensor it still serves stored records,
// alerts, profiles and rules, and reports monitoring off.
func New(ctx context.Context, opts Options) (*Monitor, error) {
	if opts.JS == nil || opts.KV == nil || opts.Profiles == nil {
		return nil, errors.New("monitor: JetStream, its KV bucket and the profile service are required")
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 25 * time.Millisecond
	}
	if opts.MaxRecordEvents <= 0 {
		opts.MaxRecordEvents = 4096
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	boot, err := sensor.BootTime()
	if err != nil {
		return nil, err
	}
	mctx, cancel := context.WithCancel(context.Background())
	m := &Monitor{
		opts:      opts,
		log:       opts.Logger,
		src:       opts.Sensor,
		boot:      boot,
		instances: map[string]*instance{},
		byCgroup:  map[uint64]*instance{},
		ctx:       mctx,
		cancel:    cancel,
		qwake:     make(chan struct{}, 1),
		acks:      make(chan ack, 4096),
	}
	m.metrics = newMetrics(m)
	eng, err := m.loadRules(ctx)
	if err != nil {
		// A stored rules file that no longer compiles must not stop the
		// node: run the built-ins and say so.
		m.log.Error("stored detection rules are invalid; running built-in rules only", "err", err)
		eng, err = rules.New(nil)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("monitor: built-in rules: %w", err)
		}
	}
	m.engine.Store(eng)
	m.wg.Add(2)
	go func() { defer m.wg.Done(); m.acker() }()
	go func() { defer m.wg.Done(); m.watchRules() }()
	if m.src != nil {
		m.wg.Add(2)
		go func() { defer m.wg.Done(); m.run() }()
		go func() { defer m.wg.Done(); m.flusher() }()
	}
	return m, nil
}

// Enabled reports whether events are being collected.
func (m *Monitor) Enabled() bool { return m.src != nil }

// Status reports whether monitoring is on and the running totals.
func (m *Monitor) Status() Status {
	st := Status{Monitoring: "on", Counters: m.counters()}
	if m.src != nil {
		st.BPFLSM = "available (unused)"
		if m.opts.LSMError != nil {
			st.BPFLSM = "unavailable: " + m.opts.LSMError.Error()
		}
	}
	if m.src == nil {
		st.Monitoring = "off"
		if m.opts.SensorError != nil {
			st.Reason = m.opts.SensorError.Error()
		}
	}
	return st
}

func (m *Monitor) counters() Counters {
	c := Counters{
		Events:           m.events.Load(),
		UnknownCgroup:    m.unknown.Load(),
		RecordsWritten:   m.records.Load(),
		QuietInvocations: m.quietCount.Load(),
		RecordErrors:     m.recordErrs.Load(),
		EventsOmitted:    m.omitted.Load(),
		Alerts:           m.alerts.Load(),
		AlertErrors:      m.alertErrs.Load(),
		ProfileErrors:    m.opts.Profiles.Errors(),
	}
	if e := m.engine.Load(); e != nil {
		c.RuleEvalErrors = e.EvalErrors()
	}
	if m.src != nil {
		c.SensorDropped = m.src.Dropped()
	}
	m.mu.Lock()
	c.WatchedInstances = len(m.byCgroup)
	m.mu.Unlock()
	return c
}

// Close stops the monitor: pending records are written first, at most
// until ctx ends.
func (m *Monitor) Close(ctx context.Context) error {
	m.mu.Lock()
	var pending []*instance
	for _, in := range m.instances {
		pending = append(pending, in)
	}
	m.mu.Unlock()
	for _, in := range pending {
		m.finishInstance(in)
	}
	// Records and alerts published asynchronously reach the store first.
	select {
	case <-m.opts.JS.PublishAsyncComplete():
	case <-ctx.Done():
	}
	m.cancel()
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Observe starts watching an instance's cgroup; the sandbox calls it when
// the instance is claimed, before its first process starts, with who it
// runs for. bootstrap is the path the instance's init will exec: events
// before that exec are the init's own. An instance with no function (a
// probe) is still watched, so nothing runs unobserved, but attributed to
// no function. An error means the instance would run unobserved, and the
// sandbox refuses to start it.
func (m *Monitor) Observe(id string, info detect.InstanceInfo, cgroupID uint64, bootstrap string) error {
	if m.src == nil {
		return nil
	}
	if info.Function != "" {
		if runtimeIsShell(info.Bootstrap) {
			info.Runtime = "shell"
		}
		// Load (or start) the version's profile now, off the event path.
		if err := m.opts.Profiles.Prepare(m.ctx, info.Function, info.Version); err != nil {
			m.log.Warn("load profile", "function", info.Function, "version", info.Version, "err", err)
		}
	}
	in := &instance{id: id, info: info, pids: map[int]string{}, cgroup: cgroupID, bootstrap: bootstrap}
	m.mu.Lock()
	m.instances[id] = in
	m.byCgroup[cgroupID] = in
	m.mu.Unlock()
	var flags sensor.WatchFlags
	if info.Recycle {
		flags |= sensor.KillEscapes
	}
	if err := m.src.Watch(cgroupID, flags); err != nil {
		m.mu.Lock()
		delete(m.byCgroup, cgroupID)
		delete(m.instances, id)
		m.mu.Unlock()
		return fmt.Errorf("watch instance %s: %w", id, err)
	}
	return nil
}

// Forget ends the watch of an instance whose processes are all gone. Its
// remaining events are collected for a few poll intervals, then its last
// records are written.
func (m *Monitor) Forget(id string) {
	if m.src == nil {
		return
	}
	m.mu.Lock()
	in := m.instances[id]
	m.mu.Unlock()
	if in == nil {
		return
	}
	m.after(m.flushDelay(), func() { m.finishInstance(in) })
}

// Begin marks the start of an invocation on an instance.
func (m *Monitor) Begin(id, requestID, source string) {
	if m.src == nil {
		return
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	in := m.instances[id]
	if in == nil {
		return
	}
	sp := &span{requestID: requestID, begin: now, rec: m.newRecord(in, requestID, now)}
	sp.rec.Source = source
	// Init and idle events waiting for a record go with this one.
	sp.rec.add(in.pending, m.opts.MaxRecordEvents)
	in.pending = nil
	sp.rec.Omitted += in.pendingOmitted
	in.pendingOmitted = 0
	if len(in.spans) == 0 && !in.invoked {
		sp.first = true
	}
	in.invoked = true
	in.spans = append(in.spans, sp)
}

// End marks the end of an invocation; its record is written once the
// sensor has delivered its last events.
//
// For an instance of a function with Recycle set, End also answers
// whether it must not be reused: a wall refused it something (Refused,
// exact at this point). Refusals later, while it is idle, retire it
// through SetRetire's function. The monitor alone decides recycling.
func (m *Monitor) End(id, requestID string) (retire bool) {
	if m.src == nil {
		return false
	}
	now := m.now()
	m.mu.Lock()
	in := m.instances[id]
	var sp *span
	if in != nil {
		// The newest span is the one ending (an instance runs one
		// invocation at a time); ended ones wait behind it for their
		// last events.
		for i := len(in.spans) - 1; i >= 0; i-- {
			if s := in.spans[i]; s.requestID == requestID && s.end.IsZero() {
				sp = s
				break
			}
		}
	}
	if sp != nil {
		sp.end = now
	}
	recycle := in != nil && in.info.Recycle
	m.mu.Unlock()
	if sp != nil {
		m.after(m.flushDelay(), func() { m.finishSpan(in, sp) })
	}
	if recycle && m.Refused(id) {
		m.mu.Lock()
		in.retired = true // told here; not again from the event path
		m.mu.Unlock()
		return true
	}
	return false
}

// SetRetire gives the function to call (once per instance, off the event
// path) for an instance of a function with Recycle set that a wall refused
// something while no invocation was ending: the dispatcher's Retire,
// which destroys it instead of reusing it. Set it before instances start.
func (m *Monitor) SetRetire(fn func(instanceID string)) { m.retire.Store(&fn) }

// flushDelay is how long after an invocation ends its record waits for
// late events: a few of the sensor's poll intervals.
func (m *Monitor) flushDelay() time.Duration { return 4*m.opts.PollInterval + 50*time.Millisecond }

// pendingWork is a record to write once the sensor has had time to
// deliver its last events.
type pendingWork struct {
	due time.Time
	fn  func()
}

// after queues fn to run after d. Every delay is the same (flushDelay), so
// the queue stays in time order and one goroutine (flusher) serves it,
// whatever the invocation rate; what is still queued when the monitor
// closes is written by Close itself. The flusher is woken only when the
// queue was empty: otherwise it already sleeps until the head is due,
// which is no later than this item.
func (m *Monitor) after(d time.Duration, fn func()) {
	m.qmu.Lock()
	wake := len(m.queue) == 0
	m.queue = append(m.queue, pendingWork{due: time.Now().Add(d), fn: fn})
	m.qmu.Unlock()
	if wake {
		select {
		case m.qwake <- struct{}{}:
		default:
		}
	}
}

// flusher runs queued work when it is due, in batches: after a batch it
// sleeps at least one poll interval, so that a steady stream of
// invocations costs one wakeup per interval instead of one per record
// (records are written up to an interval later). Events still queued in
// the sensor's channel may belong to a record: it waits for the reader to
// catch up first, a bounded number of poll intervals.
func (m *Monitor) flusher() {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	var rested time.Time // the earliest the next batch may run
	for {
		m.qmu.Lock()
		var next time.Time
		if len(m.queue) > 0 {
			next = m.queue[0].due
		}
		m.qmu.Unlock()
		wait := time.Hour
		if !next.IsZero() {
			if next.Before(rested) {
				next = rested
			}
			wait = time.Until(next)
		}
		if wait > 0 {
			t.Reset(wait)
			select {
			case <-t.C:
			case <-m.qwake:
				t.Stop() // no stale tick after Stop or Reset (Go 1.23 timers)
				continue
			case <-m.ctx.Done():
				return
			}
		}
		for i := 0; i < 40 && m.backlog() > 0; i++ {
			select {
			case <-time.After(m.opts.PollInterval):
			case <-m.ctx.Done():
				return
			}
		}
		m.qmu.Lock()
		var due []pendingWork
		now := time.Now()
		for len(m.queue) > 0 && !m.queue[0].due.After(now) {
			due = append(due, m.queue[0])
			m.queue[0] = pendingWork{}
			m.queue = m.queue[1:]
		}
		m.qmu.Unlock()
		for _, w := range due {
			w.fn()
		}
		rested = time.Now().Add(m.opts.PollInterval)
	}
}

func (m *Monitor) backlog() int {
	if m.src == nil {
		return 0
	}
	return len(m.src.Events())
}

// now is the current time on the clock the sensor stamps events with
// (CLOCK_BOOTTIME, as a wall time from m.boot). Reading that clock is a
// system call (no vDSO for it in golang.org/x/sys), twice per invocation;
// so it is read at most once a second, and in between the time is carried
// forward on Go's monotonic clock, which runs at the same rate (the two
// differ only by time spent suspended, caught up at the next read).
func (m *Monitor) now() time.Time {
	if b := m.bootSync.Load(); b != nil {
		if d := time.Since(b.mono); d < time.Second {
			return b.boot.Add(d)
		}
	}
	var ts unix.Timespec
	mono := time.Now()
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return mono
	}
	t := m.boot.Add(time.Duration(ts.Nano()))
	m.bootSync.Store(&clockSync{mono: mono, boot: t})
	return t
}

// clockSync pairs a reading of the monotonic clock with one of the boot
// clock taken together.
type clockSync struct {
	mono time.Time // carries Go's monotonic reading
	boot time.Time
}

// runtimeIsShell reports whether the bootstrap at path is a script run by
// a shell ("#!/bin/sh", "#!/usr/bin/env bash").
func runtimeIsShell(path string) bool {
	if path == "" {
		return false
	}
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	line, err := bufio.NewReaderSize(f, 256).ReadString('\n')
	if err != nil && line == "" {
		return false
	}
	if !strings.HasPrefix(line, "#!") {
		return false
	}
	fields := strings.Fields(line[2:])
	if len(fields) == 0 {
		return false
	}
	interp := filepath.Base(fields[0])
	if interp == "env" && len(fields) > 1 {
		interp = filepath.Base(fields[1])
	}
	return detect.IsShell(interp)
}

// ExecRefused records an exec that the instance's exec supervisor refused
// in enforce mode (the caller got EPERM): path is the file the call named
// (empty if it could not be read), pid the host pid of the caller. It is
// judged like a failed exec the sensor saw, so the record shows the path
// and the approved profile raises its profile.exec alert. The sensor
// reports the refusal too, as a system call the sandbox denied.
func (m *Monitor) ExecRefused(id, path string, pid int) {
	if m.src == nil {
		return
	}
	m.mu.Lock()
	in := m.instances[id]
	m.mu.Unlock()
	if in == nil || in.cgroup == 0 {
		return
	}
	m.mu.Lock()
	in.execRefused = true
	m.mu.Unlock()
	m.handleEvent(&sensor.Event{
		Kind:     sensor.KindExec,
		Time:     m.now(),
		CgroupID: in.cgroup,
		PID:      pid,
		TID:      pid,
		Syscall:  unix.SYS_EXECVE,
		Result:   -int(unix.EPERM),
		Errno:    int(unix.EPERM),
		Path:     path,
		Dirfd:    unix.AT_FDCWD, // the supervisor made the path absolute
	}, true)
}

// Refused reports whether a wall of the sandbox refused the instance
// anything so far: a syscall, an exec, a connection (counted by the kernel
// at the call, so exact when an invocation has just ended), or an exec
// its supervisor refused.
func (m *Monitor) Refused(id string) bool {
	if m.src == nil {
		return false
	}
	m.mu.Lock()
	in := m.instances[id]
	var cg uint64
	var refused bool
	if in != nil {
		cg, refused = in.cgroup, in.execRefused
	}
	m.mu.Unlock()
	if in == nil || refused {
		return refused
	}
	n, err := m.src.RefusalsFor(cg)
	return err == nil && n > 0
}
