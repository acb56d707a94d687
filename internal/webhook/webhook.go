// Package webhook delivers the node's alerts to an HTTP endpoint: every
// alert stored in the alerts stream is POSTed as JSON, signed when a
// secret is set, and retried with backoff, through one durable consumer
// shared by every node of a cluster (each alert is sent once, and alerts
// raised while the receiver is down are sent when it is back).
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Options configure a Webhook.
type Options struct {
	// URL receives each alert as the body of a POST (application/json).
	URL string
	// Secret, when set, signs each body: the X-Moat-Signature header is
	// "sha256=" and the hex HMAC-SHA256 of the body under Secret.
	Secret string
	// Timeout bounds one delivery attempt (default 5 s).
	Timeout time.Duration
	// MaxAttempts bounds the deliveries of one alert (default 10); the
	// waits between them grow from 1 s to 5 minutes.
	MaxAttempts int
	Logger      *slog.Logger
	// Metrics, when set, gets the counter of delivery attempts by result
	// (moat_alert_webhook_deliveries_total).
	Metrics prometheus.Registerer
}

// Consumer is the durable consumer, shared by every node of a cluster,
// that feeds the webhook.
const Consumer = "moat-alert-webhook"

// A Webhook delivers alerts until Stop.
type Webhook struct {
	opts     Options
	log      *slog.Logger
	client   *http.Client
	attempts *prometheus.CounterVec
	cc       jetstream.ConsumeContext
}

// ValidateURL checks a webhook address: http or https, with a host.
func ValidateURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("alert webhook %q: want an http:// or https:// URL", s)
	}
	return nil
}

// Start delivers the alerts stream's new messages from now on (and those
// the shared consumer has not delivered yet) to opts.URL.
func Start(ctx context.Context, js jetstream.JetStream, stream string, opts Options) (*Webhook, error) {
	if err := ValidateURL(opts.URL); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 10
	}
	c, err := js.CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{
		Durable:       Consumer,
		Description:   "delivers alerts to the configured webhook",
		DeliverPolicy: jetstream.DeliverNewPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       opts.Timeout + 10*time.Second,
		MaxDeliver:    opts.MaxAttempts,
		MaxAckPending: 64,
	})
	if err != nil {
		return nil, fmt.Errorf("alert webhook consumer: %w", err)
	}
	w := &Webhook{opts: opts, log: opts.Logger, client: &http.Client{Timeout: opts.Timeout},
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "moat_alert_webhook_deliveries_total", Help: "Alert webhook delivery attempts, by result (ok, retry, failed).",
		}, []string{"result"})}
	if opts.Metrics != nil {
		if err := opts.Metrics.Register(w.attempts); err != nil {
			return nil, fmt.Errorf("alert webhook metrics: %w", err)
		}
	}
	w.cc, err = c.Consume(w.deliver)
	if err != nil {
		return nil, fmt.Errorf("alert webhook consumer: %w", err)
	}
	return w, nil
}

// Stop ends deliveries; one in progress finishes.
func (w *Webhook) Stop() { w.cc.Stop() }

func (w *Webhook) deliver(msg jetstream.Msg) {
	attempt := 1
	if md, err := msg.Metadata(); err == nil {
		attempt = int(md.NumDelivered)
	}
	err := w.post(msg.Data())
	switch {
	case err == nil:
		w.attempts.WithLabelValues("ok").Inc()
		_ = msg.Ack()
	case attempt >= w.opts.MaxAttempts:
		w.attempts.WithLabelValues("failed").Inc()
		w.log.Error("alert webhook: giving up on an alert", "attempts", attempt, "err", err)
		_ = msg.Term()
	default:
		w.attempts.WithLabelValues("retry").Inc()
		delay := time.Second << min(attempt-1, 9)
		if delay > 5*time.Minute {
			delay = 5 * time.Minute
		}
		w.log.Warn("alert webhook: delivery failed, will retry", "attempt", attempt, "retry_in", delay, "err", err)
		_ = msg.NakWithDelay(delay)
	}
}

var errStatus = errors.New("webhook answered with an error status")

func (w *Webhook) post(body []byte) error {
	req, err := http.NewRequest(http.MethodPost, w.opts.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "moat-alerts")
	if w.opts.Secret != "" {
		mac := hmac.New(sha256.New, []byte(w.opts.Secret))
		mac.Write(body)
		req.Header.Set("X-Moat-Signature", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%w: %s", errStatus, resp.Status)
	}
	return nil
}
