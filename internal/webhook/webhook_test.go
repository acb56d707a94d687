package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"moat.dev/moat/internal/store"
)

func TestDeliversRetriesAndSigns(t *testing.T) {
	var (
		mu       sync.Mutex
		attempts int
		got      []byte
		sig      string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		attempts++
		if attempts < 3 {
			http.Error(w, "not now", http.StatusServiceUnavailable)
			return
		}
		got, sig = b, r.Header.Get("X-Moat-Signature")
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := store.Open(ctx, store.Options{DataDir: t.TempDir(), IdleCollect: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	reg := prometheus.NewRegistry()
	w, err := Start(ctx, st.JS, store.StreamAlerts, Options{URL: srv.URL, Secret: "s3cret", Timeout: time.Second, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	alert := `{"rule":"environ-read","function":"fn"}`
	if _, err := st.JS.Publish(ctx, store.SubjectAlerts+".fn", []byte(alert)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		done := got != nil
		mu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the webhook's third attempt did not come")
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if string(got) != alert {
		t.Errorf("body %s, want the stored alert %s", got, alert)
	}
	mac := hmac.New(sha256.New, []byte("s3cret"))
	mac.Write(got)
	if want := "sha256=" + hex.EncodeToString(mac.Sum(nil)); sig != want {
		t.Errorf("signature %q, want %q", sig, want)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "moat_alert_webhook_deliveries_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			counts[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	if counts["ok"] != 1 || counts["retry"] != 2 || counts["failed"] != 0 {
		t.Errorf("delivery counters %v, want ok 1, retry 2", counts)
	}
}

func TestValidateURL(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:8080/hook", "https://alerts.example/x"} {
		if err := ValidateURL(u); err != nil {
			t.Errorf("ValidateURL(%q) = %v", u, err)
		}
	}
	for _, u := range []string{"", "ftp://x", "http://", "/relative", "::"} {
		if err := ValidateURL(u); err == nil {
			t.Errorf("ValidateURL(%q) accepted", u)
		}
	}
	if _, err := Start(context.Background(), nil, store.StreamAlerts, Options{URL: "ftp://x"}); err == nil {
		t.Error("Start with an ftp URL succeeded")
	}
}
