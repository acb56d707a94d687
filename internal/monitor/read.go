package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"moat.dev/moat/internal/detect"
	"moat.dev/moat/internal/store"
)

// ErrNoRecord is returned by Trace when no record of the request is kept:
// the id is unknown or expired, or the invocation did nothing the sensor
// reports and ran on another node (or before a restart).
var ErrNoRecord = errors.New("no record of this request")

// Trace returns the stored records of a request, oldest first: one per
// attempt (an asynchronous invocation retried has several). Records
// outlive their instance; they are kept for the trace retention.
func (m *Monitor) Trace(ctx context.Context, requestID string) ([]Record, error) {
	if !RequestIDPattern.MatchString(requestID) {
		return nil, fmt.Errorf("invalid request id %q", requestID)
	}
	var out []Record
	err := m.readSubject(ctx, m.opts.TraceStream, m.opts.TraceSubject+"."+requestID, time.Time{}, false, func(b []byte) error {
		var r Record
		if err := json.Unmarshal(b, &r); err != nil {
			return fmt.Errorf("decode record: %w", err)
		}
		out = append(out, r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		if r, ok := m.quiet.get(requestID); ok {
			return []Record{r}, nil
		}
		return nil, ErrNoRecord
	}
	return out, nil
}

// ReadAlerts calls fn with the stored alerts, oldest first, of one
// function (or all when function is empty) since a time; with follow it
// then waits for new ones until ctx ends, and returns ctx's error.
func (m *Monitor) ReadAlerts(ctx context.Context, function string, since time.Time, follow bool, fn func(detect.Alert) error) error {
	subject := m.opts.AlertSubject + ".>"
	if function != "" {
		subject = m.opts.AlertSubject + "." + subjectToken(function)
	}
	return m.readSubject(ctx, m.opts.AlertStream, subject, since, follow, func(b []byte) error {
		var a detect.Alert
		if err := json.Unmarshal(b, &a); err != nil {
			m.log.Warn("skip undecodable alert", "err", err)
			return nil
		}
		return fn(a)
	})
}

// readSubject delivers a stream's messages on subject in order; without
// follow it stops at the last one stored.
func (m *Monitor) readSubject(ctx context.Context, stream, subject string, since time.Time, follow bool, fn func([]byte) error) error {
	rp := store.Replay{Stream: stream, Subject: subject, Since: since, Follow: follow}
	return rp.Run(ctx, m.opts.JS, func(_ uint64, data []byte) error { return fn(data) })
}
