package node

import (
	"context"
	"errors"

	"moat.dev/moat/internal/events/schedule"
	"moat.dev/moat/internal/invoke"
	"moat.dev/moat/internal/registry"
)

// scheduleInvoker hands schedule ticks to the asynchronous queue, so a
// tick's event is as durable, retried and dead-lettered as any Event
// invocation.
type scheduleInvoker struct{ q *invoke.Queue }

func (s scheduleInvoker) Enqueue(ctx context.Context, f schedule.Firing) error {
	err := s.q.EnqueueARN(ctx, f.Target, f.Payload, invoke.Event{RequestID: f.RequestID, Source: f.Source})
	if errors.Is(err, registry.ErrNotFound) {
		return &schedule.TargetError{Code: "ResourceNotFoundException", Err: err}
	}
	return err
}

func (s scheduleInvoker) DeadLetter(ctx context.Context, queueArn string, body []byte, attrs map[string]string) error {
	return s.q.DeadLetter(ctx, queueArn, body, attrs)
}
