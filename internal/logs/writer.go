package logs

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Keys of moat's own log entries written by this package.
const (
	keyFunction     = "function"
	keyDropped      = "dropped"
	keyDroppedTotal = "droppedTotal"
	keyErr          = "err"
)

// writerConfig bounds what the Writer may hold back and how loudly it drops.
type writerConfig struct {
	maxPending int           // publishes in flight without an ack
	stallWait  time.Duration // how long Write waits for a free slot before dropping
	ackTimeout time.Duration // a publish without an ack after this long counts as dropped
	warnEvery  time.Duration // at most one drop warning per interval
}

var defaultWriterConfig = writerConfig{
	maxPending: 4096,
	stallWait:  50 * time.Millisecond,
	ackTimeout: 30 * time.Second,
	warnEvery:  10 * time.Second,
}

// Writer publishes records to the logs stream without blocking the invoke
// path. It is safe for concurrent use.
//
// Publishes are asynchronous with at most 4096 awaiting their ack. When that
// many are pending, Write waits up to 50 ms for a free slot and then drops
// the record. A record is also dropped when its publish fails or is not
// acknowledged within 30 s (it may then be stored anyway). Every drop is
// counted (Dropped) and reported in a warning at most every 10 s.
type Writer struct {
	js     jetstream.JetStream // the Writer's own context: its bound and handlers
	logger *slog.Logger
	cfg    writerConfig

	dropped  atomic.Uint64
	warned   atomic.Uint64 // value of dropped at the last warning
	lastWarn atomic.Int64  // unix nanoseconds of the last warning
}

// NewWriter returns a Writer publishing over js's connection. A nil logger
// discards the drop warnings.
func NewWriter(js jetstream.JetStream, logger *slog.Logger) *Writer {
	return newWriter(js, logger, defaultWriterConfig)
}

func newWriter(js jetstream.JetStream, logger *slog.Logger, cfg writerConfig) *Writer {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	w := &Writer{logger: logger, cfg: cfg}
	// A context of its own gives the Writer its own pending bound and error
	// handler without changing js for its other users. Only publishing goes
	// through it, and publishes need neither js's API prefix nor its domain.
	own, err := jetstream.New(js.Conn(),
		jetstream.WithPublishAsyncMaxPending(cfg.maxPending),
		jetstream.WithPublishAsyncTimeout(cfg.ackTimeout),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) {
			w.drop(functionOf(m.Subject), err)
		}),
	)
	if err != nil {
		// Only invalid options fail, and cfg comes from this package.
		panic(fmt.Sprintf("logs: new writer: %v", err))
	}
	w.js = own
	return w
}

// Write publishes rec to its function's subject, stamping Time with the
// current time when it is zero. It returns once the record is handed to the
// connection, or dropped: for an invalid function name, a failed publish, or
// no free slot within the stall wait.
func (w *Writer) Write(rec Record) {
	if !validFunctionName(rec.Function) {
		w.drop(rec.Function, ErrInvalidFunctionName)
		return
	}
	if rec.Time.IsZero() {
		rec.Time = time.Now()
	}
	data, err := json.Marshal(rec)
	if err != nil {
		w.drop(rec.Function, fmt.Errorf("encode log record: %w", err))
		return
	}
	_, err = w.js.PublishMsgAsync(&nats.Msg{Subject: subject(rec.Function), Data: data},
		jetstream.WithStallWait(w.cfg.stallWait))
	if err != nil {
		w.drop(rec.Function, err)
	}
}

// Flush waits until every record published so far is acknowledged or
// dropped, or until ctx ends, when it returns ctx's error. Records still
// waiting inside Write for a free slot are not waited for.
func (w *Writer) Flush(ctx context.Context) error {
	select {
	case <-w.js.PublishAsyncComplete():
		return nil
	case <-ctx.Done():
		return fmt.Errorf("flush logs: %w", ctx.Err())
	}
}

// Dropped is the number of records lost since the Writer was made.
func (w *Writer) Dropped() uint64 {
	return w.dropped.Load()
}

// drop counts one lost record and warns, at most once per warnEvery, with
// the number lost since the previous warning.
func (w *Writer) drop(function string, err error) {
	total := w.dropped.Add(1)
	now := time.Now().UnixNano()
	last := w.lastWarn.Load()
	if last != 0 && now-last < int64(w.cfg.warnEvery) {
		return
	}
	if !w.lastWarn.CompareAndSwap(last, now) {
		return // another goroutine is warning for this interval
	}
	var since uint64
	if prev := w.warned.Swap(total); prev < total {
		since = total - prev
	}
	w.logger.Warn("log records dropped",
		keyFunction, function, keyDropped, since, keyDroppedTotal, total, keyErr, err)
}

// functionOf is the function token of a logs subject.
func functionOf(subj string) string {
	if i := len(subject("")); len(subj) > i {
		return subj[i:]
	}
	return ""
}
