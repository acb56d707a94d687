package logs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"moat.dev/moat/internal/store"
)

// waitLimit bounds every wait in these tests, so a bug fails them instead of
// hanging them; nothing sleeps to synchronise.
const waitLimit = 20 * time.Second

func openStore(t testing.TB) *store.Store {
	t.Helper()
	s, err := store.Open(t.Context(), store.Options{DataDir: t.TempDir(), LogMaxBytes: 256 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func record(function string, i int) Record {
	return Record{
		Time:      time.Date(2026, 11, 24, 10, 0, 0, i*int(time.Millisecond), time.UTC),
		Function:  function,
		Version:   "$LATEST",
		RequestID: fmt.Sprintf("req-%s-%d", function, i),
		Stream:    "2026/11/24/[$LATEST]0f3a9c",
		Text:      fmt.Sprintf("%sline %d of %s\n%s", StartLine("r", "$LATEST"), i, function, EndLine("r")),
	}
}

func sameRecord(a, b Record) bool {
	return a.Time.Equal(b.Time) && a.Function == b.Function && a.Version == b.Version &&
		a.RequestID == b.RequestID && a.Stream == b.Stream && a.Text == b.Text
}

func flush(t *testing.T, w *Writer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	defer cancel()
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// readAll reads function's records without following, failing the test if
// Read does not return by itself.
func readAll(t *testing.T, r *Reader, function string, since time.Time) []Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	defer cancel()
	var got []Record
	err := r.Read(ctx, function, since, false, func(rec Record) error {
		got = append(got, rec)
		return nil
	})
	if err != nil {
		t.Fatalf("Read(%s): %v", function, err)
	}
	return got
}

func checkRecords(t *testing.T, got, want []Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range want {
		if !sameRecord(got[i], want[i]) {
			t.Errorf("record %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestWriteReadRoundTrip(t *testing.T) {
	s := openStore(t)
	w := NewWriter(s.JS, nil)
	functions := []string{"alpha", "beta", "gamma_2"}
	want := map[string][]Record{}
	for i := range 30 {
		f := functions[i%len(functions)]
		rec := record(f, i)
		want[f] = append(want[f], rec)
		w.Write(rec)
	}
	flush(t, w)
	if n := w.Dropped(); n != 0 {
		t.Fatalf("Dropped = %d, want 0", n)
	}
	r := NewReader(s.JS)
	for _, f := range functions {
		t.Run(f, func(t *testing.T) {
			checkRecords(t, readAll(t, r, f, time.Time{}), want[f])
		})
	}
}

func TestWriteStampsTime(t *testing.T) {
	s := openStore(t)
	w := NewWriter(s.JS, nil)
	before := time.Now()
	w.Write(Record{Function: "f", Text: "init\n"})
	flush(t, w)
	got := readAll(t, NewReader(s.JS), "f", time.Time{})
	if len(got) != 1 {
		t.Fatalf("got %d records, want 1", len(got))
	}
	if got[0].Time.Before(before.Truncate(time.Microsecond)) || got[0].Time.After(time.Now()) {
		t.Errorf("Time = %v, want the time of Write", got[0].Time)
	}
	if got[0].RequestID != "" {
		t.Errorf("RequestID = %q, want empty", got[0].RequestID)
	}
}

func TestReadSince(t *testing.T) {
	s := openStore(t)
	w := NewWriter(s.JS, nil)
	r := NewReader(s.JS)
	for i := range 5 {
		w.Write(record("f", i))
		w.Write(record("other", i))
	}
	flush(t, w)
	last, err := s.Logs.GetLastMsgForSubject(t.Context(), subject("f"))
	if err != nil {
		t.Fatal(err)
	}
	var later []Record
	for i := 5; i < 9; i++ {
		rec := record("f", i)
		later = append(later, rec)
		w.Write(rec)
		w.Write(record("other", i))
	}
	flush(t, w)
	// The stream's timestamp of the first record of the second batch.
	first, err := s.Logs.GetMsg(t.Context(), last.Sequence+1, jetstream.WithGetMsgSubject(subject("f")))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("from the second batch", func(t *testing.T) {
		checkRecords(t, readAll(t, r, "f", first.Time), later)
	})
	t.Run("at and after the last record", func(t *testing.T) {
		end, err := s.Logs.GetLastMsgForSubject(t.Context(), subject("f"))
		if err != nil {
			t.Fatal(err)
		}
		checkRecords(t, readAll(t, r, "f", end.Time), later[len(later)-1:])
		checkRecords(t, readAll(t, r, "f", end.Time.Add(time.Nanosecond)), nil)
	})
	t.Run("in the future", func(t *testing.T) {
		checkRecords(t, readAll(t, r, "f", time.Now().Add(time.Hour)), nil)
	})
	t.Run("zero is everything", func(t *testing.T) {
		if got := readAll(t, r, "f", time.Time{}); len(got) != 9 {
			t.Errorf("got %d records, want 9", len(got))
		}
	})
}

func TestReadEmptyTerminates(t *testing.T) {
	s := openStore(t)
	r := NewReader(s.JS)
	t.Run("empty stream", func(t *testing.T) {
		checkRecords(t, readAll(t, r, "nobody", time.Time{}), nil)
	})
	w := NewWriter(s.JS, nil)
	for i := range 100 {
		w.Write(record("busy", i))
	}
	flush(t, w)
	t.Run("other functions only", func(t *testing.T) {
		checkRecords(t, readAll(t, r, "nobody", time.Time{}), nil)
	})
	t.Run("other functions only, since", func(t *testing.T) {
		checkRecords(t, readAll(t, r, "nobody", time.Now().Add(-time.Hour)), nil)
	})
}

func TestReadFollow(t *testing.T) {
	s := openStore(t)
	w := NewWriter(s.JS, nil)
	r := NewReader(s.JS)
	r1, r2 := record("f", 1), record("f", 2)
	w.Write(r1)
	flush(t, w)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	got := make(chan Record)
	done := make(chan error, 1)
	go func() {
		done <- r.Read(ctx, "f", time.Time{}, true, func(rec Record) error {
			select {
			case got <- rec:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	receive := func(want Record) {
		t.Helper()
		select {
		case rec := <-got:
			if !sameRecord(rec, want) {
				t.Fatalf("followed %+v, want %+v", rec, want)
			}
		case err := <-done:
			t.Fatalf("Read returned %v while following", err)
		case <-time.After(waitLimit):
			t.Fatalf("no record after %v", waitLimit)
		}
	}
	receive(r1)
	// Read is now past the stored records: the next ones arrive live, and a
	// record of another function is not delivered.
	w.Write(record("other", 1))
	w.Write(r2)
	flush(t, w)
	receive(r2)

	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Read after cancel = %v, want context.Canceled", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("Read did not return after its context was cancelled")
	}
}

func TestReadFollowEmptySubject(t *testing.T) {
	s := openStore(t)
	w := NewWriter(s.JS, nil)
	r := NewReader(s.JS)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	got := make(chan Record, 1)
	done := make(chan error, 1)
	since := time.Now() // before the write, whenever the goroutine runs
	go func() {
		done <- r.Read(ctx, "late", since, true, func(rec Record) error {
			got <- rec
			cancel()
			return nil
		})
	}()
	want := record("late", 1)
	w.Write(want)
	flush(t, w)
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Read = %v, want context.Canceled", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("Read did not deliver the record written after it started")
	}
	if rec := <-got; !sameRecord(rec, want) {
		t.Fatalf("followed %+v, want %+v", rec, want)
	}
}

func TestReadRecordsVanishing(t *testing.T) {
	s := openStore(t)
	w := NewWriter(s.JS, nil)
	const n = 2000
	for i := range n {
		w.Write(record("f", i))
	}
	flush(t, w)
	r := NewReader(s.JS)
	r.idle = 20 * time.Millisecond
	// Purging while the first record is handled leaves the consumer counting
	// records that will never come, as age and size limits can: Read must
	// still end.
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	defer cancel()
	got := 0
	err := r.Read(ctx, "f", time.Time{}, false, func(Record) error {
		got++
		if got == 1 {
			return s.Logs.Purge(ctx)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Read = %v, want nil", err)
	}
	if got == 0 || got >= n {
		t.Fatalf("read %d records, want some but not all %d", got, n)
	}
}

func TestReadCallbackError(t *testing.T) {
	s := openStore(t)
	w := NewWriter(s.JS, nil)
	for i := range 3 {
		w.Write(record("f", i))
	}
	flush(t, w)
	stop := errors.New("stop")
	calls := 0
	err := NewReader(s.JS).Read(t.Context(), "f", time.Time{}, true, func(Record) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("Read = %v after %d calls, want %v after 1", err, calls, stop)
	}
}

func TestReadInvalidFunctionName(t *testing.T) {
	s := openStore(t)
	r := NewReader(s.JS)
	for _, name := range []string{"", "a.b", "a*", ">", "a b", strings.Repeat("x", 65)} {
		t.Run(name, func(t *testing.T) {
			err := r.Read(t.Context(), name, time.Time{}, false, func(Record) error { return nil })
			if !errors.Is(err, ErrInvalidFunctionName) {
				t.Fatalf("Read(%q) = %v, want ErrInvalidFunctionName", name, err)
			}
		})
	}
}

func TestWriterConcurrent(t *testing.T) {
	s := openStore(t)
	w := NewWriter(s.JS, nil)
	const producers, each = 8, 200
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for i := range each {
				w.Write(Record{Function: "f", Text: fmt.Sprintf("%d %d\n", p, i)})
			}
		})
	}
	wg.Wait()
	flush(t, w)
	if n := w.Dropped(); n != 0 {
		t.Fatalf("Dropped = %d, want 0", n)
	}
	got := readAll(t, NewReader(s.JS), "f", time.Time{})
	if len(got) != producers*each {
		t.Fatalf("got %d records, want %d", len(got), producers*each)
	}
	next := make([]int, producers)
	for _, rec := range got {
		var p, i int
		if _, err := fmt.Sscanf(rec.Text, "%d %d\n", &p, &i); err != nil {
			t.Fatalf("record %q: %v", rec.Text, err)
		}
		if i != next[p] {
			t.Fatalf("producer %d: record %d after %d, want each producer's records in order", p, i, next[p]-1)
		}
		next[p]++
	}
}

// warnings collects the Writer's warnings.
type warnings struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *warnings) Enabled(context.Context, slog.Level) bool { return true }
func (h *warnings) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *warnings) WithGroup(string) slog.Handler            { return h }
func (h *warnings) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r.Clone())
	return nil
}

func (h *warnings) all() []slog.Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.records
}

func attr(r slog.Record, key string) slog.Value {
	var v slog.Value
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v = a.Value
			return false
		}
		return true
	})
	return v
}

