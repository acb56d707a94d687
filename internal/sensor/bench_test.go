package sensor

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"

	"moat.dev/moat/internal/seccomp"
)

// loopChild is an openloop child started in the background.
type loopChild struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	stderr bytes.Buffer
	done   chan error
}

// startLoop starts a child that opens and closes /etc/hostname n times, in
// cg (nil: the test's own cgroup).
func startLoop(b testing.TB, cg *testCgroup, n int) *loopChild {
	return startLoopMode(b, cg, "openloop", n)
}

// startLoopMode starts a loop child of the given mode (openloop, mixloop).
func startLoopMode(b testing.TB, cg *testCgroup, mode string, n int) *loopChild {
	b.Helper()
	c := &loopChild{done: make(chan error, 1)}
	c.cmd = exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	c.cmd.Env = []string{childEnv + "=" + mode, "SENSOR_TEST_N=" + strconv.Itoa(n)}
	c.cmd.Stdout, c.cmd.Stderr = &c.stdout, &c.stderr
	if cg != nil {
		f, err := os.Open(cg.path)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		c.cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(f.Fd())}
	}
	if err := c.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	go func() { c.done <- c.cmd.Wait() }()
	return c
}

// loopNs waits for the child and returns its loop's time per open+close.
func (c *loopChild) loopNs(b testing.TB, n int) float64 {
	b.Helper()
	if err := <-c.done; err != nil {
		b.Fatalf("open loop child: %v\n%s", err, c.stderr.String())
	}
	ns, err := strconv.ParseFloat(field(b, c.stdout.String(), "ns"), 64)
	if err != nil {
		b.Fatal(err)
	}
	return ns / float64(n)
}

// drain counts the child's opens of /etc/hostname among the events until
// its exit event. If that was dropped (a full ring), it runs /bin/true in
// the cgroup as a barrier until one's exit arrives.
func drain(b testing.TB, s *Sensor, cg testCgroup, c *loopChild) (opens int) {
	b.Helper()
	pid := c.cmd.Process.Pid
	exited := c.done
	var barrier int
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for attempts := 0; ; {
		select {
		case e := <-s.Events():
			switch {
			case e.Kind == KindOpen && e.PID == pid && e.Path == "/etc/hostname":
				opens++
			case e.Kind == KindExit && (e.PID == pid || e.PID == barrier):
				return opens
			}
		case err := <-exited:
			c.done <- err // for loopNs
			exited = nil
			barrier = runBarrier(b, cg)
		case <-tick.C:
			if exited != nil {
				continue // still running
			}
			if attempts++; attempts > 10 {
				b.Fatalf("no exit event for the loop child or its barriers")
			}
			barrier = runBarrier(b, cg)
		}
	}
}

func runBarrier(b testing.TB, cg testCgroup) int {
	f, err := os.Open(cg.path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command("/bin/true")
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(f.Fd())}
	if err := cmd.Run(); err != nil {
		b.Fatal(err)
	}
	return cmd.Process.Pid
}

// BenchmarkEventsThroughput: a child in a watched cgroup opens and closes
// a file b.N times in a tight loop while the benchmark receives the
// events. ns/op is the child's time per open+close under the sensor;
// events/s is the rate at which the opens' events were received; drops
// counts records the kernel could not put in the ring; lost is the share
// of the loop's opens that never arrived.
func BenchmarkEventsThroughput(b *testing.B) {
	s := loadOrSkip(b, nodeOptions())
	cg := newCgroup(b)
	if err := s.Watch(cg.id, 0); err != nil {
		b.Fatal(err)
	}
	drops0 := s.Dropped()
	b.ResetTimer()
	start := time.Now()
	c := startLoop(b, &cg, b.N)
	opens := drain(b, s, cg, c)
	elapsed := time.Since(start)
	b.StopTimer()
	perOp := c.loopNs(b, b.N)

	b.ReportMetric(perOp, "ns/op")
	b.ReportMetric(float64(opens)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(s.Dropped()-drops0), "drops")
	b.ReportMetric(100*float64(b.N-opens)/float64(b.N), "%lost")
}

