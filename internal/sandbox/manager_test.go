package sandbox

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"moat.dev/moat/internal/detect"
	"moat.dev/moat/internal/fixture"
)

func TestMain(m *testing.M) {
	Init()
	os.Exit(m.Run())
}

func newManager(t testing.TB, ns bool) *Manager {
	t.Helper()
	return newManagerWith(t, Options{Namespaces: ns, Landlock: ns, Seccomp: ns})
}

// newObservedManager is a manager with every wall and an observer.
func newObservedManager(t testing.TB, obs Observer) *Manager {
	t.Helper()
	return newManagerWith(t, Options{Namespaces: true, Landlock: true, Seccomp: true, Observer: obs})
}

func newManagerWith(t testing.TB, opts Options) *Manager {
	t.Helper()
	fixture.RequireRoot(t)
	opts.CgroupParent = "moat-test-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
	m, err := NewManager(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.Close()
		m.removeParent()
	})
	return m
}

func shellCode(t *testing.T, script string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bootstrap"), []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestSpawnEnvironmentAndExit(t *testing.T) {
	for _, ns := range []bool{false, true} {
		t.Run(fmt.Sprintf("namespaces=%v", ns), func(t *testing.T) {
			m := newManager(t, ns)
			dir := shellCode(t, `echo "api=$AWS_LAMBDA_RUNTIME_API foo=$FOO home=${HOME:-unset} pid=$$"; exit 3`)
			t.Setenv("MOAT_SECRET_SHOULD_NOT_LEAK", "x")
			inst, err := m.Spawn(context.Background(), Spec{ID: "t1", CodeDir: dir, Env: []string{"FOO=bar", "PATH=/usr/bin:/bin"}, MemoryMB: 64})
			if err != nil {
				t.Fatal(err)
			}
			defer inst.Close()
			line, err := bufio.NewReader(inst.Output).ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			select {
			case <-inst.Done():
			case <-time.After(10 * time.Second):
				t.Fatal("instance did not exit")
			}
			if !strings.Contains(line, "foo=bar home=unset") || !strings.Contains(line, "api="+inst.Listener.Addr().String()) {
				t.Fatalf("unexpected environment line %q", line)
			}
			if ns && !strings.Contains(line, "pid=1") {
				t.Fatalf("bootstrap should be pid 1 in its namespace: %q", line)
			}
			if err := inst.ExitError(); err == nil || !strings.Contains(err.Error(), "exit status 3") {
				t.Fatalf("exit error = %v, want exit status 3", err)
			}
			if err := inst.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(inst.cg.mem); !os.IsNotExist(err) {
				t.Fatalf("cgroup %s left behind: %v", inst.cg.mem, err)
			}
		})
	}
}

func TestSpawnOOM(t *testing.T) {
	m := newManager(t, true)
	// Grow a shell variable far past 32 MB.
	dir := shellCode(t, `x=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa; while :; do x="$x$x"; done`)
	inst, err := m.Spawn(context.Background(), Spec{ID: "oom", CodeDir: dir, Env: []string{"PATH=/usr/bin:/bin"}, MemoryMB: 32})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	select {
	case <-inst.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("memory bomb was not stopped")
	}
	if !inst.OOMKilled() {
		t.Fatalf("OOMKilled = false, exit = %v", inst.ExitError())
	}
	if mb := inst.MaxMemoryMB(); mb < 30 || mb > 40 {
		t.Fatalf("MaxMemoryMB = %d, want about 32", mb)
	}
}

func TestSweepRemovesLeftovers(t *testing.T) {
	m := newManager(t, true)
	dir := shellCode(t, `sleep 1000`)
	inst, err := m.Spawn(context.Background(), Spec{ID: "left", CodeDir: dir, Env: []string{"PATH=/usr/bin:/bin"}, MemoryMB: 32})
	if err != nil {
		t.Fatal(err)
	}
	// A new manager on the same parent is what a restarted moat does.
	m2, err := NewManager(m.opts)
	if err != nil {
		t.Fatal(err)
	}
	_ = m2
	select {
	case <-inst.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("leftover instance was not killed")
	}
	if _, err := os.Stat(inst.cg.mem); !os.IsNotExist(err) {
		t.Fatalf("leftover cgroup not removed: %v", err)
	}
}

func TestProbeReportsEveryWall(t *testing.T) {
	m := newManager(t, true)
	iso, err := m.Probe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	missing := iso.Missing()
	if len(missing) != 0 {
		t.Fatalf("walls missing on this host: %v (isolation %+v)", missing, iso)
	}
}

