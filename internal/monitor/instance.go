package monitor

import (
	"encoding/json"
	"slices"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sys/unix"

	"moat.dev/moat/internal/detect"
	"moat.dev/moat/internal/rules"
	"moat.dev/moat/internal/sensor"
)

// instance is the monitor's view of one sandbox instance.
type instance struct {
	id          string
	info        detect.InstanceInfo
	cgroup      uint64
	bootstrap   string // the exec that starts the function; events before it are the init's
	started     bool   // the bootstrap has been exec'd
	retired     bool   // the dispatcher was told to retire it (End or SetRetire's function)
	execRefused bool   // its exec supervisor refused an exec
	invoked     bool   // an invocation has begun

	pids  map[int]string // host pid → executable, from exec events
	spans []*span        // invocations whose records are not written yet, oldest first
	// pending holds init and idle events until the next invocation's
	// record (or the instance record) takes them.
	pending        []detect.Event
	pendingOmitted int
	rules          *rules.State
	engine         *rules.Engine
	dropped        uint64 // the sensor's per-cgroup drop count at the last record
	finished       bool
}

// span is one invocation on an instance.
type span struct {
	requestID  string
	begin, end time.Time // end is zero while it runs
	first      bool
	rec        *Record
	written    bool
}

const maxPids = 4096

// run handles the sensor's events until the monitor closes.
func (m *Monitor) run() {
	events := m.src.Events()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return
			}
			m.handle(&ev)
		case <-m.ctx.Done():
			return
		}
	}
}

// handle attributes one event and passes it to records, rules and
// profiles.
func (m *Monitor) handle(sev *sensor.Event) { m.handleEvent(sev, false) }

// handleEvent is handle; supervised marks an event of the exec supervisor,
// which comes after the instance's start even when the sensor has not yet
// delivered the bootstrap's exec.
func (m *Monitor) handleEvent(sev *sensor.Event, supervised bool) {
	m.events.Add(1)
	m.metrics.event(sev.Kind.String())
	m.mu.Lock()
	in := m.byCgroup[sev.CgroupID]
	if in == nil {
		m.mu.Unlock()
		m.unknown.Add(1)
		return
	}
	if !in.started && !supervised {
		// The instance's init runs before the function; its own exec of
		// the bootstrap is the first event of the function.
		if sev.Kind != sensor.KindExec || sev.Path != in.bootstrap || sev.Result < 0 {
			m.mu.Unlock()
			return
		}
		in.started = true
	}
	a := detect.Attribution{
		Function: in.info.Function,
		Version:  in.info.Version,
		Instance: in.id,
		Runtime:  in.info.Runtime,
		Exe:      in.pids[sev.PID],
	}
	// The span that holds the event's time, or the first span that began
	// after it: the event happened before that invocation (in the init
	// or idle phase) and reached the monitor after it began, so it goes
	// with that invocation's record.
	var sp, before *span
	for _, s := range in.spans {
		if s.written || (!s.end.IsZero() && sev.Time.After(s.end)) {
			continue
		}
		if sev.Time.Before(s.begin) {
			before = s
		} else {
			sp = s
		}
		break
	}
	switch {
	case sp != nil:
		a.Phase, a.RequestID = detect.PhaseInvoke, sp.requestID
	case before != nil && before.first:
		a.Phase = detect.PhaseInit
	case in.invoked || before != nil:
		a.Phase = detect.PhaseIdle
	default:
		a.Phase = detect.PhaseInit
	}
	ev := fromSensor(sev, a)
	switch sev.Kind {
	case sensor.KindExec:
		if sev.Result >= 0 {
			if len(in.pids) < maxPids {
				in.pids[sev.PID] = sev.Path
			}
		}
	case sensor.KindExit:
		delete(in.pids, sev.PID)
	}
	retire := in.info.Recycle && !in.retired && refusal(sev)
	if retire {
		in.retired = true
	}
	if sp != nil {
		sp.rec.add1(ev, m.opts.MaxRecordEvents)
	} else if before != nil {
		before.rec.add1(ev, m.opts.MaxRecordEvents)
	} else if len(in.pending) < m.opts.MaxRecordEvents {
		in.pending = append(in.pending, ev)
	} else {
		in.pendingOmitted++
	}
	eng := m.engine.Load()
	if in.engine != eng {
		in.engine, in.rules = eng, eng.NewState()
	}
	found := eng.Eval(in.rules, &ev)
	m.mu.Unlock()

	if f := m.retire.Load(); retire && f != nil {
		go (*f)(in.id)
	}
	found = append(found, m.opts.Profiles.Judge(&ev)...)
	if sp == nil {
		sp = before
	}
	for i := range found {
		m.raise(in, sp, &found[i])
	}
}

