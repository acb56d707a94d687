package schedule

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"
)

// latencyInvoker records how late each tick is handed over.
type latencyInvoker struct {
	mu   sync.Mutex
	late []time.Duration
	at   map[string]time.Time // schedule ARN -> its tick
	done chan struct{}
	want int
}

func (l *latencyInvoker) Enqueue(_ context.Context, f Firing) error {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.late = append(l.late, now.Sub(l.at[f.ScheduleArn]))
	if len(l.late) == l.want {
		close(l.done)
	}
	return nil
}

func (l *latencyInvoker) DeadLetter(context.Context, string, []byte, map[string]string) error {
	return nil
}

func quantile(d []time.Duration, q float64) time.Duration {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[min(len(d)-1, int(q*float64(len(d))))]
}

// BenchmarkTickLateness: how late the ticker hands a tick over, from the
// tick's time to the Enqueue call, when n one-time schedules share the
// same second (the cursor read and compare-and-set on the real store
// included). The floor is a bare time.Timer armed for the same instants.
func BenchmarkTickLateness(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("schedules=%d", n), func(b *testing.B) {
			var all, floor []time.Duration
			for range b.N {
				h := newHarness(b)
				h.clk = nil
				at := time.Now().Add(1500 * time.Millisecond).Truncate(time.Second).Add(time.Second)
				inv := &latencyInvoker{at: map[string]time.Time{}, done: make(chan struct{}), want: n}
				for i := range n {
					s := &Schedule{Name: fmt.Sprintf("s%d", i), ScheduleExpression: "at(" + at.UTC().Format("2006-01-02T15:04:05") + ")",
						FlexibleTimeWindow: FlexibleTimeWindow{Mode: ModeOff},
						Target:             Target{Arn: testFn, RoleArn: testRole}, CreationDate: time.Now(), LastModificationDate: time.Now()}
					if _, err := s.Normalize(); err != nil {
						b.Fatal(err)
					}
					if err := h.sched.Create(context.Background(), s); err != nil {
						b.Fatal(err)
					}
					inv.at[s.Arn("us-east-1", "000000000000")] = at
				}
				tk := NewTicker(TickerOptions{Store: h.sched, Invoker: inv, Region: "us-east-1", AccountID: "000000000000"})
				ctx, cancel := context.WithCancel(context.Background())
				go func() { _ = tk.Run(ctx) }()
				timerLate := make(chan time.Duration, 1)
				time.AfterFunc(time.Until(at), func() { timerLate <- time.Since(at) })
				select {
				case <-inv.done:
				case <-time.After(30 * time.Second):
					b.Fatalf("%d of %d ticks handed over", len(inv.late), n)
				}
				cancel()
				all = append(all, inv.late...)
				floor = append(floor, <-timerLate)
			}
			b.ReportMetric(float64(quantile(all, 0.5).Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(quantile(all, 0.99).Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(quantile(floor, 0.5).Microseconds())/1000, "timer-p50-ms")
		})
	}
}