// TestEnforceExecAllowList runs a shell bootstrap in enforce mode: the
// shell (the bootstrap's interpreter, found from its #! line, which the
// kernel opens without an exec call the supervisor would see) and the
// allowed /usr/bin/true run; anything else, and a copy of an allowed
// binary in /tmp, is refused (see TestEnforceExecSupervisor for which
// wall refuses what).
func TestEnforceExecAllowList(t *testing.T) {
	m := newManager(t, true)
	dir := shellCode(t, `
/usr/bin/true && echo true=ok || echo true=refused
/usr/bin/id >/dev/null 2>&1 && echo id=ok || echo id=refused
cp /usr/bin/true /tmp/t && chmod +x /tmp/t && { /tmp/t && echo tmp=ok || echo tmp=refused; }
`)
	inst, err := m.Spawn(context.Background(), Spec{ID: "enforce", CodeDir: dir, Env: []string{"PATH=/usr/bin:/bin"}, MemoryMB: 64,
		Enforce: &Enforcement{Exec: []string{"/usr/bin/true", "/usr/bin/cp", "/usr/bin/chmod"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	if !inst.Isolation.LandlockExecAllowList {
		t.Error("isolation does not report the exec allow-list")
	}
	out, err := io.ReadAll(inst.Output)
	if err != nil {
		t.Fatal(err)
	}
	<-inst.Done()
	for _, want := range []string{"true=ok", "id=refused", "tmp=refused"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// Without enforcement the same script runs everything.
	inst2, err := m.Spawn(context.Background(), Spec{ID: "monitor", CodeDir: dir, Env: []string{"PATH=/usr/bin:/bin"}, MemoryMB: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer inst2.Close()
	out, _ = io.ReadAll(inst2.Output)
	<-inst2.Done()
	for _, want := range []string{"true=ok", "id=ok", "tmp=ok"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("monitor mode output lacks %q:\n%s", want, out)
		}
	}
}

// countingObserver records which instances it was told of.
type countingObserver struct {
	mu       sync.Mutex
	observed []string
	forgot   []string
}

func (o *countingObserver) ExecRefused(string, string, int) {}

func (o *countingObserver) Observe(id string, _ detect.InstanceInfo, _ uint64, _ string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.observed = append(o.observed, id)
	return nil
}

func (o *countingObserver) Forget(id string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.forgot = append(o.forgot, id)
}

func (o *countingObserver) counts() (int, int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.observed), len(o.forgot)
}

func newPoolManager(t *testing.T, size int, obs Observer) *Manager {
	t.Helper()
	fixture.RequireRoot(t)
	m, err := NewManager(Options{CgroupParent: "moat-test-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")),
		Namespaces: true, Landlock: true, Seccomp: true, Pool: size, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.Close()
		m.removeParent()
	})
	return m
}

// TestPooledInstances: an instance claimed from the pool has every wall a
// freshly built one has, runs with its own limits and environment, and the
// pool refills once its start is over. Shells are nobody's until claimed:
// the observer hears of an instance only at its claim.
func TestPooledInstances(t *testing.T) {
	obs := &countingObserver{}
	m := newPoolManager(t, 2, obs)
	waitPool(t, m)
	if n, _ := obs.counts(); n != 0 {
		t.Fatalf("the observer was told of %d shells before any claim", n)
	}
	probe, err := m.Probe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := obs.counts(); n != 1 {
		t.Fatalf("observer told of %d instances after the probe, want 1", n)
	}
	dir := shellCode(t, `echo "foo=$FOO pid=$$ user=$(id -u) mem=$(cat /proc/self/cgroup | wc -l)"; sleep 1000`)
	inst, err := m.Spawn(context.Background(), Spec{ID: "pooled", CodeDir: dir, Env: []string{"FOO=bar", "PATH=/usr/bin:/bin"}, MemoryMB: 48})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	if !inst.Times.Pooled {
		t.Fatal("the instance was not taken from a full pool")
	}
	probe.ExecSupervisor, probe.LandlockExecAllowList = false, false
	if inst.Isolation != probe {
		t.Fatalf("pooled instance isolation %+v, a fresh one has %+v", inst.Isolation, probe)
	}
	line, err := bufio.NewReader(inst.Output).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(line, "foo=bar pid=1 user=993") {
		t.Fatalf("pooled instance output %q", line)
	}
	limit, err := os.ReadFile(filepath.Join(inst.cg.mem, memoryLimitFile(inst.cg)))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(limit)); got != fmt.Sprint(48<<20) {
		t.Fatalf("memory limit %s, want the function's 48 MB", got)
	}
	if n, _ := obs.counts(); n != 2 {
		t.Fatalf("observer told of %d instances, want 2 (the probe and this one)", n)
	}
	if err := inst.InitDone(); err != nil {
		t.Fatal(err)
	}
	waitPool(t, m)
}

// TestPoolDiscardsDeadShells: a shell whose init died while it waited is
// never handed out.
func TestPoolDiscardsDeadShells(t *testing.T) {
	m := newPoolManager(t, 1, nil)
	waitPool(t, m)
	var dead *Instance
	select {
	case dead = <-m.pool.ready:
	default:
		t.Fatal("no pooled shell")
	}
	dead.Kill()
	<-dead.Done()
	m.pool.ready <- dead
	dir := shellCode(t, `echo alive`)
	inst, err := m.Spawn(context.Background(), Spec{ID: "fresh", CodeDir: dir, Env: []string{"PATH=/usr/bin:/bin"}, MemoryMB: 32})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	if inst == dead || inst.Times.Pooled {
		t.Fatal("Spawn handed out a dead shell")
	}
	if out, _ := io.ReadAll(inst.Output); strings.TrimSpace(string(out)) != "alive" {
		t.Fatalf("output %q", out)
	}
	if _, err := os.Stat(dead.cg.mem); !os.IsNotExist(err) {
		t.Fatalf("the dead shell's cgroup is left: %v", err)
	}
}

// TestPoolCloseRemovesShells: closing the manager destroys the shells it
// kept, processes and cgroups.
func TestPoolCloseRemovesShells(t *testing.T) {
	m := newPoolManager(t, 2, nil)
	waitPool(t, m)
	var shells []*Instance
	for len(m.pool.ready) > 0 {
		inst := <-m.pool.ready
		shells = append(shells, inst)
		m.pool.ready <- inst
		if len(shells) == cap(m.pool.ready) {
			break
		}
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	for _, s := range shells {
		select {
		case <-s.Done():
		default:
			t.Fatal("a pooled shell's init is still running after Close")
		}
		if _, err := os.Stat(s.cg.mem); !os.IsNotExist(err) {
			t.Fatalf("pooled shell cgroup %s left after Close: %v", s.cg.mem, err)
		}
	}
}

func memoryLimitFile(cg *cgroup) string {
	if cg.isV2 {
		return "memory.max"
	}
	return "memory.limit_in_bytes"
}