// BenchmarkSensorOverhead compares the same open/close loop (b.N
// iterations, timed inside the child) with no sensor; with two empty
// programs on sys_enter and sys_exit (the floor: what any syscall
// tracepoint program costs); with the sensor loaded but the child's cgroup
// not watched (the cost every other process on the host pays, moat
// included); and with it watched. ns/op is the unwatched cost; the ratios
// are each case over no sensor.
func BenchmarkSensorOverhead(b *testing.B) {
	if os.Geteuid() != 0 {
		needOrSkip(b, "the sensor needs root")
	}
	cg := newCgroup(b)
	b.ResetTimer()

	base := startLoop(b, &cg, b.N).loopNs(b, b.N)

	var links []link.Link
	for _, tp := range []string{"sys_enter", "sys_exit"} {
		p, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.RawTracepoint, License: "GPL",
			Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}})
		if err != nil {
			b.Fatal(err)
		}
		l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: tp, Program: p})
		p.Close() // the link holds it
		if err != nil {
			b.Fatal(err)
		}
		links = append(links, l)
	}
	floor := startLoop(b, &cg, b.N).loopNs(b, b.N)
	for _, l := range links {
		l.Close()
	}

	s, err := Load(nodeOptions())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	unwatched := startLoop(b, &cg, b.N).loopNs(b, b.N)

	if err := s.Watch(cg.id, 0); err != nil {
		b.Fatal(err)
	}
	c := startLoop(b, &cg, b.N)
	drain(b, s, cg, c)
	watched := c.loopNs(b, b.N)
	b.StopTimer()

	b.ReportMetric(unwatched, "ns/op")
	b.ReportMetric(base, "base-ns/op")
	b.ReportMetric(floor/base, "floor-x")
	b.ReportMetric(watched, "watched-ns/op")
	b.ReportMetric(unwatched/base, "unwatched-x")
	b.ReportMetric(watched/base, "watched-x")
}

// BenchmarkMixedWorkload: a child that, b.N times, execs /bin/true, opens
// and closes a file ten times and makes a refused loopback connect — a
// function working the system hard. It runs without the sensor, then
// watched, and reports its slowdown, the events received per second while
// it ran (all kinds, the exec'd children's included) and the drops.
func BenchmarkMixedWorkload(b *testing.B) {
	if os.Geteuid() != 0 {
		needOrSkip(b, "the sensor needs root")
	}
	cg := newCgroup(b)
	b.ResetTimer()
	off := startLoopMode(b, &cg, "mixloop", b.N).loopNs(b, b.N)

	s, err := Load(nodeOptions())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if err := s.Watch(cg.id, 0); err != nil {
		b.Fatal(err)
	}
	drops0 := s.Dropped()
	start := time.Now()
	c := startLoopMode(b, &cg, "mixloop", b.N)
	pid := c.cmd.Process.Pid
	events := 0
	for done := false; !done; {
		select {
		case e := <-s.Events():
			events++
			done = e.Kind == KindExit && e.PID == pid
		case <-time.After(10 * time.Second):
			b.Fatal("no exit event from the mixed loop child")
		}
	}
	elapsed := time.Since(start)
	on := c.loopNs(b, b.N)
	b.StopTimer()

	b.ReportMetric(on, "ns/op")
	b.ReportMetric(off, "off-ns/op")
	b.ReportMetric(100*(on/off-1), "%slowdown")
	b.ReportMetric(float64(events)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(events)/float64(b.N), "events/op")
	b.ReportMetric(float64(s.Dropped()-drops0), "drops")
}

// nodeOptions are the options a moat node loads the sensor with: told the
// sandbox's seccomp filter.
func nodeOptions() Options {
	return Options{SeccompAllowed: seccomp.Default().Allow}
}
