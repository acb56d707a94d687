package monitor

import (
	"golang.org/x/sys/unix"

	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"moat.dev/moat/internal/detect"
	"moat.dev/moat/internal/profile"
	"moat.dev/moat/internal/profiles"
	"moat.dev/moat/internal/sensor"
	"moat.dev/moat/internal/store"
	"moat.dev/moat/internal/webhook"
)

// fakeSource stands in for the kernel side of the sensor, which the node
// tests run for real: here the test decides exactly which events arrive
// and when, to pin down attribution at span edges.
type fakeSource struct {
	ch chan sensor.Event

	mu       sync.Mutex
	watched  map[uint64]sensor.WatchFlags
	dropped  map[uint64]uint64
	refusals map[uint64]uint64
}

func newFakeSource() *fakeSource {
	return &fakeSource{ch: make(chan sensor.Event, 1024), watched: map[uint64]sensor.WatchFlags{}, dropped: map[uint64]uint64{}, refusals: map[uint64]uint64{}}
}

func (f *fakeSource) Events() <-chan sensor.Event { return f.ch }
func (f *fakeSource) Watch(id uint64, k sensor.WatchFlags) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if id == 666 {
		return sensor.ErrWatchFull
	}
	f.watched[id] = k
	return nil
}
func (f *fakeSource) Unwatch(id uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.watched, id)
	return nil
}

func (f *fakeSource) RefusalsFor(id uint64) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refusals[id], nil
}

// Dropped is the node-wide count, as the sensor's: every drop of a
// cgroup is counted there too.
func (f *fakeSource) Dropped() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var n uint64
	for _, d := range f.dropped {
		n += d
	}
	return n
}
func (f *fakeSource) DroppedFor(id uint64) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dropped[id], nil
}
func (f *fakeSource) isWatched(id uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.watched[id]
	return ok
}

func newTestMonitor(t testing.TB, mutate func(*Options)) (*Monitor, *fakeSource) {
	t.Helper()
	return newTestMonitorLearning(t, profile.Window{Invocations: 1000}, mutate)
}

// newTestMonitorLearning is newTestMonitor with profiles that learn for
// the window given.
func newTestMonitorLearning(t testing.TB, learning profile.Window, mutate func(*Options)) (*Monitor, *fakeSource) {
	t.Helper()
	st, err := store.Open(context.Background(), store.Options{DataDir: t.TempDir(), IdleCollect: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	src := newFakeSource()
	opts := Options{
		Sensor:       src,
		PollInterval: 5 * time.Millisecond,
		JS:           st.JS,
		KV:           st.Monitor,
		TraceSubject: store.SubjectTraces,
		TraceStream:  store.StreamTraces,
		AlertSubject: store.SubjectAlerts,
		AlertStream:  store.StreamAlerts,
		Logger:       slog.New(slog.DiscardHandler),
	}
	ps, err := profiles.New(profiles.Options{KV: st.Monitor, Learning: learning})
	if err != nil {
		t.Fatal(err)
	}
	opts.Profiles = ps
	if mutate != nil {
		mutate(&opts)
	}
	m, err := New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = m.Close(context.Background())
		ps.Close(context.Background())
	})
	return m, src
}

// profilesOf is the profile service of a test monitor.
func profilesOf(m *Monitor) *profiles.Store { return m.opts.Profiles.(*profiles.Store) }

// emit sends an event of cgroup cg stamped now on the sensor's clock.
func (f *fakeSource) emit(m *Monitor, cg uint64, ev sensor.Event) {
	ev.CgroupID = cg
	if ev.Time.IsZero() {
		ev.Time = m.now()
	}
	if ev.PID == 0 {
		ev.PID = 4242
	}
	ev.Syscall = 257
	f.ch <- ev
}

