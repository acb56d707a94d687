package schedule

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"moat.dev/moat/internal/store"
)

const (
	testFn   = "arn:aws:lambda:us-east-1:000000000000:function:tick"
	testRole = "arn:aws:iam::000000000000:role/scheduler"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// queueInvoker hands ticks to the real asynchronous stream, deduplicated
// by request id as invoke.Queue does, and records what it was given.
type queueInvoker struct {
	js jetstream.JetStream

	mu      sync.Mutex
	firings []Firing
	dead    []map[string]string
	fail    error
}

func (q *queueInvoker) Enqueue(ctx context.Context, f Firing) error {
	q.mu.Lock()
	fail := q.fail
	q.firings = append(q.firings, f)
	q.mu.Unlock()
	if fail != nil {
		return fail
	}
	m := nats.NewMsg(store.SubjectAsync + ".tick")
	m.Data = f.Payload
	m.Header.Set(jetstream.MsgIDHeader, f.RequestID)
	_, err := q.js.PublishMsg(ctx, m)
	return err
}

func (q *queueInvoker) DeadLetter(ctx context.Context, arn string, body []byte, attrs map[string]string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.dead = append(q.dead, attrs)
	return nil
}

func (q *queueInvoker) got() []Firing {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]Firing(nil), q.firings...)
}

type harness struct {
	st    *store.Store
	sched *Store
	clk   *clock
	inv   *queueInvoker
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	st, err := store.Open(context.Background(), store.Options{DataDir: t.TempDir(), IdleCollect: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return &harness{
		st:    st,
		sched: NewStore(st.Schedules),
		clk:   &clock{t: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)},
		inv:   &queueInvoker{js: st.JS},
	}
}

// ticker starts a Ticker on the harness's bucket and clock.
func (h *harness) ticker(t *testing.T) *Ticker {
	t.Helper()
	tk := NewTicker(TickerOptions{Store: h.sched, Invoker: h.inv, Region: "us-east-1", AccountID: "000000000000",
		Now: h.clk.Now, RetryDelay: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tk.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ticker: %v", err)
		}
	})
	return tk
}

func (h *harness) create(t *testing.T, s *Schedule) {
	t.Helper()
	if s.FlexibleTimeWindow.Mode == "" {
		s.FlexibleTimeWindow.Mode = ModeOff
	}
	if s.Target.Arn == "" {
		s.Target.Arn = testFn
	}
	s.Target.RoleArn = testRole
	s.CreationDate, s.LastModificationDate = h.clk.Now(), h.clk.Now()
	if _, err := s.Normalize(); err != nil {
		t.Fatal(err)
	}
	if err := h.sched.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
}

