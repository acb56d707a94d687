package schedule

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
)

// Firing is one tick's event, handed to a function's asynchronous queue.
type Firing struct {
	ScheduleArn string
	Target      string // the Lambda function ARN, possibly qualified
	Payload     []byte
	// RequestID is the same on every node for one tick of one schedule,
	// so the queue keeps one copy however many nodes hand it over.
	RequestID string
	Source    string // "schedule:<group>/<name>", recorded with the invocation
}

// TargetError is a hand-over failure that retrying cannot mend (the
// function does not exist): the tick goes to the dead-letter queue at once,
// with Code as its ERROR_CODE.
type TargetError struct {
	Code string
	Err  error
}

func (e *TargetError) Error() string { return e.Code + ": " + e.Err.Error() }
func (e *TargetError) Unwrap() error { return e.Err }

// Invoker is where ticks go; the node implements it with invoke.Queue.
type Invoker interface {
	// Enqueue stores the event durably in the function's asynchronous
	// queue, deduplicated by RequestID. An error is retried per the
	// target's retry policy.
	Enqueue(ctx context.Context, f Firing) error
	// DeadLetter stores, in the queue named by an SQS ARN, an event that
	// could not be handed over.
	DeadLetter(ctx context.Context, queueArn string, body []byte, attrs map[string]string) error
}

// TickerOptions configure a Ticker.
type TickerOptions struct {
	Store     *Store
	Invoker   Invoker
	Region    string
	AccountID string
	// Now is the clock (default time.Now).
	Now func() time.Time
	// RetryDelay is the first wait before handing a tick over again
	// (default 1 s); it doubles up to a minute.
	RetryDelay time.Duration
	Logger     *slog.Logger
}

// Ticker fires every enabled schedule of the bucket at its ticks. Run one
// per node: nodes that share the bucket fire each tick once between them.
//
// Missed ticks (no node ran at the time, or the schedule was behind) are
// handled by one policy: of the ticks due at once, only the latest is
// fired, and only if it is younger than the target's
// MaximumEventAgeInSeconds; the others are counted as missed in the
// schedule's cursor.
type Ticker struct {
	opts TickerOptions
	log  *slog.Logger

	mu      sync.Mutex
	entries map[string]*entry
	results chan result
	wake    chan struct{}
}

type entry struct {
	s      *Schedule
	e      *Expr
	rev    uint64
	arn    string
	lower  time.Time // ticks at or before this are known handled
	next   time.Time // the next tick, zero if none
	fireAt time.Time // next, plus its flexible-window offset
	busy   bool
}

type result struct {
	key   string
	rev   uint64
	last  time.Time // the cursor seen or written
	retry bool      // the cursor could not be read: try again soon
	// The stored definition differs from the entry's (the watch lags):
	// gone if deleted, else the current one and its revision.
	gone   bool
	def    *Schedule
	defRev uint64
}

// NewTicker returns a Ticker; Run starts it.
func NewTicker(opts TickerOptions) *Ticker {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RetryDelay <= 0 {
		opts.RetryDelay = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Ticker{
		opts:    opts,
		log:     opts.Logger,
		entries: make(map[string]*entry),
		results: make(chan result, 64),
		wake:    make(chan struct{}, 1),
	}
}

// Stats counts the schedules the ticker follows.
type Stats struct {
	Schedules int `json:"schedules"`
	Enabled   int `json:"enabled"`
}

// Stats returns what the ticker follows now.
func (t *Ticker) Stats() Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := Stats{Schedules: len(t.entries)}
	for _, en := range t.entries {
		if en.s.State == StateEnabled {
			st.Enabled++
		}
	}
	return st
}

// Run fires schedules until ctx ends; ticks being handed over when it ends
// are left to the next node or the next start (their cursor has not
// moved).
func (t *Ticker) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		w, err := t.opts.Store.watch(ctx)
		if err == nil {
			err = t.loop(ctx, w, &wg)
			_ = w.Stop()
		}
		if ctx.Err() != nil {
			return nil
		}
		// The store went away (a cluster failing over): keep the table,
		// watch again, and take the current definitions anew.
		t.log.Warn("schedules: watch lost; watching again", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(t.opts.RetryDelay):
		}
	}
}

