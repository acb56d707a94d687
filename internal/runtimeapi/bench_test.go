package runtimeapi_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"moat.dev/moat/internal/runtimeapi"
)

// BenchmarkInvokeRoundTrip measures moat's own cost of one invocation
// through the Runtime API: Invoke, the runtime's GET next and POST response
// over one keep-alive loopback connection (as aws-lambda-go makes them), and
// Invoke's return. The runtime does no work, so this is the per-invocation
// overhead a function pays on a warm instance.
func BenchmarkInvokeRoundTrip(b *testing.B) {
	for _, size := range []int{64, 64 << 10, 1 << 20} {
		b.Run("payload="+byteSize(size), func(b *testing.B) {
			api := runtimeapi.New()
			ts := httptest.NewServer(api)
			defer ts.Close()
			defer api.Close()
			// The client aws-lambda-go uses: the default transport, no proxy.
			tr := http.DefaultTransport.(*http.Transport).Clone()
			tr.Proxy = nil
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr}
			// A runtime that fails closes the API, so that Invoke returns.
			runtimeDone := make(chan error, 1)
			go func() {
				err := echoRuntime(ts.URL, client)
				api.Close()
				runtimeDone <- err
			}()

			payload := bytes.Repeat([]byte("x"), size)
			payload[0], payload[size-1] = '"', '"'
			inv := &runtimeapi.Invocation{
				Payload:    payload,
				Deadline:   time.Now().Add(time.Hour),
				InvokedARN: "arn:aws:lambda:us-east-1:000000000000:function:bench",
				TraceID:    "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0",
			}
			ctx := b.Context()
			b.SetBytes(int64(size))
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				n++
				inv.RequestID = strconv.Itoa(n)
				res, err := api.Invoke(ctx, inv)
				if err != nil {
					api.Close()
					b.Fatalf("invocation %d: %v (runtime: %v)", n, err, <-runtimeDone)
				}
				if len(res.Payload) != size || res.IsError() {
					b.Fatalf("invocation %d: %d bytes back, error %v", n, len(res.Payload), res.IsError())
				}
			}
			b.StopTimer()
			api.Close()
			if err := <-runtimeDone; err != nil {
				b.Fatalf("runtime: %v", err)
			}
		})
	}
}

func byteSize(n int) string {
	switch {
	case n >= 1<<20:
		return strconv.Itoa(n>>20) + "MiB"
	case n >= 1<<10:
		return strconv.Itoa(n>>10) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}
