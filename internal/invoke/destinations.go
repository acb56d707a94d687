package invoke

import (
	"context"
	"errors"

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