// loop runs the ticker on one watch until it ends.
func (t *Ticker) loop(ctx context.Context, w jetstream.KeyWatcher, wg *sync.WaitGroup) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	seen := map[string]bool{} // the definitions the watch started with
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("watch closed")
			}
			switch {
			case e == nil && seen != nil:
				t.forgetExcept(seen) // deleted while no watch ran
				seen = nil
			case e != nil:
				if seen != nil {
					seen[e.Key()] = true
				}
				t.apply(e)
			}
		case r := <-t.results:
			t.done(r)
		case <-t.wake:
		case <-timer.C:
		}
		now := t.opts.Now()
		earliest := time.Time{}
		t.mu.Lock()
		for k, en := range t.entries {
			if en.busy || en.fireAt.IsZero() {
				continue
			}
			if !en.fireAt.After(now) {
				en.busy = true
				snap := *en
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := t.fire(ctx, k, &snap)
					select {
					case t.results <- r:
					case <-ctx.Done():
					}
				}()
				continue
			}
			if earliest.IsZero() || en.fireAt.Before(earliest) {
				earliest = en.fireAt
			}
		}
		t.mu.Unlock()
		wait := time.Hour
		if !earliest.IsZero() {
			wait = min(wait, earliest.Sub(now))
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
	}
}

// forgetExcept drops the schedules not in keep.
func (t *Ticker) forgetExcept(keep map[string]bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k := range t.entries {
		if !keep[k] {
			delete(t.entries, k)
		}
	}
}

// apply takes one watched definition into the ticker's table.
func (t *Ticker) apply(e jetstream.KeyValueEntry) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := e.Key()
	if e.Operation() != jetstream.KeyValuePut {
		delete(t.entries, k)
		return
	}
	s := new(Schedule)
	if err := json.Unmarshal(e.Value(), s); err != nil {
		t.log.Error("undecodable schedule record", "key", k, "err", err)
		return
	}
	t.applyDef(k, s, e.Revision())
}

// applyDef puts one definition at revision rev in the table; t.mu is held.
func (t *Ticker) applyDef(k string, s *Schedule, rev uint64) {
	if old, ok := t.entries[k]; ok && old.rev >= rev {
		return // seen already (a new watch, or the firing check was first)
	}
	ex, err := s.Normalize()
	if err != nil {
		t.log.Error("invalid schedule record", "key", k, "err", err)
		return
	}
	en := &entry{s: s, e: ex, rev: rev, arn: s.Arn(t.opts.Region, t.opts.AccountID)}
	// Ticks before the definition took its current form are not its own.
	en.lower = s.LastModificationDate.Add(-time.Nanosecond)
	if old, ok := t.entries[k]; ok && old.lower.After(en.lower) {
		en.lower = old.lower
	}
	t.plan(en)
	t.entries[k] = en
}

// plan computes an entry's next tick from what is known handled.
func (t *Ticker) plan(en *entry) {
	en.next, en.fireAt = time.Time{}, time.Time{}
	if en.s.State != StateEnabled {
		return
	}
	if n := en.s.NextTick(en.e, en.lower); !n.IsZero() {
		en.next, en.fireAt = n, n.Add(flexOffset(en, n))
	}
}

// done records what a firing found and plans the entry's next tick.
func (t *Ticker) done(r result) {
	t.mu.Lock()
	defer t.mu.Unlock()
	en, ok := t.entries[r.key]
	if !ok || en.rev != r.rev {
		return // deleted or replaced meanwhile: planned anew already
	}
	en.busy = false
	switch {
	case r.retry:
		en.fireAt = t.opts.Now().Add(t.opts.RetryDelay)
		return
	case r.gone:
		delete(t.entries, r.key)
		return
	case r.def != nil:
		t.applyDef(r.key, r.def, r.defRev)
		return
	}
	if r.last.After(en.lower) {
		en.lower = r.last
	}
	t.plan(en)
	if en.next.IsZero() && en.s.State == StateEnabled && en.s.ActionAfterCompletion == AfterDelete {
		// Completed: no tick remains. Delete only the revision that
		// completed, not a newer definition.
		s, rev := en.s, en.rev
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			// Every node tries; the first wins and the others find the
			// revision gone.
			if err := t.opts.Store.deleteKeys(ctx, s.GroupName, s.Name, rev); err != nil {
				t.log.Debug("completed schedule not deleted here", "schedule", s.Name, "err", err)
			} else {
				t.log.Info("completed schedule deleted", "schedule", s.Name)
			}
		}()
	}
}

