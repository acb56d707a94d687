package sandbox

import (
	"context"
	"fmt"
	"net/http"

	"path/filepath"
	"slices"
	"testing"
	"time"

	"moat.dev/moat/internal/codepkg"
	"moat.dev/moat/internal/fixture"
	"moat.dev/moat/internal/runtimeapi"
)

// BenchmarkSpawn measures a hardened instance from Spawn to its runtime's
// first invocation/next (aws-lambda-go's echo example, a static binary),
// with every wall the host offers, and then its teardown.
//
//	go test -run '^$' -bench Spawn -benchtime 200x ./internal/sandbox/
func BenchmarkSpawn(b *testing.B) {
	fixture.RequireRoot(b)
	m, err := NewManager(Options{CgroupParent: "moat-bench", Namespaces: true, Landlock: true, Seccomp: true})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		m.Close()
		m.removeParent()
	}()
	dir := filepath.Join(b.TempDir(), "code")
	if _, err := codepkg.Unpack(fixture.GoZip(b, "examples/echo-go"), dir, codepkg.Limits{}); err != nil {
		b.Fatal(err)
	}
	env := []string{"PATH=/usr/bin:/bin", "_HANDLER=bootstrap", "AWS_LAMBDA_FUNCTION_NAME=echo"}
	var ready, teardown []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		inst, err := m.Spawn(context.Background(), Spec{ID: fmt.Sprintf("bench-%d", i), CodeDir: dir, Env: env, MemoryMB: 128})
		if err != nil {
			b.Fatal(err)
		}
		api := runtimeapi.New()
		srv := &http.Server{Handler: api}
		go srv.Serve(inst.Listener)
		select {
		case <-api.Ready():
		case <-inst.Done():
			b.Fatalf("instance exited during init: %v", inst.ExitError())
		case <-time.After(10 * time.Second):
			b.Fatal("no invocation/next within 10s")
		}
		ready = append(ready, time.Since(t0))
		t1 := time.Now()
		api.Close()
		srv.Close()
		if err := inst.Close(); err != nil {
			b.Fatal(err)
		}
		teardown = append(teardown, time.Since(t1))
	}
	b.StopTimer()
	b.ReportMetric(float64(pctl(ready, 50).Microseconds())/1000, "p50-ready-ms")
	b.ReportMetric(float64(pctl(ready, 99).Microseconds())/1000, "p99-ready-ms")
	b.ReportMetric(float64(pctl(teardown, 50).Microseconds())/1000, "p50-teardown-ms")
}

func pctl(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}