// testWriter is a Writer with a small bound and short waits.
func testWriter(t *testing.T, s *store.Store, cfg writerConfig) (*Writer, *warnings) {
	t.Helper()
	h := &warnings{}
	return newWriter(s.JS, slog.New(h), cfg), h
}

func TestDroppedWhenNoStreamAnswers(t *testing.T) {
	s := openStore(t)
	if err := s.JS.DeleteStream(t.Context(), store.StreamLogs); err != nil {
		t.Fatal(err)
	}
	w, h := testWriter(t, s, writerConfig{maxPending: 16, stallWait: 10 * time.Millisecond, ackTimeout: time.Hour, warnEvery: time.Hour})
	for i := range 5 {
		w.Write(record("f", i))
	}
	flush(t, w)
	if n := w.Dropped(); n != 5 {
		t.Fatalf("Dropped = %d, want 5", n)
	}
	warns := h.all()
	if len(warns) != 1 {
		t.Fatalf("%d warnings, want 1 (rate-limited)", len(warns))
	}
	if warns[0].Level != slog.LevelWarn || attr(warns[0], keyFunction).String() != "f" ||
		attr(warns[0], keyDroppedTotal).Uint64() != 1 {
		t.Errorf("warning = %v %q %v, want a warning for f's first drop", warns[0].Level, warns[0].Message, warns[0])
	}
}

