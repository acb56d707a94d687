package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"moat.dev/moat/internal/detect"
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
// then waits for new ones until ctx ends.
func (m *Monitor) ReadAlerts(ctx context.Context, function string, since time.Time, follow bool, fn func(detect.Alert) error) error {
	subject := m.opts.AlertSubject + ".>"
	if function != "" {
		subject = m.opts.AlertSubject + "." + subjectToken(function)
	}
	return m.readSubject(ctx, m.opts.AlertStream, subject, since, follow, func(b []byte) error {
		var a detect.Alert
		if err := json.Unmarshal(b, &a); err != nil {
			m.log.Warn("monitor: skip undecodable alert", "err", err)
			return nil
		}
		return fn(a)
	})
}

// readSubject delivers a stream's messages on subject in order through an
// ordered consumer; without follow it stops at the last one stored.
func (m *Monitor) readSubject(ctx context.Context, stream, subject string, since time.Time, follow bool, fn func([]byte) error) error {
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}, DeliverPolicy: jetstream.DeliverAllPolicy}
	if !since.IsZero() {
		cfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		cfg.OptStartTime = &since
	}
	c, err := m.opts.JS.OrderedConsumer(ctx, stream, cfg)
	if err != nil {
		return fmt.Errorf("read %s: %w", stream, err)
	}
	if !follow {
		info, err := c.Info(ctx)
		if err != nil {
			return fmt.Errorf("read %s: %w", stream, err)
		}
		if info.NumPending == 0 {
			return nil
		}
	}
	for {
		var (
			batch jetstream.MessageBatch
			err   error
		)
		if follow {
			batch, err = c.Fetch(256, jetstream.FetchMaxWait(5*time.Second))
		} else {
			// What is stored is there now: take it without waiting
			// for a full batch.
			batch, err = c.FetchNoWait(256)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("read %s: %w", stream, err)
		}
		var last jetstream.Msg
		for msg := range batch.Messages() {
			last = msg
			if err := fn(msg.Data()); err != nil {
				return err
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("read %s: %w", stream, err)
		}
		if ctx.Err() != nil {
			return nil
		}
		if !follow {
			if last == nil {
				return nil
			}
			md, err := last.Metadata()
			if err != nil || md.NumPending == 0 {
				return nil
			}
		}
	}
}