// flexOffset spreads a tick within its flexible window, by the same amount
// on every node.
func flexOffset(en *entry, tick time.Time) time.Duration {
	w := en.s.FlexibleTimeWindow
	if w.Mode != ModeFlexible || w.MaximumWindowInMinutes == nil {
		return 0
	}
	h := sha256.Sum256([]byte(en.arn + "|" + tick.UTC().Format(time.RFC3339Nano)))
	secs := int64(*w.MaximumWindowInMinutes) * 60
	return time.Duration(binary.BigEndian.Uint64(h[:8])%uint64(secs)) * time.Second
}

// maxBacklog bounds how many missed ticks are counted one by one.
const maxBacklog = 1 << 20

// fire handles the ticks of one schedule that are due: it reads the shared
// cursor, applies the missed-tick policy, hands the latest due tick over
// and moves the cursor.
func (t *Ticker) fire(ctx context.Context, k string, en *entry) result {
	s := en.s
	cur, rev, err := t.opts.Store.Cursor(ctx, s.GroupName, s.Name)
	if err != nil {
		t.log.Warn("reading schedule cursor failed", "schedule", s.Name, "err", err)
		return result{key: k, rev: en.rev, retry: true}
	}
	// The watch may lag behind the store (a cluster failing over, for
	// seconds): the stored definition decides whether this tick is one.
	def, defRev, err := t.opts.Store.Get(ctx, s.GroupName, s.Name)
	switch {
	case errors.Is(err, ErrNotFound):
		return result{key: k, rev: en.rev, gone: true}
	case err != nil:
		t.log.Warn("reading schedule failed", "schedule", s.Name, "err", err)
		return result{key: k, rev: en.rev, retry: true}
	case defRev != en.rev:
		return result{key: k, rev: en.rev, def: def, defRev: defRev}
	}
	lower := en.lower
	if cur.Last.After(lower) {
		lower = cur.Last
	}
	now := t.opts.Now()
	var latest time.Time
	due := 0
	for tick := s.NextTick(en.e, lower); !tick.IsZero() && !tick.After(now) && due < maxBacklog; tick = s.NextTick(en.e, tick) {
		if tick.Add(flexOffset(en, tick)).After(now) {
			break
		}
		latest, due = tick, due+1
	}
	if due == 0 {
		return result{key: k, rev: en.rev, last: lower}
	}
	maxAge := time.Duration(s.Target.RetryPolicy.MaximumEventAgeInSeconds) * time.Second
	missed, fired, failed, lastErr := int64(due-1), false, false, ""
	if now.Sub(latest) > maxAge {
		missed++
		t.log.Warn("schedule ticks missed", "schedule", s.Name, "missed", due, "latest", latest)
	} else {
		if err := t.handOver(ctx, en, latest); err != nil {
			if ctx.Err() != nil {
				return result{key: k, rev: en.rev, retry: true}
			}
			failed, lastErr = true, err.Error()
		} else {
			fired = true
		}
	}
	for {
		if !cur.Last.Before(latest) {
			break // another node handled this tick first
		}
		next := cur
		next.Last = latest
		next.Missed += missed
		if fired {
			next.Fired++
			next.LastFired = now
		}
		if failed {
			next.Failed++
			next.LastError = lastErr
		}
		err := t.opts.Store.putCursor(ctx, s.GroupName, s.Name, next, rev)
		if err == nil {
			break
		}
		if !errors.Is(err, errCursorMoved) {
			t.log.Warn("moving schedule cursor failed", "schedule", s.Name, "err", err)
			return result{key: k, rev: en.rev, retry: true}
		}
		if cur, rev, err = t.opts.Store.Cursor(ctx, s.GroupName, s.Name); err != nil {
			return result{key: k, rev: en.rev, retry: true}
		}
	}
	return result{key: k, rev: en.rev, last: latest}
}

