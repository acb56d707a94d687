package invoke

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"moat.dev/moat/internal/codepkg"
	"moat.dev/moat/internal/fixture"
	"moat.dev/moat/internal/registry"
	"moat.dev/moat/internal/sandbox"
)

// BenchmarkWarmInvoke compares a warm invocation of the aws-lambda-go echo
// example in a hardened instance (every wall) with the same function in a
// plain process, in one run, through the dispatcher and the Runtime API
// (no HTTP API in front).
//
//	go test -run '^$' -bench WarmInvoke -benchtime 20000x ./internal/invoke/
func BenchmarkWarmInvoke(b *testing.B) {
	fixture.RequireRoot(b)
	zip := fixture.GoZip(b, "examples/echo-go")
	dir := filepath.Join(b.TempDir(), "code")
	info, err := codepkg.Unpack(zip, dir, codepkg.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	for _, hardened := range []bool{false, true} {
		b.Run(fmt.Sprintf("hardened=%v", hardened), func(b *testing.B) {
			mgr, err := sandbox.NewManager(sandbox.Options{CgroupParent: "moat-bench-invoke", Namespaces: hardened, Landlock: hardened, Seccomp: hardened})
			if err != nil {
				b.Fatal(err)
			}
			defer mgr.Close()
			res := &fakeResolver{targets: map[string]*registry.Target{}}
			res.targets["echo"] = &registry.Target{
				Config: &registry.Config{FunctionName: "echo", Version: registry.Latest, Handler: "bootstrap",
					MemorySize: 1769, Timeout: 3, EphemeralStorage: 512, CodeSha256Hex: info.SHA256Hex, RevisionID: "r"},
				InvokedARN: "arn:aws:lambda:us-east-1:000000000000:function:echo", Reserved: -1,
			}
			taskRoot := ""
			if hardened {
				taskRoot = "/var/task"
			}
			d := New(Options{Resolver: res, Code: &dirCode{dirs: map[string]string{info.SHA256Hex: dir}}, Spawner: mgr, Logs: &memLogs{}, TaskRoot: taskRoot})
			defer d.Close(context.Background())
			req := &Request{FunctionName: "echo", Payload: []byte(`{"hello":"moat","n":12345}`)}
			for i := 0; i < 200; i++ { // warm up
				if _, err := d.Invoke(context.Background(), req); err != nil {
					b.Fatal(err)
				}
			}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				resp, err := d.Invoke(context.Background(), req)
				if err != nil || resp.FunctionError != "" {
					b.Fatalf("invoke: %v %s", err, resp.Payload)
				}
				lat = append(lat, time.Since(t0))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1000, "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1000, "p99-µs")
		})
	}
}
