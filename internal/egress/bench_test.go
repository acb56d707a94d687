package egress

import (
	"testing"
)

// BenchmarkAttachClose measures what network grants add to an instance's
// cold start and teardown: filter, host rules, veth pair, addresses,
// routes. Run: go test -run '^$' -bench AttachClose ./internal/egress/
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
			for b.Loop() {
				l, err := m.Attach(inst.pid(), "fn-bench-1", inst.cgroup, grants)
				if err != nil {
					b.Fatal(err)
				}
				if err := l.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/instance")
		})
	}
}