// waitCursor waits until the schedule's cursor satisfies ok.
func (h *harness) waitCursor(t *testing.T, name string, ok func(Cursor) bool, tickers ...*Ticker) Cursor {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, _, err := h.sched.Cursor(context.Background(), DefaultGroup, name)
		if err != nil {
			t.Fatal(err)
		}
		if ok(c) {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("cursor of %s: %+v", name, c)
		}
		for _, tk := range tickers {
			tk.nudge()
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (h *harness) queued(t *testing.T) uint64 {
	t.Helper()
	info, err := h.st.Async.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// A rate schedule fires at once, then every period, with a Scheduled Event.
func TestTickerRate(t *testing.T) {
	h := newHarness(t)
	start := h.clk.Now()
	h.create(t, &Schedule{Name: "every-minute", ScheduleExpression: "rate(1 minute)"})
	tk := h.ticker(t)
	h.waitCursor(t, "every-minute", func(c Cursor) bool { return c.Fired == 1 }, tk)
	h.clk.Add(time.Minute)
	c := h.waitCursor(t, "every-minute", func(c Cursor) bool { return c.Fired == 2 }, tk)
	if !c.Last.Equal(start.Add(time.Minute)) || c.Missed != 0 {
		t.Errorf("cursor %+v", c)
	}
	f := h.inv.got()
	if len(f) != 2 || f[0].RequestID == f[1].RequestID {
		t.Fatalf("firings %+v", f)
	}
	var ev scheduledEvent
	if err := json.Unmarshal(f[1].Payload, &ev); err != nil {
		t.Fatal(err)
	}
	want := scheduledEvent{Version: "0", ID: f[1].RequestID, DetailType: "Scheduled Event", Source: "aws.scheduler",
		Account: "000000000000", Time: "2026-12-07T10:01:00Z", Region: "us-east-1",
		Resources: []string{"arn:aws:scheduler:us-east-1:000000000000:schedule/default/every-minute"}, Detail: json.RawMessage("{}")}
	if got, _ := json.Marshal(ev); string(got) != string(mustJSON(want)) {
		t.Errorf("event %s\nwant  %s", got, mustJSON(want))
	}
	if f[1].Source != "schedule:default/every-minute" || f[1].Target != testFn {
		t.Errorf("firing %+v", f[1])
	}
}

func mustJSON(v any) []byte { b, _ := json.Marshal(v); return b }

// Two tickers on one bucket (two nodes of a cluster) fire each tick once:
// the queue holds one event per tick and the cursor counts each once.
func TestTickerTwoNodesFireOnce(t *testing.T) {
	h := newHarness(t)
	h.create(t, &Schedule{Name: "shared", ScheduleExpression: "rate(1 minute)"})
	a, b := h.ticker(t), h.ticker(t)
	for i := 1; i <= 5; i++ {
		h.waitCursor(t, "shared", func(c Cursor) bool { return c.Fired == int64(i) }, a, b)
		h.clk.Add(time.Minute)
	}
	if n := h.queued(t); n != 5 {
		t.Errorf("queue holds %d events for 5 ticks", n)
	}
	ids := map[string]bool{}
	for _, f := range h.inv.got() {
		ids[f.RequestID] = true
	}
	if len(ids) != 5 {
		t.Errorf("%d distinct request ids for 5 ticks", len(ids))
	}
}

// After downtime only the latest missed tick fires, and only if it is
// young enough; the others are counted.
func TestTickerMissedTicks(t *testing.T) {
	h := newHarness(t)
	h.create(t, &Schedule{Name: "catch-up", ScheduleExpression: "cron(0/5 * * * ? *)",
		Target: Target{RetryPolicy: RetryPolicy{MaximumEventAgeInSeconds: 120, MaximumRetryAttempts: 3}}})
	// No ticker runs for 31 minutes: ticks 10:00 ... 10:30 were due.
	h.clk.Add(31 * time.Minute)
	tk := h.ticker(t)
	c := h.waitCursor(t, "catch-up", func(c Cursor) bool { return c.Fired == 1 }, tk)
	if c.Missed != 6 || !c.Last.Equal(time.Date(2026, 12, 7, 10, 30, 0, 0, time.UTC)) {
		t.Errorf("cursor %+v: want 6 missed, last 10:30", c)
	}
	// Down again past the event age: 10:35 ... 10:50 all too old by 10:53.
	h.clk.Add(22 * time.Minute)
	c = h.waitCursor(t, "catch-up", func(c Cursor) bool { return c.Missed == 10 }, tk)
	if c.Fired != 1 || !c.Last.Equal(time.Date(2026, 12, 7, 10, 50, 0, 0, time.UTC)) {
		t.Errorf("cursor %+v", c)
	}
}

// A one-time schedule with an Input fires once with the context attributes
// filled in and, with ActionAfterCompletion DELETE, is deleted.
func TestTickerAtInputDelete(t *testing.T) {
	h := newHarness(t)
	h.create(t, &Schedule{Name: "once", ScheduleExpression: "at(2026-12-07T10:00:30)", ActionAfterCompletion: AfterDelete,
		Target: Target{Input: `{"arn":"<aws.scheduler.schedule-arn>","at":"<aws.scheduler.scheduled-time>","id":"<aws.scheduler.execution-id>","n":<aws.scheduler.attempt-number>}`}})
	tk := h.ticker(t)
	time.Sleep(50 * time.Millisecond)
	if n := len(h.inv.got()); n != 0 {
		t.Fatalf("fired %d times before its time", n)
	}
	h.clk.Add(45 * time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, _, err := h.sched.Get(context.Background(), DefaultGroup, "once")
		if errors.Is(err, ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("completed schedule not deleted: %v", err)
		}
		tk.nudge()
		time.Sleep(5 * time.Millisecond)
	}
	f := h.inv.got()
	if len(f) != 1 {
		t.Fatalf("%d firings", len(f))
	}
	want := `{"arn":"arn:aws:scheduler:us-east-1:000000000000:schedule/default/once","at":"2026-12-07T10:00:30Z","id":"` + f[0].RequestID + `","n":1}`
	if string(f[0].Payload) != want {
		t.Errorf("payload %s\nwant    %s", f[0].Payload, want)
	}
}

// A tick that cannot be handed over is retried per the retry policy and
// then dead-lettered with the Scheduler's attributes.
func TestTickerRetriesThenDeadLetters(t *testing.T) {
	h := newHarness(t)
	h.inv.fail = errors.New("queue full")
	h.create(t, &Schedule{Name: "broken", ScheduleExpression: "rate(5 minutes)",
		Target: Target{RetryPolicy: RetryPolicy{MaximumEventAgeInSeconds: 3600, MaximumRetryAttempts: 2},
			DeadLetterConfig: &DeadLetterConfig{Arn: "arn:aws:sqs:us-east-1:000000000000:dlq"}}})
	tk := h.ticker(t)
	c := h.waitCursor(t, "broken", func(c Cursor) bool { return c.Failed == 1 }, tk)
	if c.Fired != 0 || !strings.Contains(c.LastError, "queue full") {
		t.Errorf("cursor %+v", c)
	}
	if n := len(h.inv.got()); n != 3 {
		t.Errorf("%d attempts, want 1 + 2 retries", n)
	}
	h.inv.mu.Lock()
	defer h.inv.mu.Unlock()
	if len(h.inv.dead) != 1 || h.inv.dead[0]["RETRY_ATTEMPTS"] != "2" || h.inv.dead[0]["EXHAUSTED_RETRY_CONDITION"] != "MaximumRetryAttempts" ||
		h.inv.dead[0]["SCHEDULE_ARN"] != "arn:aws:scheduler:us-east-1:000000000000:schedule/default/broken" {
		t.Errorf("dead letters %v", h.inv.dead)
	}
}

// A disabled schedule does not fire; enabling it starts from then, without
// the ticks it skipped while disabled.
func TestTickerDisabled(t *testing.T) {
	h := newHarness(t)
	h.create(t, &Schedule{Name: "off", ScheduleExpression: "rate(1 minute)", State: StateDisabled})
	tk := h.ticker(t)
	h.clk.Add(10 * time.Minute)
	tk.nudge()
	time.Sleep(50 * time.Millisecond)
	if n := len(h.inv.got()); n != 0 {
		t.Fatalf("disabled schedule fired %d times", n)
	}
	s, _, err := h.sched.Get(context.Background(), DefaultGroup, "off")
	if err != nil {
		t.Fatal(err)
	}
	s.State, s.LastModificationDate = StateEnabled, h.clk.Now()
	if err := h.sched.Update(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	c := h.waitCursor(t, "off", func(c Cursor) bool { return c.Fired == 1 }, tk)
	if c.Missed != 0 || !c.Last.Equal(h.clk.Now()) {
		t.Errorf("cursor %+v", c)
	}
}

// A flexible window delays each tick by the same amount on every node,
// within the window.
func TestFlexOffset(t *testing.T) {
	w := 15
	en := &entry{arn: "arn:aws:scheduler:us-east-1:000000000000:schedule/default/flex",
		s: &Schedule{FlexibleTimeWindow: FlexibleTimeWindow{Mode: ModeFlexible, MaximumWindowInMinutes: &w}}}
	tick := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	seen := map[time.Duration]bool{}
	for i := range 50 {
		at := tick.Add(time.Duration(i) * time.Hour)
		d := flexOffset(en, at)
		if d < 0 || d >= 15*time.Minute || d != flexOffset(en, at) {
			t.Fatalf("offset %s", d)
		}
		seen[d] = true
	}
	if len(seen) < 10 {
		t.Errorf("offsets do not spread: %d distinct of 50", len(seen))
	}
	en.s.FlexibleTimeWindow = FlexibleTimeWindow{Mode: ModeOff}
	if d := flexOffset(en, tick); d != 0 {
		t.Errorf("OFF offset %s", d)
	}
}

func TestStoreCRUD(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.create(t, &Schedule{Name: "b.dotted", ScheduleExpression: "rate(1 hour)"})
	h.create(t, &Schedule{Name: "a", ScheduleExpression: "rate(1 hour)", State: StateDisabled})
	dup := &Schedule{Name: "a", GroupName: DefaultGroup, ScheduleExpression: "rate(1 hour)"}
	if err := h.sched.Create(ctx, dup); !errors.Is(err, ErrConflict) {
		t.Errorf("duplicate create: %v", err)
	}
	if err := h.sched.Create(ctx, &Schedule{Name: "x", GroupName: "other"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("other group: %v", err)
	}
	list, err := h.sched.List(ctx, "", "", "")
	if err != nil || len(list) != 2 || list[0].Name != "a" || list[1].Name != "b.dotted" {
		t.Fatalf("list %v %v", list, err)
	}
	if list, _ := h.sched.List(ctx, "", "b", ""); len(list) != 1 {
		t.Errorf("prefix list %v", list)
	}
	if list, _ := h.sched.List(ctx, "", "", StateEnabled); len(list) != 1 || list[0].Name != "b.dotted" {
		t.Errorf("state list %v", list)
	}
	if err := h.sched.Delete(ctx, "", "b.dotted"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.sched.Get(ctx, DefaultGroup, "b.dotted"); !errors.Is(err, ErrNotFound) {
		t.Errorf("get deleted: %v", err)
	}
	if err := h.sched.Delete(ctx, DefaultGroup, "b.dotted"); !errors.Is(err, ErrNotFound) {
		t.Errorf("delete twice: %v", err)
	}
	if err := h.sched.Update(ctx, &Schedule{Name: "missing", GroupName: DefaultGroup}); !errors.Is(err, ErrNotFound) {
		t.Errorf("update missing: %v", err)
	}
}

func TestNormalize(t *testing.T) {
	ok := func() *Schedule {
		return &Schedule{Name: "n", ScheduleExpression: "rate(1 minute)", FlexibleTimeWindow: FlexibleTimeWindow{Mode: ModeOff},
			Target: Target{Arn: testFn, RoleArn: testRole}}
	}
	s := ok()
	if _, err := s.Normalize(); err != nil {
		t.Fatal(err)
	}
	if s.GroupName != DefaultGroup || s.State != StateEnabled || s.ActionAfterCompletion != AfterNone ||
		s.Target.RetryPolicy.MaximumEventAgeInSeconds != 86400 {
		t.Errorf("defaults %+v", s)
	}
	zero, big := 0, 1441
	end := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := map[string]func(*Schedule){
		"name":                  func(s *Schedule) { s.Name = "has space" },
		"groupName":             func(s *Schedule) { s.GroupName = strings.Repeat("g", 65) },
		"state":                 func(s *Schedule) { s.State = "on" },
		"actionAfterCompletion": func(s *Schedule) { s.ActionAfterCompletion = "KEEP" },
		"Mode is required":      func(s *Schedule) { s.FlexibleTimeWindow.Mode = "" },
		"between 1 and 1440": func(s *Schedule) {
			s.FlexibleTimeWindow = FlexibleTimeWindow{Mode: ModeFlexible, MaximumWindowInMinutes: &big}
		},
		"only when":                 func(s *Schedule) { s.FlexibleTimeWindow.MaximumWindowInMinutes = &zero },
		"not a Lambda function ARN": func(s *Schedule) { s.Target.Arn = "arn:aws:sqs:us-east-1:000000000000:q" },
		"Target.Arn is required":    func(s *Schedule) { s.Target.Arn = "" },
		"RoleArn is required":       func(s *Schedule) { s.Target.RoleArn = "" },
		"not an IAM role ARN":       func(s *Schedule) { s.Target.RoleArn = "role" },
		"Input":                     func(s *Schedule) { s.Target.Input = strings.Repeat("x", MaxInput+1) },
		"maximumEventAgeInSeconds":  func(s *Schedule) { s.Target.RetryPolicy.MaximumEventAgeInSeconds = 59 },
		"maximumRetryAttempts":      func(s *Schedule) { s.Target.RetryPolicy.MaximumRetryAttempts = 186 },
		"not an SQS queue ARN":      func(s *Schedule) { s.Target.DeadLetterConfig = &DeadLetterConfig{Arn: testFn} },
		"EndDate":                   func(s *Schedule) { s.StartDate, s.EndDate = &end, &end },
		"ScheduleExpression is":     func(s *Schedule) { s.ScheduleExpression = "" },
		"Invalid Schedule":          func(s *Schedule) { s.ScheduleExpression = "rate(1 fortnight)" },
		"time zone":                 func(s *Schedule) { s.ScheduleExpressionTimezone = "Nowhere/Never" },
	}
	for want, mutate := range cases {
		s := ok()
		mutate(s)
		_, err := s.Normalize()
		if !errors.Is(err, ErrValidation) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", want, err)
		}
	}
}

// A tick whose function does not exist is not retried: it goes to the
// dead-letter queue at once with the error's code.
func TestTickerTargetErrorNotRetried(t *testing.T) {
	h := newHarness(t)
	h.inv.fail = &TargetError{Code: "ResourceNotFoundException", Err: errors.New("Function not found")}
	h.create(t, &Schedule{Name: "gone", ScheduleExpression: "rate(5 minutes)",
		Target: Target{RetryPolicy: RetryPolicy{MaximumEventAgeInSeconds: 3600, MaximumRetryAttempts: 10},
			DeadLetterConfig: &DeadLetterConfig{Arn: "arn:aws:sqs:us-east-1:000000000000:dlq"}}})
	tk := h.ticker(t)
	c := h.waitCursor(t, "gone", func(c Cursor) bool { return c.Failed == 1 }, tk)
	if !strings.Contains(c.LastError, "Function not found") {
		t.Errorf("cursor %+v", c)
	}
	if n := len(h.inv.got()); n != 1 {
		t.Errorf("%d attempts, want 1", n)
	}
	h.inv.mu.Lock()
	defer h.inv.mu.Unlock()
	if len(h.inv.dead) != 1 || h.inv.dead[0]["ERROR_CODE"] != "ResourceNotFoundException" || h.inv.dead[0]["RETRY_ATTEMPTS"] != "0" {
		t.Errorf("dead letters %v", h.inv.dead)
	}
}

// startNATS runs a JetStream server on a loopback port (0: any) in dir.
func startNATS(t *testing.T, dir string, port int) *server.Server {
	t.Helper()
	if port == 0 {
		port = -1
	}
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	return srv
}

// A ticker on a NATS cluster that goes away and comes back (a restart, a
// fail-over) keeps firing, and follows the changes made once it is back.
func TestTickerSurvivesServerRestart(t *testing.T) {
	dir := t.TempDir()
	srv := startNATS(t, dir, 0)
	t.Cleanup(func() { srv.Shutdown() }) // last: the client goes first
	port := srv.Addr().(*net.TCPAddr).Port
	st, err := store.Open(context.Background(), store.Options{URL: srv.ClientURL(), IdleCollect: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	h := &harness{st: st, sched: NewStore(st.Schedules), clk: &clock{t: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)}, inv: &queueInvoker{js: st.JS}}
	h.create(t, &Schedule{Name: "keep", ScheduleExpression: "rate(1 minute)"})
	h.create(t, &Schedule{Name: "drop", ScheduleExpression: "rate(1 minute)"})
	tk := h.ticker(t)
	h.waitCursor(t, "keep", func(c Cursor) bool { return c.Fired == 1 }, tk)
	h.waitCursor(t, "drop", func(c Cursor) bool { return c.Fired == 1 }, tk)

	srv.Shutdown()
	srv.WaitForShutdown()
	srv = startNATS(t, dir, port)
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := h.sched.Delete(context.Background(), DefaultGroup, "drop")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("delete after the restart: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	h.clk.Add(time.Minute)
	h.waitCursor(t, "keep", func(c Cursor) bool { return c.Fired == 2 }, tk)
	// Deleted while the watch may not have caught up: it does not fire
	// again, however late the watch tells.
	for tk.Stats().Schedules != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("deleted schedule still followed: %+v", tk.Stats())
		}
		tk.nudge()
		time.Sleep(20 * time.Millisecond)
	}
	if n := h.queued(t); n != 3 {
		t.Errorf("queue holds %d events, want keep twice and drop once", n)
	}
}