func TestDroppedWhenPendingBoundReached(t *testing.T) {
	s := openStore(t)
	// Without the stream, a plain subscriber that never answers keeps every
	// publish waiting for its ack.
	if err := s.JS.DeleteStream(t.Context(), store.StreamLogs); err != nil {
		t.Fatal(err)
	}
	sub, err := s.Conn.Subscribe(store.SubjectLogs+".>", func(*nats.Msg) {})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := s.Conn.Flush(); err != nil {
		t.Fatal(err)
	}
	w, h := testWriter(t, s, writerConfig{maxPending: 1, stallWait: 10 * time.Millisecond, ackTimeout: time.Hour, warnEvery: time.Hour})

	w.Write(record("f", 1))
	if n := w.Dropped(); n != 0 {
		t.Fatalf("Dropped after the first write = %d, want 0", n)
	}
	start := time.Now()
	w.Write(record("f", 2)) // no free slot: waits the stall wait, then drops
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Write blocked for %v with the bound reached", d)
	}
	if n := w.Dropped(); n != 1 {
		t.Fatalf("Dropped after the second write = %d, want 1", n)
	}
	if n := len(h.all()); n != 1 {
		t.Errorf("%d warnings, want 1", n)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if err := w.Flush(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Flush with an unanswered publish = %v, want context.DeadlineExceeded", err)
	}
}

