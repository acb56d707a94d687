package invoke

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"moat.dev/moat/internal/store"
)

// SetDestinations gives the stream holding queue-destination records, to
// read them back with ReadDestination.
func (q *Queue) SetDestinations(s jetstream.Stream) { q.dest = s }

// ReadDestination calls fn with every record delivered to the queue
// destination name, oldest first. Without follow it returns after the last
// stored record; with follow it waits for new ones until ctx ends.
func (q *Queue) ReadDestination(ctx context.Context, name string, follow bool, fn func([]byte) error) error {
	if q.dest == nil {
		return errors.New("read destination: no destinations stream")
	}
	cons, err := q.dest.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{store.SubjectDest + "." + name},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("read destination: %w", err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("read destination: %w", err)
	}
	remaining := info.NumPending
	if !follow && remaining == 0 {
		return nil
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("read destination: %w", err)
	}
	defer it.Stop()
	go func() {
		<-ctx.Done()
		it.Stop()
	}()
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return ctx.Err()
			}
			return fmt.Errorf("read destination: %w", err)
		}
		if err := fn(m.Data()); err != nil {
			return err
		}
		if !follow {
			remaining--
			if remaining == 0 {
				return nil
			}
		}
	}
}
