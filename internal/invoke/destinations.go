package invoke

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
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
	rp := store.Replay{Stream: q.dest.CachedInfo().Config.Name, Subject: store.SubjectDest + "." + name, Follow: follow}
	return rp.Run(ctx, q.opts.JS, func(_ uint64, data []byte) error { return fn(data) })
}

// DeadLetter stores body in the queue destination named by queueArn
// (arn:aws:sqs:<region>:<account>:<name>), with attrs as the record's
// Moat-Attr-<name> headers: what an event source could not deliver.
func (q *Queue) DeadLetter(ctx context.Context, queueArn string, body []byte, attrs map[string]string) error {
	parts := strings.Split(queueArn, ":")
	if len(parts) != 6 || parts[2] != "sqs" || parts[5] == "" {
		return fmt.Errorf("dead letter: %q is not a queue ARN", queueArn)
	}
	m := nats.NewMsg(store.SubjectDest + "." + parts[5])
	m.Data = body
	for k, v := range attrs {
		m.Header.Set("Moat-Attr-"+k, v)
	}
	if _, err := q.opts.JS.PublishMsg(ctx, m); err != nil {
		return fmt.Errorf("dead letter: %w", err)
	}
	return nil
}
