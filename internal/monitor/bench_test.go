package monitor

import (
	"strconv"
	"syscall"
	"testing"
	"time"

	"moat.dev/moat/internal/detect"
)

// BenchmarkQuietInvocation is the monitor's whole cost for one warm
// invocation that does nothing the sensor reports (the common case): Begin
// and End on the invoke path, then, on the flusher, the record kept in
// memory and the invocation counted toward the profile. ns/op is wall
// time with every record finished; cpu-ns/op is the process's CPU time.
func BenchmarkQuietInvocation(b *testing.B) {
	m, _ := newTestMonitor(b, nil)
	if err := m.Observe("i1", detect.InstanceInfo{Function: "fn", Version: "1", Runtime: "provided.al2023", Bootstrap: "/var/task/bootstrap"}, 77, "/var/task/bootstrap"); err != nil {
		b.Fatal(err)
	}
	ids := make([]string, b.N)
	for i := range ids {
		ids[i] = "req-" + strconv.Itoa(i)
	}
	var r0, r1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &r0)
	b.ResetTimer()
	for i := range b.N {
		m.Begin("i1", ids[i], "")
		m.End("i1", ids[i])
	}
	for m.quietCount.Load() < uint64(b.N) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	syscall.Getrusage(syscall.RUSAGE_SELF, &r1)
	cpu := time.Duration(r1.Utime.Nano() + r1.Stime.Nano() - r0.Utime.Nano() - r0.Stime.Nano())
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
}
