package logs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"moat.dev/moat/internal/store"
)

// Reader reads functions' logs from the logs stream. It is safe for
// concurrent use; every Read has its own consumer.
type Reader struct {
	js jetstream.JetStream
	// idle is how long a non-following Read waits for the next record before
	// asking the server whether any are left. It only matters when records
	// vanish (age or size limits) between the consumer's start and their
	// delivery; otherwise the end is seen on the last record.
	idle time.Duration
}

// NewReader returns a Reader using js.
func NewReader(js jetstream.JetStream) *Reader {
	return &Reader{js: js, idle: time.Second}
}

// Read calls fn, in publish order, with each record of function that the
// stream received at or after since (the zero time: from the oldest record
// retained). Without follow, Read returns nil once it has passed the last
// record stored when it got there. With follow, it keeps waiting for new
// records until ctx ends and then returns ctx's error.
//
// Read returns ErrInvalidFunctionName for a name outside
// [A-Za-z0-9_-]{1,64}, fn's error unchanged if fn fails, and otherwise
// wrapped errors from the store or from decoding a stored record.
func (r *Reader) Read(ctx context.Context, function string, since time.Time, follow bool, fn func(Record) error) error {
	if !validFunctionName(function) {
		return fmt.Errorf("read logs of %q: %w", function, ErrInvalidFunctionName)
	}
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subject(function)},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	}
	if !since.IsZero() {
		cfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		cfg.OptStartTime = &since
	}
	cons, err := r.js.OrderedConsumer(ctx, store.StreamLogs, cfg)
	if err != nil {
		return fmt.Errorf("read logs of %s: %w", function, err)
	}
	defer r.deleteConsumer(ctx, cons)

	// The consumer counted, when made, the records it has to deliver: none
	// means there is nothing to read yet.
	if !follow && cons.CachedInfo().NumPending == 0 {
		return nil
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("read logs of %s: %w", function, err)
	}
	defer it.Stop()
	// Stop also ends the consumer's reset retries, which do not watch ctx.
	defer context.AfterFunc(ctx, it.Stop)()

	for {
		msg, err := r.next(ctx, it, follow)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !follow && errors.Is(err, context.DeadlineExceeded) {
				// Idle: the records counted may have aged out before delivery.
				info, err := cons.Info(ctx)
				if err != nil {
					return fmt.Errorf("read logs of %s: %w", function, err)
				}
				if info.NumPending == 0 {
					return nil
				}
				continue
			}
			return fmt.Errorf("read logs of %s: %w", function, err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("read logs of %s: %w", function, err)
		}
		var rec Record
		if err := json.Unmarshal(msg.Data(), &rec); err != nil {
			return fmt.Errorf("read logs of %s: decode record %d: %w", function, meta.Sequence.Stream, err)
		}
		if err := fn(rec); err != nil {
			return err
		}
		if !follow && meta.NumPending == 0 {
			return nil
		}
	}
}

// next waits for the next message: until ctx ends when following, and at
// most r.idle otherwise.
func (r *Reader) next(ctx context.Context, it jetstream.MessagesContext, follow bool) (jetstream.Msg, error) {
	if follow {
		return it.Next(jetstream.NextContext(ctx))
	}
	ictx, cancel := context.WithTimeout(ctx, r.idle)
	defer cancel()
	return it.Next(jetstream.NextContext(ictx))
}

// deleteConsumer removes the server side of a finished Read at once rather
// than leaving it for the inactivity threshold to reap.
func (r *Reader) deleteConsumer(ctx context.Context, cons jetstream.Consumer) {
	info := cons.CachedInfo()
	if info == nil {
		return
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = r.js.DeleteConsumer(dctx, store.StreamLogs, info.Name) // else reaped when inactive
}
