package invoke

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"moat.dev/moat/internal/registry"
	"moat.dev/moat/internal/store"
)

// Headers of a queued invocation.
const (
	hdrFunction  = "Moat-Function"
	hdrQualifier = "Moat-Qualifier"
	hdrRequestID = "Moat-Request-Id"
	hdrContext   = "Moat-Client-Context"
	hdrEnqueued  = "Moat-Enqueued"   // RFC 3339 nano
	hdrAttempt   = "Moat-Attempt"    // 1-based
	hdrNotBefore = "Moat-Not-Before" // RFC 3339 nano: retry backoff
	hdrSource    = "Moat-Source"     // the event source, when not the Invoke API
)

// ackWait is how long an event handed to a node stays its own without a
// sign of life; a node that dies gives its events back after this long.
const ackWait = 5 * time.Second

// QueueOptions configure the asynchronous queue.
type QueueOptions struct {
	JS     jetstream.JetStream
	Stream jetstream.Stream
	// RetryDelays are the waits before the first and second retry
	// (default 1 and 2 minutes, as Lambda).
	RetryDelays []time.Duration
	// Workers bounds queued invocations run at once on this node (default 64).
	Workers int
	// ThrottleDelay is how long a throttled event waits before it is tried
	// again (default 1 s). Throttles do not count as attempts.
	ThrottleDelay time.Duration
	Logger        *slog.Logger
}

// Queue accepts Event invocations into a durable JetStream work queue and
// runs them. An event is acknowledged (removed) only once it succeeded or
// failed for good and its destination has the record, so an accepted event
// survives a crash of the function and of moat itself.
type Queue struct {
	d    *Dispatcher
	opts QueueOptions
	log  *slog.Logger

	dest   jetstream.Stream
	cc     jetstream.ConsumeContext
	sem    chan struct{}
	wg     sync.WaitGroup
	ctx    context.Context
	cancel context.CancelFunc
}

// NewQueue returns a Queue; call Start to begin running events.
func NewQueue(d *Dispatcher, opts QueueOptions) *Queue {
	if len(opts.RetryDelays) == 0 {
		opts.RetryDelays = []time.Duration{time.Minute, 2 * time.Minute}
	}
	if opts.Workers <= 0 {
		opts.Workers = 64
	}
	if opts.ThrottleDelay <= 0 {
		opts.ThrottleDelay = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Queue{d: d, opts: opts, log: opts.Logger, sem: make(chan struct{}, opts.Workers), ctx: ctx, cancel: cancel}
}

// Enqueue stores an Event invocation durably and returns its request id.
// It returns only after JetStream acknowledged the write.
func (q *Queue) Enqueue(ctx context.Context, t *registry.Target, qualifier string, payload []byte, clientContext string) (string, error) {
	reqID := NewRequestID()
	return reqID, q.enqueue(ctx, t, qualifier, payload, clientContext, reqID, "")
}

// Event is an event source's invocation: its request id, chosen by the
// source so that the same event handed over twice (by two nodes, or again
// after a crash) is queued once, and the source recorded with it
// ("schedule:default/nightly").
type Event struct {
	RequestID string
	Source    string
}

// EnqueueEvent stores an event source's invocation durably, deduplicated by
// its request id within JetStream's duplicate window. It returns only after
// JetStream acknowledged the write (or recognised a duplicate).
func (q *Queue) EnqueueEvent(ctx context.Context, t *registry.Target, qualifier string, payload []byte, ev Event) error {
	if ev.RequestID == "" {
		return errors.New("enqueue event: no request id")
	}
	return q.enqueue(ctx, t, qualifier, payload, "", ev.RequestID, ev.Source)
}

func (q *Queue) enqueue(ctx context.Context, t *registry.Target, qualifier string, payload []byte, clientContext, reqID, source string) error {
	msg := nats.NewMsg(store.SubjectAsync + "." + t.Config.FunctionName)
	msg.Data = payload
	msg.Header.Set(hdrFunction, t.Config.FunctionName)
	msg.Header.Set(hdrQualifier, qualifier)
	msg.Header.Set(hdrRequestID, reqID)
	msg.Header.Set(hdrEnqueued, time.Now().UTC().Format(time.RFC3339Nano))
	msg.Header.Set(hdrAttempt, "1")
	if clientContext != "" {
		msg.Header.Set(hdrContext, clientContext)
	}
	if source != "" {
		msg.Header.Set(hdrSource, source)
	}
	msg.Header.Set(jetstream.MsgIDHeader, reqID)
	if _, err := q.opts.JS.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("enqueue event: %w", err)
	}
	return nil
}

