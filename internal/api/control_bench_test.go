package api

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"moat.dev/moat/internal/registry"
)

// BenchmarkListFunctions lists from 1,000 functions (each with sealed
// environment variables, decrypted for the response) through the HTTP
// handler, and reports the 99th percentile latency of one request.
func BenchmarkListFunctions(b *testing.B) {
	f := newCtlFixture(b)
	zip := ctlZip(b)
	ctx := context.Background()
	for i := range 1000 {
		_, err := f.reg.CreateFunction(ctx, registry.CreateInput{
			FunctionName: fmt.Sprintf("bench-%04d", i),
			Runtime:      "provided.al2023",
			Handler:      "bootstrap",
			ZipFile:      zip,
			Environment:  map[string]string{"TABLE": "orders", "STAGE": "prod"},
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	for _, bc := range []struct{ name, query string }{
		{"page-50", ""},
		{"page-1000", "?MaxItems=1000"},
		{"page-50-from-middle", "?Marker=" + markerAfter(b, f, 500)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var lat []time.Duration
			for b.Loop() {
				req := httptest.NewRequest("GET", "/2015-03-31/functions"+bc.query, nil)
				rec := httptest.NewRecorder()
				start := time.Now()
				f.srv.ServeHTTP(rec, req)
				lat = append(lat, time.Since(start))
				if rec.Code != http.StatusOK {
					b.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
			}
			slices.Sort(lat)
			p99 := lat[len(lat)*99/100]
			b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
		})
	}
}

// markerAfter returns the marker that continues after the first n functions.
func markerAfter(b *testing.B, f *ctlFixture, n int) string {
	_, next, err := f.reg.List("", n)
	if err != nil || next == "" {
		b.Fatalf("marker: %q %v", next, err)
	}
	return next
}

// BenchmarkGetFunction is the read path of one function through the handler.
func BenchmarkGetFunction(b *testing.B) {
	f := newCtlFixture(b)
	f.create(b, "get", map[string]any{"Environment": map[string]any{"Variables": map[string]string{"K1": "v"}}})
	for b.Loop() {
		req := httptest.NewRequest("GET", "/2015-03-31/functions/get", nil)
		rec := httptest.NewRecorder()
		f.srv.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Code)
		}
	}
}