func waitTrace(t *testing.T, m *Monitor, id string) []Record {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		recs, err := m.Trace(context.Background(), id)
		if err == nil {
			return recs
		}
		if !errors.Is(err, ErrNoRecord) || time.Now().After(deadline) {
			t.Fatalf("trace %s: %v", id, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitFor waits until cond holds: events are handled asynchronously.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func kinds(evs []detect.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Phase+":"+e.Kind+":"+e.Path)
	}
	return out
}

func TestAttribution(t *testing.T) {
	m, src := newTestMonitor(t, nil)
	const cg = 101
	if err := m.Observe("inst-1", detect.InstanceInfo{Function: "fn", Version: "3", Runtime: "provided.al2023"}, cg, "/var/task/bootstrap"); err != nil {
		t.Fatal(err)
	}
	if !src.isWatched(cg) {
		t.Fatal("Observe did not watch the cgroup")
	}
	// The init's own work before it execs the bootstrap is not the
	// function's.
	src.emit(m, cg, sensor.Event{Kind: sensor.KindOpen, Path: "/proc/self/fd", Intent: sensor.IntentRead})
	src.emit(m, cg, sensor.Event{Kind: sensor.KindExec, Path: "/var/task/bootstrap", Argv: []string{"/var/task/bootstrap"}})
	src.emit(m, cg, sensor.Event{Kind: sensor.KindOpen, Path: "/etc/hosts", Intent: sensor.IntentRead})
	waitFor(t, "init events", func() bool { return m.events.Load() == 3 })

	m.Begin("inst-1", "req-1", "")
	src.emit(m, cg, sensor.Event{Kind: sensor.KindOpen, Path: "/tmp/a", Flags: 0o101, Intent: sensor.IntentWrite | sensor.IntentCreate})
	src.emit(m, cg, sensor.Event{Kind: sensor.KindConnect, Family: 2, Addr: netip.MustParseAddrPort("198.18.0.9:443"), Result: -1, Errno: 1})
	waitFor(t, "invoke events", func() bool { return m.events.Load() == 5 })
	m.End("inst-1", "req-1")
	// Between invocations: idle, stored with the next record.
	src.emit(m, cg, sensor.Event{Kind: sensor.KindOpen, Path: "/tmp/idle", Intent: sensor.IntentRead})
	waitFor(t, "idle event", func() bool { return m.events.Load() == 6 })
	m.Begin("inst-1", "req-2", "")
	src.emit(m, cg, sensor.Event{Kind: sensor.KindOpen, Path: "/tmp/b", Intent: sensor.IntentRead})
	waitFor(t, "second invocation", func() bool { return m.events.Load() == 7 })
	m.End("inst-1", "req-2")

	r1 := waitTrace(t, m, "req-1")
	if len(r1) != 1 {
		t.Fatalf("req-1 has %d records", len(r1))
	}
	got := kinds(r1[0].Events)
	want := []string{"init:exec:/var/task/bootstrap", "init:open:/etc/hosts", "invoke:open:/tmp/a", "invoke:connect:"}
	if len(got) != len(want) {
		t.Fatalf("req-1 events = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("req-1 event %d = %s, want %s", i, got[i], want[i])
		}
	}
	rec := r1[0]
	if rec.Function != "fn" || rec.Version != "3" || rec.Instance != "inst-1" || rec.End.Before(rec.Start) {
		t.Errorf("record header = %+v", rec)
	}
	if e := rec.Events[2]; e.RequestID != "req-1" || e.Exe != "/var/task/bootstrap" || e.Function != "fn" {
		t.Errorf("invoke event attribution = %+v", e)
	}
	if e := rec.Events[3]; e.Family != "inet" || e.Addr != "198.18.0.9" || e.Port != 443 || e.Errno != "EPERM" {
		t.Errorf("connect event = %+v", e)
	}
	r2 := waitTrace(t, m, "req-2")
	if got := kinds(r2[0].Events); len(got) != 2 || got[0] != "idle:open:/tmp/idle" || got[1] != "invoke:open:/tmp/b" {
		t.Errorf("req-2 events = %v", got)
	}

	// The instance ends: trailing idle events go to an instance record,
	// and the cgroup is no longer watched.
	src.emit(m, cg, sensor.Event{Kind: sensor.KindOpen, Path: "/tmp/late", Intent: sensor.IntentRead})
	waitFor(t, "late event", func() bool { return m.events.Load() == 8 })
	m.Forget("inst-1")
	ri := waitTrace(t, m, "instance-inst-1")
	if got := kinds(ri[0].Events); len(got) != 1 || got[0] != "idle:open:/tmp/late" || ri[0].RequestID != "" {
		t.Errorf("instance record = %v (%q)", got, ri[0].RequestID)
	}
	waitFor(t, "unwatch", func() bool { return !src.isWatched(cg) })

	// An event from a cgroup nobody observed is counted, never attributed.
	src.emit(m, 999, sensor.Event{Kind: sensor.KindOpen, Path: "/x"})
	waitFor(t, "unknown cgroup", func() bool { return m.Status().UnknownCgroup == 1 })
}

func TestObserveRefusedWhenTheSensorCannotWatch(t *testing.T) {
	m, _ := newTestMonitor(t, nil)
	if err := m.Observe("inst-x", detect.InstanceInfo{Function: "fn", Version: "1"}, 666, "/var/task/bootstrap"); !errors.Is(err, sensor.ErrWatchFull) {
		t.Fatalf("Observe = %v, want ErrWatchFull", err)
	}
}

func TestAlertsCarryRequestAndRecordNamesThem(t *testing.T) {
	m, src := newTestMonitor(t, nil)
	const cg = 202
	if err := m.Observe("inst-2", detect.InstanceInfo{Function: "fn", Version: "$LATEST", Runtime: "provided.al2023"}, cg, "/var/task/bootstrap"); err != nil {
		t.Fatal(err)
	}
	src.emit(m, cg, sensor.Event{Kind: sensor.KindExec, Path: "/var/task/bootstrap"})
	waitFor(t, "exec", func() bool { return m.events.Load() == 1 })
	m.Begin("inst-2", "req-a", "")
	src.emit(m, cg, sensor.Event{Kind: sensor.KindOpen, Path: "/proc/self/environ", Intent: sensor.IntentRead})
	waitFor(t, "open", func() bool { return m.events.Load() == 2 })
	m.End("inst-2", "req-a")
	rec := waitTrace(t, m, "req-a")[0]
	if len(rec.Alerts) != 1 || rec.Alerts[0].Rule != "environ-read" {
		t.Fatalf("record alerts = %+v", rec.Alerts)
	}
	var got []detect.Alert
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := m.ReadAlerts(ctx, "fn", time.Time{}, false, func(a detect.Alert) error {
		got = append(got, a)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].RequestID != "req-a" || got[0].ID != rec.Alerts[0].ID || len(got[0].Evidence) == 0 {
		t.Fatalf("alerts = %+v", got)
	}
}

func TestRecordBoundsAndDrops(t *testing.T) {
	m, src := newTestMonitor(t, func(o *Options) { o.MaxRecordEvents = 3 })
	const cg = 303
	if err := m.Observe("inst-3", detect.InstanceInfo{Function: "fn", Version: "1"}, cg, "/var/task/bootstrap"); err != nil {
		t.Fatal(err)
	}
	src.emit(m, cg, sensor.Event{Kind: sensor.KindExec, Path: "/var/task/bootstrap"})
	waitFor(t, "exec", func() bool { return m.events.Load() == 1 })
	m.Begin("inst-3", "req-b", "")
	for range 5 {
		src.emit(m, cg, sensor.Event{Kind: sensor.KindOpen, Path: "/var/task/data.json", Intent: sensor.IntentRead})
	}
	waitFor(t, "opens", func() bool { return m.events.Load() == 6 })
	src.mu.Lock()
	src.dropped[cg] = 7
	src.mu.Unlock()
	m.End("inst-3", "req-b")
	rec := waitTrace(t, m, "req-b")[0]
	if len(rec.Events) != 3 || rec.Omitted != 3 || rec.OmittedKinds["open"] != 3 {
		t.Errorf("record kept %d events, omitted %d %v; want 3 kept, 3 omitted", len(rec.Events), rec.Omitted, rec.OmittedKinds)
	}
	if rec.SensorDropped != 7 {
		t.Errorf("SensorDropped = %d, want 7", rec.SensorDropped)
	}
	waitFor(t, "drop alert", func() bool {
		var found bool
		_ = m.ReadAlerts(context.Background(), "fn", time.Time{}, false, func(a detect.Alert) error {
			found = found || (a.Rule == "sensor.dropped" && a.RequestID == "req-b")
			return nil
		})
		return found
	})
}

func TestRecordEncodeBound(t *testing.T) {
	r := &Record{RequestID: "r", Events: []detect.Event{}}
	for range 2000 {
		r.add1(detect.Event{Kind: "open", Path: string(make([]byte, 200))}, 10000)
	}
	b, err := r.encode(64 << 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 64<<10 || r.Omitted == 0 || r.Omitted+len(r.Events) != 2000 {
		t.Errorf("encoded %d bytes, kept %d, omitted %d", len(b), len(r.Events), r.Omitted)
	}
}

func TestMonitoringOff(t *testing.T) {
	m, _ := newTestMonitor(t, func(o *Options) {
		o.Sensor = nil
		o.SensorError = sensor.ErrUnavailable
	})
	st := m.Status()
	if st.Monitoring != "off" || st.Reason == "" || m.Enabled() {
		t.Errorf("status = %+v", st)
	}
	// The hooks do nothing and never fail.
	if err := m.Observe("i", detect.InstanceInfo{Function: "fn"}, 1, "/x"); err != nil {
		t.Error(err)
	}
	m.Begin("i", "r", "")
	m.End("i", "r")
	m.Forget("i")
}

func TestQuietInvocationRemembered(t *testing.T) {
	m, src := newTestMonitor(t, nil)
	const cg = 404
	if err := m.Observe("inst-q", detect.InstanceInfo{Function: "fn", Version: "1"}, cg, "/var/task/bootstrap"); err != nil {
		t.Fatal(err)
	}
	src.emit(m, cg, sensor.Event{Kind: sensor.KindExec, Path: "/var/task/bootstrap"})
	waitFor(t, "exec", func() bool { return m.events.Load() == 1 })
	m.Begin("inst-q", "first", "")
	m.End("inst-q", "first")
	m.Begin("inst-q", "quiet", "")
	m.End("inst-q", "quiet")
	if r := waitTrace(t, m, "first"); len(r) != 1 || r[0].Quiet || len(r[0].Events) != 1 {
		t.Errorf("first invocation record = %+v", r)
	}
	r := waitTrace(t, m, "quiet")
	if len(r) != 1 || !r[0].Quiet || r[0].Function != "fn" || r[0].Instance != "inst-q" || r[0].End.Before(r[0].Start) {
		t.Errorf("quiet invocation = %+v", r)
	}
	if m.Status().QuietInvocations != 1 || m.Status().RecordsWritten != 1 {
		t.Errorf("status = %+v", m.Status().Counters)
	}
}

// raiseEnvironAlert makes one instance read /proc/self/environ during a
// request, which the built-in environ-read rule alerts on.
func raiseEnvironAlert(t *testing.T, m *Monitor, src *fakeSource, cg uint64, inst, req string) {
	t.Helper()
	if err := m.Observe(inst, detect.InstanceInfo{Function: "fn", Version: "1"}, cg, "/var/task/bootstrap"); err != nil {
		t.Fatal(err)
	}
	n := m.events.Load()
	src.emit(m, cg, sensor.Event{Kind: sensor.KindExec, Path: "/var/task/bootstrap"})
	m.Begin(inst, req, "")
	src.emit(m, cg, sensor.Event{Kind: sensor.KindOpen, Path: "/proc/self/environ", Intent: sensor.IntentRead})
	waitFor(t, "events", func() bool { return m.events.Load() == n+2 })
	m.End(inst, req)
}

func TestWebhookRetriesAndSigns(t *testing.T) {
	var (
		mu       sync.Mutex
		attempts int
		got      []byte
		sig      string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		attempts++
		if attempts < 3 {
			http.Error(w, "not now", http.StatusServiceUnavailable)
			return
		}
		got, sig = b, r.Header.Get("X-Moat-Signature")
	}))
	defer srv.Close()
	m, src := newTestMonitor(t, nil)
	hook, err := webhook.Start(context.Background(), m.opts.JS, m.opts.AlertStream, webhook.Options{URL: srv.URL, Secret: "s3cret", Timeout: time.Second, Metrics: m.Registry()})
	if err != nil {
		t.Fatal(err)
	}
	defer hook.Stop()
	raiseEnvironAlert(t, m, src, 505, "inst-w", "req-w")
	waitFor(t, "the webhook's third attempt", func() bool { mu.Lock(); defer mu.Unlock(); return got != nil })
	var a detect.Alert
	if err := json.Unmarshal(got, &a); err != nil || a.Rule != "environ-read" || a.RequestID != "req-w" {
		t.Fatalf("webhook body %s: %v", got, err)
	}
	mac := hmac.New(sha256.New, []byte("s3cret"))
	mac.Write(got)
	if want := "sha256=" + hex.EncodeToString(mac.Sum(nil)); sig != want {
		t.Errorf("signature %q, want %q", sig, want)
	}
	if err := webhook.ValidateURL("ftp://x"); err == nil {
		t.Error("an ftp webhook URL was accepted")
	}
}

func TestMetrics(t *testing.T) {
	m, src := newTestMonitor(t, nil)
	raiseEnvironAlert(t, m, src, 606, "inst-m", "req-m")
	srv := httptest.NewServer(m.MetricsHandler())
	defer srv.Close()
	var body string
	waitFor(t, "the alert counter", func() bool {
		resp, err := http.Get(srv.URL)
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
		return strings.Contains(body, `moat_alerts_total{function="fn",rule="environ-read",severity="high"} 1`)
	})
	for _, want := range []string{`moat_sensor_events_total{kind="open"} 1`, "moat_monitoring_enabled 1", "moat_sensor_dropped_events_total 0"} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestNewVersionInheritsAndDrifts(t *testing.T) {
	m, src := newTestMonitorLearning(t, profile.Window{Invocations: 1}, nil)
	run := func(version, inst string, cg uint64, req string, extra ...sensor.Event) {
		if err := m.Observe(inst, detect.InstanceInfo{Function: "fn", Version: version}, cg, "/var/task/bootstrap"); err != nil {
			t.Fatal(err)
		}
		n := m.events.Load()
		src.emit(m, cg, sensor.Event{Kind: sensor.KindExec, Path: "/var/task/bootstrap"})
		m.Begin(inst, req, "")
		for _, e := range extra {
			src.emit(m, cg, e)
		}
		waitFor(t, "events", func() bool { return m.events.Load() == n+1+uint64(len(extra)) })
		m.End(inst, req)
		waitTrace(t, m, req)
	}
	run("6", "v6", 706, "r6")
	waitFor(t, "version 6 learned", func() bool {
		p, err := profilesOf(m).Profile(context.Background(), "fn", "6")
		return err == nil && p.State == profile.StateLearned
	})
	run("7", "v7", 707, "r7", sensor.Event{Kind: sensor.KindExec, Path: "/bin/sh", Argv: []string{"sh"}})
	p, err := profilesOf(m).Profile(context.Background(), "fn", "7")
	if err != nil || p.InheritedFrom != "6" {
		t.Fatalf("profile of version 7 = %+v, %v", p, err)
	}
	waitFor(t, "the drift alert", func() bool {
		var found bool
		_ = m.ReadAlerts(context.Background(), "fn", time.Time{}, false, func(a detect.Alert) error {
			found = found || (a.Rule == "drift.exec" && a.Summary == "version 7 spawns /bin/sh, version 6 never did" && a.RequestID == "r7")
			return nil
		})
		return found
	})
}

// TestRetireOnRefusal: an instance of a function with Recycle set is
// watched with KillEscapes, retired once on its first refusal (not on an
// ordinary failure), and Refused follows the kernel's count.
func TestRetireOnRefusal(t *testing.T) {
	retired := make(chan string, 4)
	m, src := newTestMonitor(t, nil)
	m.SetRetire(func(id string) { retired <- id })
	if err := m.Observe("r1", detect.InstanceInfo{Function: "fn", Version: "1", Bootstrap: "/var/task/bootstrap", Recycle: true}, 91, "/var/task/bootstrap"); err != nil {
		t.Fatal(err)
	}
	src.mu.Lock()
	kill := src.watched[91]&sensor.KillEscapes != 0
	src.mu.Unlock()
	if !kill {
		t.Error("a Recycle instance is not watched with KillEscapes")
	}
	src.emit(m, 91, sensor.Event{Kind: sensor.KindExec, Path: "/var/task/bootstrap", Argv: []string{"/var/task/bootstrap"}})
	m.Begin("r1", "req-1", "")
	// A file the process may not open is no refusal by a wall.
	src.emit(m, 91, sensor.Event{Kind: sensor.KindOpen, Path: "/etc/shadow", Result: -13, Errno: 13})
	select {
	case id := <-retired:
		t.Fatalf("retired %q after a refused open", id)
	case <-time.After(200 * time.Millisecond):
	}
	src.emit(m, 91, sensor.Event{Kind: sensor.KindConnect, Family: 2, Result: -1, Errno: 1})
	src.emit(m, 91, sensor.Event{Kind: sensor.KindDenied, Result: -1, Errno: 1})
	select {
	case id := <-retired:
		if id != "r1" {
			t.Errorf("retired %q", id)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("not retired after a refused connect")
	}
	select {
	case id := <-retired:
		t.Errorf("retired %q twice", id)
	case <-time.After(100 * time.Millisecond):
	}
	if m.Refused("r1") {
		t.Error("Refused with a kernel count of 0")
	}
	src.mu.Lock()
	src.refusals[91] = 2
	src.mu.Unlock()
	if !m.Refused("r1") {
		t.Error("not Refused with a kernel count of 2")
	}
	if !m.End("r1", "req-1") {
		t.Error("End does not retire a refused instance of a Recycle function")
	}
	// Without Recycle, a refusal retires nothing.
	if err := m.Observe("k1", detect.InstanceInfo{Function: "fn", Version: "1"}, 92, "/var/task/bootstrap"); err != nil {
		t.Fatal(err)
	}
	src.mu.Lock()
	src.refusals[92] = 1
	src.mu.Unlock()
	m.Begin("k1", "req-2", "")
	if m.End("k1", "req-2") {
		t.Error("End retires an instance of a function without Recycle")
	}
}

// TestNowFollowsBootClock: now, carried forward on the monotonic clock
// between reads of the boot clock, stays with the boot clock the sensor
// stamps events with.
func TestNowFollowsBootClock(t *testing.T) {
	m, _ := newTestMonitor(t, nil)
	for i := 0; i < 50; i++ {
		got := m.now()
		var ts unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
			t.Fatal(err)
		}
		want := m.boot.Add(time.Duration(ts.Nano()))
		if d := want.Sub(got); d < -50*time.Microsecond || d > 5*time.Millisecond {
			t.Fatalf("now %v, boot clock %v right after: off by %v", got, want, d)
		}
		time.Sleep(30 * time.Millisecond) // crosses a resync
	}
}
