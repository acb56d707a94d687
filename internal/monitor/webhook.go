package monitor

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
)

// WebhookOptions configure the alert webhook.
type WebhookOptions struct {
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
}

// webhookConsumer is the durable consumer, shared by every node of a
// cluster, that feeds the webhook: each alert is sent once, and alerts
// raised while the receiver is down are sent when it is back.
const webhookConsumer = "moat-alert-webhook"

type webhook struct {
	opts   WebhookOptions
	log    *slog.Logger
	client *http.Client
	met    *metrics
	cc     jetstream.ConsumeContext
}

// ValidateWebhookURL checks a webhook address: http or https, with a host.
func ValidateWebhookURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("alert webhook %q: want an http:// or https:// URL", s)
	}
	return nil
}

func newWebhook(ctx context.Context, js jetstream.JetStream, stream string, opts WebhookOptions, log *slog.Logger, met *metrics) (*webhook, error) {
	if err := ValidateWebhookURL(opts.URL); err != nil {
		return nil, err
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 10
	}
	c, err := js.CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{
		Durable:       webhookConsumer,
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
	w := &webhook{opts: opts, log: log, met: met, client: &http.Client{Timeout: opts.Timeout}}
	w.cc, err = c.Consume(w.deliver)
	if err != nil {
		return nil, fmt.Errorf("alert webhook consumer: %w", err)
	}
	go func() {
		<-ctx.Done()
		w.cc.Stop()
	}()
	return w, nil
}

func (w *webhook) deliver(msg jetstream.Msg) {
	attempt := 1
	if md, err := msg.Metadata(); err == nil {
		attempt = int(md.NumDelivered)
	}
	err := w.post(msg.Data())
	switch {
	case err == nil:
		w.met.webhook.WithLabelValues("ok").Inc()
		_ = msg.Ack()
	case attempt >= w.opts.MaxAttempts:
		w.met.webhook.WithLabelValues("failed").Inc()
		w.log.Error("alert webhook: giving up on an alert", "attempts", attempt, "err", err)
		_ = msg.Term()
	default:
		w.met.webhook.WithLabelValues("retry").Inc()
		delay := time.Second << min(attempt-1, 9)
		if delay > 5*time.Minute {
			delay = 5 * time.Minute
		}
		w.log.Warn("alert webhook: delivery failed, will retry", "attempt", attempt, "retry_in", delay, "err", err)
		_ = msg.NakWithDelay(delay)
	}
}

var errStatus = errors.New("webhook answered with an error status")

func (w *webhook) post(body []byte) error {
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
