package egress

import (
	"testing"
	"time"
)

// BenchmarkAttachClose measures what network grants add to an instance:
// Attach on its cold start (filter, host rules, veth pair, addresses,
// routes) and Close at its teardown. ns/op is both; attach-ms and close-ms
// split them. Run:
//
//	go test -run '^$' -bench AttachClose -benchtime 3s ./internal/egress/
func BenchmarkAttachClose(b *testing.B) {
	for _, c := range []struct {
		name   string
		grants func(tb *testbed) []string
	}{
		{"ipv4", func(tb *testbed) []string { return []string{tb.ip4(2) + ":443"} }},
		{"dual-stack", func(tb *testbed) []string { return []string{tb.ip4(2) + ":443", "[" + tb.ip6(2) + "]:443"} }},
	} {
		b.Run(c.name, func(b *testing.B) {
			tb := newTestbed(b)
			m := newTestManager(b, tb)
			inst := startInstance(b, tb)
			grants := mustGrants(b, c.grants(tb)...)
			var attach, close time.Duration
			for b.Loop() {
				t0 := time.Now()
				l, err := m.Attach(inst.pid(), "fn-bench-1", inst.cgroup, grants)
				if err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				if err := l.Close(); err != nil {
					b.Fatal(err)
				}
				attach += t1.Sub(t0)
				close += time.Since(t1)
			}
			b.ReportMetric(float64(attach.Microseconds())/1000/float64(b.N), "attach-ms")
			b.ReportMetric(float64(close.Microseconds())/1000/float64(b.N), "close-ms")
		})
	}
}