// raise publishes an alert and notes it in the record of its request.
func (m *Monitor) raise(in *instance, sp *span, a *detect.Alert) {
	a.ID = uuid.NewString()
	if a.Time.IsZero() {
		a.Time = time.Now()
	}
	if sp != nil {
		m.mu.Lock()
		sp.rec.Alerts = append(sp.rec.Alerts, AlertRef{ID: a.ID, Rule: a.Rule, Severity: a.Severity, Summary: a.Summary})
		m.mu.Unlock()
	}
	m.metrics.alert(a)
	m.alerts.Add(1)
	m.publishAlert(a)
}

func (m *Monitor) publishAlert(a *detect.Alert) {
	b, err := json.Marshal(a)
	if err != nil {
		m.alertErrs.Add(1)
		return
	}
	subject := m.opts.AlertSubject + "." + subjectToken(a.Function)
	f, err := m.opts.JS.PublishAsync(subject, b, jetstream.WithMsgID(a.ID))
	if err != nil {
		m.alertErrs.Add(1)
		m.log.Error("publish alert", "rule", a.Rule, "function", a.Function, "err", err)
		return
	}
	m.awaitAck(f, &m.alertErrs, "alert", a.ID)
}

// finishSpan writes the record of an ended invocation.
func (m *Monitor) finishSpan(in *instance, sp *span) {
	m.mu.Lock()
	if sp.written {
		m.mu.Unlock()
		return
	}
	sp.written = true
	for i, s := range in.spans {
		if s == sp {
			if i == 0 {
				// The oldest, as a rule: drop it without moving the
				// rest.
				in.spans[0] = nil
				in.spans = in.spans[1:]
			} else {
				in.spans = slices.Delete(in.spans, i, i+1)
			}
			break
		}
	}
	rec := sp.rec
	rec.End = sp.end
	// Events of the phase before an invocation may reach the monitor
	// after it began: keep the record in kernel time order.
	slices.SortStableFunc(rec.Events, func(a, b detect.Event) int { return a.Time.Compare(b.Time) })
	if d := m.droppedSince(in, rec.End); d > 0 {
		rec.SensorDropped = d
	}
	m.mu.Unlock()
	if rec.SensorDropped > 0 {
		m.raise(in, nil, droppedAlert(rec))
	}
	m.writeRecord(rec)
	// The invocation counts toward its profile's learning window only now
	// that its events have all been learned from.
	m.opts.Profiles.Invoked(in.info.Function, in.info.Version)
}

// finishInstance writes whatever an ended instance still holds: records
// of invocations not yet written and its last idle events.
func (m *Monitor) finishInstance(in *instance) {
	m.mu.Lock()
	if in.finished {
		m.mu.Unlock()
		return
	}
	in.finished = true
	spans := append([]*span(nil), in.spans...)
	m.mu.Unlock()
	for _, sp := range spans {
		m.mu.Lock()
		if sp.end.IsZero() {
			sp.end = m.now()
		}
		m.mu.Unlock()
		m.finishSpan(in, sp)
	}
	m.mu.Lock()
	var rec *Record
	if len(in.pending) > 0 || in.pendingOmitted > 0 {
		rec = m.newRecord(in, "", time.Time{})
		rec.Start = in.pending[0].Time
		rec.add(in.pending, m.opts.MaxRecordEvents)
		rec.Omitted += in.pendingOmitted
		rec.End = m.now()
		in.pending = nil
	}
	delete(m.instances, in.id)
	if in.cgroup != 0 {
		delete(m.byCgroup, in.cgroup)
	}
	m.mu.Unlock()
	if in.cgroup != 0 && m.src != nil {
		_ = m.src.Unwatch(in.cgroup)
	}
	if rec != nil {
		m.writeRecord(rec)
	}
}