// Start begins consuming the queue with a durable consumer shared by every
// node of the cluster.
func (q *Queue) Start(ctx context.Context) error {
	cons, err := q.opts.Stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       "moat-async",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait, // kept alive with InProgress while running
		MaxDeliver:    -1,
		MaxAckPending: q.opts.Workers * 4,
	})
	if err != nil {
		return fmt.Errorf("start async queue: %w", err)
	}
	q.cc, err = cons.Consume(func(m jetstream.Msg) {
		q.sem <- struct{}{}
		q.wg.Add(1)
		go func() {
			defer func() { <-q.sem; q.wg.Done() }()
			q.handle(m)
		}()
	}, jetstream.PullMaxMessages(q.opts.Workers))
	if err != nil {
		return fmt.Errorf("start async queue: %w", err)
	}
	return nil
}

// Stop stops taking events and waits, until ctx ends, for the running ones.
// Events not acknowledged stay in the queue for the next start.
func (q *Queue) Stop(ctx context.Context) error {
	if q.cc != nil {
		q.cc.Stop()
	}
	done := make(chan struct{})
	go func() { q.wg.Wait(); close(done) }()
	select {
	case <-done:
		q.cancel()
		return nil
	case <-ctx.Done():
		q.cancel()
		return fmt.Errorf("stop async queue: %w", ctx.Err())
	}
}

func (q *Queue) handle(m jetstream.Msg) {
	h := m.Headers()
	fn, qual, reqID := h.Get(hdrFunction), h.Get(hdrQualifier), h.Get(hdrRequestID)
	attempt, _ := strconv.Atoi(h.Get(hdrAttempt))
	if attempt < 1 {
		attempt = 1
	}
	enq, _ := time.Parse(time.RFC3339Nano, h.Get(hdrEnqueued))
	log := q.log.With("function", fn, "request_id", reqID, "attempt", attempt)

	if nb, err := time.Parse(time.RFC3339Nano, h.Get(hdrNotBefore)); err == nil {
		if wait := time.Until(nb); wait > 0 {
			_ = m.NakWithDelay(wait)
			return
		}
	}
	t, err := q.d.opts.Resolver.Resolve(fn, qual)
	if err != nil {
		if errors.Is(err, registry.ErrNotFound) {
			log.Warn("dropping queued event: function no longer exists", "err", err)
			_ = m.Term()
			return
		}
		_ = m.NakWithDelay(q.opts.ThrottleDelay)
		return
	}
	if !enq.IsZero() && time.Since(enq) > time.Duration(t.Async.MaximumEventAgeInSeconds)*time.Second {
		q.finish(m, t, reqID, attempt-1, "EventAgeExceeded", nil)
		return
	}

	// Keep the message ours while the function runs.
	stop := make(chan struct{})
	go func() {
		tick := time.NewTicker(ackWait / 3)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				_ = m.InProgress()
			}
		}
	}()
	resp, err := q.d.InvokeTarget(q.ctx, t, &Request{
		FunctionName:  fn,
		Qualifier:     qual,
		Payload:       m.Data(),
		ClientContext: h.Get(hdrContext),
		RequestID:     reqID,
		Source:        cmp.Or(h.Get(hdrSource), "async"),
	})
	close(stop)
	switch {
	case errors.Is(err, ErrThrottled):
		_ = m.NakWithDelay(q.opts.ThrottleDelay)
		return
	case errors.Is(err, ErrClosed):
		_ = m.Nak()
		return
	case err != nil:
		log.Error("queued invocation failed on the platform", "err", err)
		resp = nil
	}
	if resp != nil && resp.FunctionError == "" {
		q.finish(m, t, reqID, attempt, "Success", resp)
		return
	}
	if attempt <= t.Async.MaximumRetryAttempts {
		delay := q.opts.RetryDelays[min(attempt-1, len(q.opts.RetryDelays)-1)]
		retry := nats.NewMsg(m.Subject())
		retry.Data = m.Data()
		for k, v := range h {
			retry.Header[k] = v
		}
		retry.Header.Set(hdrAttempt, strconv.Itoa(attempt+1))
		retry.Header.Set(hdrNotBefore, time.Now().Add(delay).UTC().Format(time.RFC3339Nano))
		retry.Header.Set(jetstream.MsgIDHeader, reqID+"-"+strconv.Itoa(attempt+1))
		if _, err := q.opts.JS.PublishMsg(context.Background(), retry); err != nil {
			log.Error("requeue for retry failed; redelivering", "err", err)
			_ = m.NakWithDelay(delay)
			return
		}
		_ = m.DoubleAck(context.Background())
		log.Info("queued invocation failed; retry scheduled", "delay", delay)
		return
	}
	q.finish(m, t, reqID, attempt, "RetriesExhausted", resp)
}

