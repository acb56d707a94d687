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
// with every wall the host offers, and then its teardown: built on demand,
// and taken from a pool of pre-built shells (the pool refills between
// iterations, as it does between cold starts that are not a burst). Each
// phase's median is reported (SpawnTimes); runtime-init is the
// bootstrap's own start, from the exec to its first invocation/next.
//
//	go test -run '^$' -bench Spawn -benchtime 200x ./internal/sandbox/
func BenchmarkSpawn(b *testing.B) {
	for _, mem := range []int{128, 1769} {
		for _, pool := range []int{0, 2} {
			b.Run(fmt.Sprintf("mem=%d/pool=%d", mem, pool), func(b *testing.B) { benchSpawn(b, mem, pool) })
		}
	}
}

func benchSpawn(b *testing.B, mem, poolSize int) {
	fixture.RequireRoot(b)
	m, err := NewManager(Options{CgroupParent: "moat-bench", Namespaces: true, Landlock: true, Seccomp: true, Pool: poolSize})
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
	phases := map[string][]time.Duration{}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if poolSize > 0 {
			b.StopTimer()
			waitPool(b, m)
			b.StartTimer()
		}
		t0 := time.Now()
		inst, err := m.Spawn(context.Background(), Spec{ID: fmt.Sprintf("bench-%d", i), CodeDir: dir, Env: env, MemoryMB: mem})
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
		total := time.Since(t0)
		ready = append(ready, total)
		if err := inst.InitDone(); err != nil { // as the dispatcher does
			b.Fatal(err)
		}
		ti := inst.Times
		if ti.Pooled != (poolSize > 0) {
			b.Fatalf("pooled %v with a pool of %d", ti.Pooled, poolSize)
		}
		spawned := ti.Prepare + ti.Clone + ti.Host + ti.Claim + ti.Walls
		for name, d := range map[string]time.Duration{
			"prepare": ti.Prepare, "clone": ti.Clone, "host": ti.Host, "claim": ti.Claim, "walls": ti.Walls,
			"root": ti.Root, "privileges": ti.Privileges, "landlock": ti.Landlock, "seccomp": ti.Seccomp,
			"runtime-init": total - spawned,
		} {
			phases[name] = append(phases[name], d)
		}
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
	for name, d := range phases {
		b.ReportMetric(float64(pctl(d, 50).Microseconds())/1000, "p50-"+name+"-ms")
	}
}

// waitPool waits until the pool is full again.
func waitPool(b testing.TB, m *Manager) {
	b.Helper()
	for len(m.pool.ready) < cap(m.pool.ready) {
		select {
		case <-m.pool.filled:
		case <-time.After(10 * time.Second):
			b.Fatal("the pool did not refill within 10s")
		}
	}
}

func pctl(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}
