package sandbox

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"moat.dev/moat/internal/fixture"
)

// envBurner turns the test binary into a CPU burner: for every line N on
// stdin it burns N µs of its own CPU time and answers with a line.
const envBurner = "MOAT_TEST_CPU_BURNER"

func init() {
	if os.Getenv(envBurner) == "" {
		return
	}
	in, out := bufio.NewScanner(os.Stdin), bufio.NewWriter(os.Stdout)
	for in.Scan() {
		us, _ := strconv.Atoi(in.Text())
		burn(time.Duration(us) * time.Microsecond)
		out.WriteString("\n")
		out.Flush()
	}
	os.Exit(0)
}

func cpuTime() time.Duration {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_PROCESS_CPUTIME_ID, &ts)
	return time.Duration(ts.Nano())
}

func burn(d time.Duration) {
	end := cpuTime() + d
	for x := 0; cpuTime() < end; x++ {
		_ = x * x
	}
}

// BenchmarkCPUPeriod measures what the CFS period and burst mean for a
// 128 MB function's latency: a handler that needs B of CPU, invoked every
// 100 ms (below its share of 7.2 ms per 100 ms on average, but above the
// quota of one short period for the larger B), under each configuration.
// It reports p50 and p99 of the time from the request to the answer,
// after three requests that warm the burner up.
//
//	go test -run '^$' -bench CPUPeriod -benchtime 60x ./internal/sandbox/
func BenchmarkCPUPeriod(b *testing.B) {
	fixture.RequireRoot(b)
	l, err := detectCgroups("moat-bench-cpu")
	if err != nil {
		b.Fatal(err)
	}
	if err := l.prepare(); err != nil {
		b.Fatal(err)
	}
	defer l.removeParent()
	const mem = 128 << 20
	configs := []struct {
		name          string
		period, burst int64 // µs; burst in periods' worth of quota
	}{
		{"period=100ms", 100_000, 0},
		{"period=100ms+burst=1q", 100_000, 1},
		{"period=20ms", 20_000, 0},
	}
	for _, burstCPU := range []time.Duration{500 * time.Microsecond, 2 * time.Millisecond, 5 * time.Millisecond, 12 * time.Millisecond} {
		for _, c := range configs {
			b.Run(fmt.Sprintf("cpu=%s/%s", burstCPU, c.name), func(b *testing.B) {
				cg, err := l.create(fmt.Sprintf("cpu-%d", time.Now().UnixNano()), mem, MaxPids)
				if err != nil {
					b.Fatal(err)
				}
				defer cg.destroy()
				quota := max(int64(mem>>20)*c.period/1769, minQuota)
				var dir string
				for _, d := range cg.v1dirs {
					if _, err := os.Stat(filepath.Join(d, "cpu.cfs_period_us")); err == nil {
						dir = d
					}
				}
				if dir == "" {
					b.Skip("no v1 cpu controller")
				}
				for _, w := range [][2]string{
					{"cpu.cfs_period_us", strconv.FormatInt(c.period, 10)},
					{"cpu.cfs_quota_us", strconv.FormatInt(quota, 10)},
					{"cpu.cfs_burst_us", strconv.FormatInt(c.burst*quota, 10)},
				} {
					if w[0] == "cpu.cfs_burst_us" && c.burst == 0 {
						continue
					}
					if err := writeFile(filepath.Join(dir, w[0]), w[1]); err != nil {
						b.Fatal(err)
					}
				}
				exe, _ := os.Executable()
				cmd := exec.Command(exe, "-test.run=^$")
				cmd.Env = append(os.Environ(), envBurner+"=1")
				stdin, _ := cmd.StdinPipe()
				stdout, _ := cmd.StdoutPipe()
				if err := cmd.Start(); err != nil {
					b.Fatal(err)
				}
				defer func() { cmd.Process.Kill(); cmd.Wait() }()
				if err := cg.addV1(cmd.Process.Pid); err != nil {
					b.Fatal(err)
				}
				r := bufio.NewReader(stdout)
				for range 3 {
					fmt.Fprintf(stdin, "%d\n", burstCPU.Microseconds())
					if _, err := r.ReadString('\n'); err != nil {
						b.Fatal(err)
					}
					time.Sleep(100 * time.Millisecond)
				}
				var lat []time.Duration
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					next := time.Now().Add(100 * time.Millisecond)
					t0 := time.Now()
					fmt.Fprintf(stdin, "%d\n", burstCPU.Microseconds())
					if _, err := r.ReadString('\n'); err != nil {
						b.Fatal(err)
					}
					lat = append(lat, time.Since(t0))
					time.Sleep(time.Until(next))
				}
				b.StopTimer()
				b.ReportMetric(float64(pctl(lat, 50).Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(pctl(lat, 99).Microseconds())/1000, "p99-ms")
			})
		}
	}
}
