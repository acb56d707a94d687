package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// A Replay reads back what a stream holds on one subject (wildcards
// allowed), in publish order, through an ordered consumer of its own: the
// logs, alerts, forensic records and destination records are all read
// this way.
type Replay struct {
	Stream  string    // the stream's name
	Subject string    // the filter subject
	Since   time.Time // the first message stored at or after it; zero: the oldest retained
	// Follow keeps waiting for new messages after the last one stored.
	Follow bool
	// Idle is how long a Replay without Follow waits for the next message
	// before asking the server whether any are left (messages can age out
	// between the consumer's start and their delivery). Zero: one second.
	Idle time.Duration
}

// Run calls fn with each message's stream sequence and data. Without
// Follow it returns nil once it has passed the last message stored when
// it got there; with Follow it waits for new ones until ctx ends. In both
// cases, when ctx ends first Run returns ctx's error. An error of fn ends
// Run and is returned unchanged; failures of the store are wrapped with
// the stream's name. The consumer is deleted on return.
func (rp Replay) Run(ctx context.Context, js jetstream.JetStream, fn func(seq uint64, data []byte) error) error {
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{rp.Subject},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	}
	if !rp.Since.IsZero() {
		since := rp.Since
		cfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		cfg.OptStartTime = &since
	}
	idle := rp.Idle
	if idle <= 0 {
		idle = time.Second
	}
	fail := func(err error) error { return fmt.Errorf("read %s: %w", rp.Stream, err) }
	cons, err := js.OrderedConsumer(ctx, rp.Stream, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fail(err)
	}
	defer deleteConsumer(ctx, js, rp.Stream, cons)

	// The consumer counted, when made, the messages it has to deliver:
	// none means there is nothing to read yet.
	if !rp.Follow && cons.CachedInfo().NumPending == 0 {
		return nil
	}
	it, err := cons.Messages()
	if err != nil {
		return fail(err)
	}
	defer it.Stop()
	// Stop also ends the consumer's reset retries, which do not watch ctx.
	defer context.AfterFunc(ctx, it.Stop)()

	for {
		var msg jetstream.Msg
		if rp.Follow {
			msg, err = it.Next(jetstream.NextContext(ctx))
		} else {
			ictx, cancel := context.WithTimeout(ctx, idle)
			msg, err = it.Next(jetstream.NextContext(ictx))
			cancel()
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !rp.Follow && errors.Is(err, context.DeadlineExceeded) {
				// Idle: what was counted may have aged out before delivery.
				info, err := cons.Info(ctx)
				if err != nil {
					return fail(err)
				}
				if info.NumPending == 0 {
					return nil
				}
				continue
			}
			return fail(err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return fail(err)
		}
		if err := fn(meta.Sequence.Stream, msg.Data()); err != nil {
			return err
		}
		if !rp.Follow && meta.NumPending == 0 {
			return nil
		}
	}
}

// deleteConsumer removes the server side of a finished replay at once
// rather than leaving it for the inactivity threshold to reap.
func deleteConsumer(ctx context.Context, js jetstream.JetStream, stream string, cons jetstream.Consumer) {
	info := cons.CachedInfo()
	if info == nil {
		return
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = js.DeleteConsumer(dctx, stream, info.Name) // else reaped when inactive
}

// WatchUpdates calls fn, in order, with every change made to the keys of
// kv matching keys (wildcards allowed) after the call, until ctx ends or
// the watch is closed. A nil entry (the end of the initial values) is not
// passed on. It returns an error only if the watch cannot start.
func WatchUpdates(ctx context.Context, kv jetstream.KeyValue, keys string, fn func(jetstream.KeyValueEntry)) error {
	w, err := kv.Watch(ctx, keys, jetstream.UpdatesOnly())
	if err != nil {
		return fmt.Errorf("watch %s: %w", keys, err)
	}
	defer w.Stop()
	for {
		select {
		case kve, ok := <-w.Updates():
			if !ok {
				return nil
			}
			if kve != nil {
				fn(kve)
			}
		case <-ctx.Done():
			return nil
		}
	}
}