// droppedSince returns how many events the sensor dropped for the
// instance since its last record, whose invocation ended at end. Called
// with mu held.
//
// Drops are rare, and a lookup of the instance's counter is a system call
// per record: while the sensor's node-wide counter, read after end, is
// still zero, nothing of this record can have been dropped, and one read
// of that counter answers for every record that ended before it.
func (m *Monitor) droppedSince(in *instance, end time.Time) uint64 {
	if in.cgroup == 0 || m.src == nil {
		return 0
	}
	if !end.IsZero() && end.UnixNano() < m.noDropsAt.Load() {
		return 0
	}
	if at := m.now(); m.src.Dropped() == 0 {
		m.noDropsAt.Store(at.UnixNano())
		return 0
	}
	n, err := m.src.DroppedFor(in.cgroup)
	if err != nil || n <= in.dropped {
		return 0
	}
	d := n - in.dropped
	in.dropped = n
	return d
}

func droppedAlert(rec *Record) *detect.Alert {
	return &detect.Alert{
		Time:      rec.End,
		Source:    detect.SourceSensor,
		Rule:      "sensor.dropped",
		Severity:  detect.SeverityMedium,
		Summary:   "the sensor dropped events of this instance; its record is incomplete",
		Function:  rec.Function,
		Version:   rec.Version,
		Instance:  rec.Instance,
		RequestID: rec.RequestID,
		Evidence:  []detect.Event{},
	}
}

// writeRecord stores a record. A quiet one (no event, alert, omission or
// drop: a warm invocation that did nothing the sensor reports) is not
// stored — a message per invocation would cost more than the rest of the
// monitor together — but remembered on this node, so that trace can still
// say that the request ran and did nothing.
func (m *Monitor) writeRecord(rec *Record) {
	if len(rec.Events) == 0 && len(rec.Alerts) == 0 && rec.Omitted == 0 && rec.SensorDropped == 0 && rec.RequestID != "" {
		m.quiet.remember(rec)
		m.quietCount.Add(1)
		return
	}
	b, err := rec.encode(maxRecordBytes)
	if err != nil {
		m.recordErrs.Add(1)
		m.log.Error("encode record", "request_id", rec.RequestID, "err", err)
		return
	}
	m.omitted.Add(uint64(rec.Omitted))
	f, err := m.opts.JS.PublishAsync(m.opts.TraceSubject+"."+rec.key(), b)
	if err != nil {
		m.recordErrs.Add(1)
		m.log.Error("store record", "request_id", rec.RequestID, "instance", rec.Instance, "err", err)
		return
	}
	m.records.Add(1)
	m.awaitAck(f, &m.recordErrs, "record", rec.key())
}

// ack is a publish whose answer from the store is still to come.
type ack struct {
	f    jetstream.PubAckFuture
	errs *atomic.Uint64
	what string
	key  string
}

// awaitAck hands a publish to the acker, which counts and logs refusals.
func (m *Monitor) awaitAck(f jetstream.PubAckFuture, errs *atomic.Uint64, what, key string) {
	select {
	case m.acks <- ack{f, errs, what, key}:
	case <-m.ctx.Done():
	}
}

// acker waits for the store's answer to each publish, in order.
func (m *Monitor) acker() {
	for {
		select {
		case a := <-m.acks:
			select {
			case <-a.f.Ok():
			case err := <-a.f.Err():
				a.errs.Add(1)
				m.log.Error("store "+a.what, "key", a.key, "err", err)
			case <-m.ctx.Done():
				return
			}
		case <-m.ctx.Done():
			return
		}
	}
}

// refusal reports whether an event is a wall refusing the instance
// something: a syscall the seccomp filter refused, an exec the exec
// supervisor refused (EPERM; an EACCES exec may be a plain file without
// execute permission), a connection or datagram the egress hooks (EPERM)
// or Landlock's port rules (EACCES) refused.
func refusal(ev *sensor.Event) bool {
	switch ev.Kind {
	case sensor.KindDenied:
		return true
	case sensor.KindExec:
		return ev.Errno == int(unix.EPERM)
	case sensor.KindConnect, sensor.KindSendto:
		return ev.Errno == int(unix.EPERM) || ev.Errno == int(unix.EACCES)
	}
	return false
}