func TestDroppedWhenAckTimesOut(t *testing.T) {
	s := openStore(t)
	if err := s.JS.DeleteStream(t.Context(), store.StreamLogs); err != nil {
		t.Fatal(err)
	}
	sub, err := s.Conn.Subscribe(store.SubjectLogs+".>", func(*nats.Msg) {})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := s.Conn.Flush(); err != nil {
		t.Fatal(err)
	}
	w, _ := testWriter(t, s, writerConfig{maxPending: 16, stallWait: 10 * time.Millisecond, ackTimeout: 50 * time.Millisecond, warnEvery: time.Hour})
	for i := range 3 {
		w.Write(record("f", i))
	}
	flush(t, w)
	if n := w.Dropped(); n != 3 {
		t.Fatalf("Dropped = %d, want 3", n)
	}
}

func TestDroppedInvalidFunctionName(t *testing.T) {
	s := openStore(t)
	w, h := testWriter(t, s, defaultWriterConfig)
	w.Write(Record{Function: "a.b", Text: "x\n"})
	w.Write(Record{Function: "", Text: "x\n"})
	if n := w.Dropped(); n != 2 {
		t.Fatalf("Dropped = %d, want 2", n)
	}
	if n := len(h.all()); n != 1 {
		t.Errorf("%d warnings, want 1", n)
	}
}

func TestDropWarningCountsSinceLast(t *testing.T) {
	s := openStore(t)
	// warnEvery of 1 ns: every drop may warn, and each warning counts the
	// drops since the one before.
	w, h := testWriter(t, s, writerConfig{maxPending: 16, stallWait: time.Millisecond, ackTimeout: time.Hour, warnEvery: 1})
	for range 3 {
		w.Write(Record{Function: "bad.name"})
	}
	var total uint64
	for _, r := range h.all() {
		total += attr(r, keyDropped).Uint64()
	}
	if total != 3 {
		t.Errorf("warnings account for %d drops, want 3", total)
	}
}

func BenchmarkWrite(b *testing.B) {
	s := openStore(b)
	w := NewWriter(s.JS, nil)
	rec := record("bench", 1)
	rec.Text = StartLine(rec.RequestID, "$LATEST") +
		strings.Repeat("2026-11-24T10:00:00.000Z\tINFO\tprocessed order 123456 in 12 ms\n", 4) +
		EndLine(rec.RequestID) + ReportLine(Report{RequestID: rec.RequestID, Duration: 12 * time.Millisecond, MemorySizeMB: 128, MaxMemoryUsedMB: 40})
	b.ReportAllocs()
	b.SetBytes(int64(len(rec.Text)))
	start := time.Now()
	for b.Loop() {
		w.Write(rec)
	}
	reportStored(b, w, start)
}

// reportStored reports the records stored per second, from start until the
// last is acknowledged (ns/op is only the time Write takes), and the drops.
func reportStored(b *testing.B, w *Writer, start time.Time) {
	b.Helper()
	if err := w.Flush(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
	b.ReportMetric(float64(w.Dropped()), "dropped")
}

func BenchmarkWriteParallel(b *testing.B) {
	s := openStore(b)
	w := NewWriter(s.JS, nil)
	rec := record("bench", 1)
	b.ReportAllocs()
	b.SetBytes(int64(len(rec.Text)))
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w.Write(rec)
		}
	})
	reportStored(b, w, start)
}