// record is the invocation record Lambda sends to destinations.
type record struct {
	Version         string          `json:"version"`
	Timestamp       string          `json:"timestamp"`
	RequestContext  requestContext  `json:"requestContext"`
	RequestPayload  json.RawMessage `json:"requestPayload"`
	ResponseContext responseContext `json:"responseContext"`
	ResponsePayload json.RawMessage `json:"responsePayload,omitempty"`
}

type requestContext struct {
	RequestID              string `json:"requestId"`
	FunctionArn            string `json:"functionArn"`
	Condition              string `json:"condition"`
	ApproximateInvokeCount int    `json:"approximateInvokeCount"`
}

type responseContext struct {
	StatusCode      int    `json:"statusCode"`
	ExecutedVersion string `json:"executedVersion"`
	FunctionError   string `json:"functionError,omitempty"`
}

// finish sends the event's record to its destination, if any, and removes
// the event from the queue.
func (q *Queue) finish(m jetstream.Msg, t *registry.Target, reqID string, attempts int, condition string, resp *Response) {
	dest := t.Async.OnFailure
	if condition == "Success" {
		dest = t.Async.OnSuccess
	}
	if dest != "" {
		rec := record{
			Version:        "1.0",
			Timestamp:      time.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
			RequestContext: requestContext{reqID, t.InvokedARN, condition, attempts},
			RequestPayload: jsonOrString(m.Data()),
			ResponseContext: responseContext{
				StatusCode:      200,
				ExecutedVersion: t.Config.Version,
			},
		}
		if resp != nil {
			rec.ResponseContext.FunctionError = resp.FunctionError
			rec.ResponsePayload = jsonOrString(resp.Payload)
		}
		body, _ := json.Marshal(rec)
		if err := q.deliver(dest, body); err != nil {
			q.log.Error("destination delivery failed; will retry", "function", t.Config.FunctionName, "request_id", reqID, "destination", dest, "err", err)
			_ = m.NakWithDelay(q.opts.ThrottleDelay)
			return
		}
	} else if condition != "Success" {
		q.log.Warn("queued invocation failed for good; no on-failure destination", "function", t.Config.FunctionName, "request_id", reqID, "condition", condition)
	}
	_ = m.DoubleAck(context.Background())
}

// deliver sends a record to a destination ARN: a Lambda function (queued as
// an Event invocation of it) or a queue ARN (stored in moat's destinations
// stream under the queue's name).
func (q *Queue) deliver(arn string, body []byte) error {
	parts := strings.Split(arn, ":")
	if len(parts) < 6 {
		return fmt.Errorf("bad destination %q", arn)
	}
	switch parts[2] {
	case "lambda":
		t, qual, err := q.resolveARN(arn)
		if err != nil {
			return err
		}
		return q.enqueue(context.Background(), t, qual, body, "", NewRequestID(), "")
	case "sqs":
		_, err := q.opts.JS.Publish(context.Background(), store.SubjectDest+"."+parts[5], body)
		return err
	}
	return fmt.Errorf("unsupported destination %q", arn)
}

// EnqueueARN is EnqueueEvent for a function named by its ARN, qualified or
// not. Errors match registry.ErrNotFound if the function does not exist.
func (q *Queue) EnqueueARN(ctx context.Context, arn string, payload []byte, ev Event) error {
	t, qual, err := q.resolveARN(arn)
	if err != nil {
		return err
	}
	return q.EnqueueEvent(ctx, t, qual, payload, ev)
}

// resolveARN resolves a function ARN and returns the qualifier it names.
func (q *Queue) resolveARN(arn string) (*registry.Target, string, error) {
	qual := ""
	if parts := strings.Split(arn, ":"); len(parts) >= 8 {
		qual = parts[7]
	}
	t, err := q.d.opts.Resolver.Resolve(arn, "")
	return t, qual, err
}

func jsonOrString(b []byte) json.RawMessage {
	if len(b) == 0 {
		return nil
	}
	if json.Valid(b) {
		return b
	}
	s, _ := json.Marshal(string(b))
	return s
}
