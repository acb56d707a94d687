package logs

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"moat.dev/moat/internal/store"
)

// Reader reads functions' logs from the logs stream. It is safe for
// concurrent use; every Read has its own consumer.
type Reader struct {
	js   jetstream.JetStream
	idle time.Duration // store.Replay.Idle
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
	rp := store.Replay{Stream: store.StreamLogs, Subject: subject(function), Since: since, Follow: follow, Idle: r.idle}
	return rp.Run(ctx, r.js, func(seq uint64, data []byte) error {
		var rec Record
		if err := json.Unmarshal(data, &rec); err != nil {
			return fmt.Errorf("read logs of %s: decode record %d: %w", function, seq, err)
		}
		return fn(rec)
	})
}