// handOver gives one tick's event to the function's queue, retrying per
// the target's retry policy, and dead-letters it if that never succeeds.
func (t *Ticker) handOver(ctx context.Context, en *entry, tick time.Time) error {
	s := en.s
	id := executionID(en.arn, tick)
	deadline := tick.Add(time.Duration(s.Target.RetryPolicy.MaximumEventAgeInSeconds) * time.Second)
	delay := t.opts.RetryDelay
	var err error
	attempt := 1
	for ; ; attempt++ {
		err = t.opts.Invoker.Enqueue(ctx, Firing{
			ScheduleArn: en.arn,
			Target:      s.Target.Arn,
			Payload:     t.payload(en, tick, id, attempt),
			RequestID:   id,
			Source:      "schedule:" + s.GroupName + "/" + s.Name,
		})
		if err == nil {
			return nil
		}
		var te *TargetError
		if errors.As(err, &te) || attempt > s.Target.RetryPolicy.MaximumRetryAttempts || t.opts.Now().Add(delay).After(deadline) {
			break
		}
		t.log.Warn("handing schedule tick over failed; retrying", "schedule", s.Name, "attempt", attempt, "delay", delay, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Minute)
	}
	t.log.Error("schedule tick not handed over", "schedule", s.Name, "tick", tick, "attempts", attempt, "err", err)
	if d := s.Target.DeadLetterConfig; d != nil {
		attrs := map[string]string{
			"ERROR_CODE":     "TargetInvocationFailed",
			"ERROR_MESSAGE":  err.Error(),
			"RETRY_ATTEMPTS": strconv.Itoa(attempt - 1),
			"SCHEDULE_ARN":   en.arn,
			"TARGET_ARN":     s.Target.Arn,
		}
		var te *TargetError
		if errors.As(err, &te) {
			attrs["ERROR_CODE"] = te.Code
		} else {
			attrs["EXHAUSTED_RETRY_CONDITION"] = exhausted(attempt, s)
		}
		if derr := t.opts.Invoker.DeadLetter(ctx, d.Arn, t.payload(en, tick, id, attempt), attrs); derr != nil {
			t.log.Error("dead-letter delivery failed", "schedule", s.Name, "queue", d.Arn, "err", derr)
			return fmt.Errorf("%w; dead-letter delivery failed: %v", err, derr)
		}
	}
	return err
}

func exhausted(attempt int, s *Schedule) string {
	if attempt > s.Target.RetryPolicy.MaximumRetryAttempts {
		return "MaximumRetryAttempts"
	}
	return "MaximumEventAgeInSeconds"
}

// executionID is a tick's id: the same on every node, a UUID as AWS's.
func executionID(arn string, tick time.Time) string {
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte(arn+"#"+tick.UTC().Format(time.RFC3339Nano))).String()
}

// scheduledEvent is the event a schedule without Input delivers: EventBridge's
// Scheduled Event, the shape functions written for schedules parse.
type scheduledEvent struct {
	Version    string          `json:"version"`
	ID         string          `json:"id"`
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Account    string          `json:"account"`
	Time       string          `json:"time"`
	Region     string          `json:"region"`
	Resources  []string        `json:"resources"`
	Detail     json.RawMessage `json:"detail"`
}

// payload is a tick's event: the target's Input with the Scheduler's
// context attributes filled in, or a Scheduled Event if it has none.
func (t *Ticker) payload(en *entry, tick time.Time, id string, attempt int) []byte {
	at := tick.UTC().Format("2006-01-02T15:04:05Z")
	if in := en.s.Target.Input; in != "" {
		return []byte(strings.NewReplacer(
			"<aws.scheduler.schedule-arn>", en.arn,
			"<aws.scheduler.scheduled-time>", at,
			"<aws.scheduler.execution-id>", id,
			"<aws.scheduler.attempt-number>", strconv.Itoa(attempt),
		).Replace(in))
	}
	b, _ := json.Marshal(scheduledEvent{
		Version:    "0",
		ID:         id,
		DetailType: "Scheduled Event",
		Source:     "aws.scheduler",
		Account:    t.opts.AccountID,
		Time:       at,
		Region:     t.opts.Region,
		Resources:  []string{en.arn},
		Detail:     json.RawMessage("{}"),
	})
	return b
}

// nudge makes Run look at the clock again (tests move their clock).
func (t *Ticker) nudge() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}
