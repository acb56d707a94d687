package node

import (
	"context"

	"moat.dev/moat/internal/events/schedule"
	"moat.dev/moat/internal/invoke"
)

// scheduleInvoker hands schedule ticks to the asynchronous queue, so a
// tick's event is as durable, retried and dead-lettered as any Event
// invocation.
type scheduleInvoker struct{ q *invoke.Queue }

func (s scheduleInvoker) Enqueue(ctx context.Context, f schedule.Firing) error {
	return s.q.EnqueueARN(ctx, f.Target, f.Payload, invoke.Event{RequestID: f.RequestID, Source: f.Source})
}

func (s scheduleInvoker) DeadLetter(ctx context.Context, queueArn string, body []byte, attrs map[string]string) error {
	return s.q.DeadLetter(ctx, queueArn, body, attrs)
}
