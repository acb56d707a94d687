package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"moat.dev/moat/internal/credentials"
	"moat.dev/moat/internal/fixture"
)

// Helpers for the tests in process_test.go, which run the real moat binary
// as a subprocess: `moat up` as the node, and the same binary as the CLI.

// moatBinary builds cmd/moat once per test process (and caches it on disk
// across test processes, like every fixture build).
func moatBinary(t testing.TB) string {
	t.Helper()
	return fixture.GoBinary(t, "cmd/moat")
}

// moatEnv is the test process's environment without the variables that
// would point a moat or AWS client somewhere else than the test says.
func moatEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "MOAT_") || strings.HasPrefix(kv, "AWS_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// moatProc is one `moat up` subprocess.
type moatProc struct {
	dir  string
	cmd  *exec.Cmd
	log  *logWatch
	node *testNode // API address, key and SDK client

	exited  chan struct{} // closed once the process has been waited for
	waitErr error         // set before exited is closed
}

// startMoat runs `moat up` on dir and returns once it answers /healthz.
// The process is killed at the end of the test if it is still running.
func startMoat(t testing.TB, dir string, extra ...string) *moatProc {
	t.Helper()
	args := append([]string{"up", "--listen", "127.0.0.1:0", "--url-listen", "127.0.0.1:0", "--data-dir", dir, "--log-format", "json"}, extra...)
	cmd := exec.Command(moatBinary(t), args...)
	cmd.Env = moatEnv()
	w := newLogWatch()
	cmd.Stdout = w
	cmd.Stderr = w
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("start moat: %v", err)
	}
	p := &moatProc{dir: dir, cmd: cmd, log: w, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		if !p.hasExited() {
			_ = cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("moat up --data-dir %s (pid %d) wrote:\n%s", dir, cmd.Process.Pid, w.text())
		}
	})

	var addr string
	select {
	case addr = <-w.ready:
	case <-p.exited:
		t.Fatalf("moat exited before it was ready (%v):\n%s", p.waitErr, w.text())
	case <-time.After(60 * time.Second):
		t.Fatalf("moat not ready after 60s:\n%s", w.text())
	}
	url := "http://" + addr
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /healthz on %s: %v (status %v)", url, err, statusOf(resp))
		}
		pause(20 * time.Millisecond)
	}
	keys, err := credentials.Load(filepath.Join(dir, "credentials"))
	if err != nil {
		t.Fatal(err)
	}
	key := keys[credentials.Profile]
	p.node = &testNode{
		url: url,
		dir: dir,
		key: key,
		client: lambda.New(lambda.Options{
			Region:       "us-east-1",
			BaseEndpoint: aws.String(url),
			Credentials:  awscreds.NewStaticCredentialsProvider(key.AccessKeyID, key.SecretAccessKey, ""),
		}),
	}
	return p
}

func statusOf(resp *http.Response) any {
	if resp == nil {
		return nil
	}
	return resp.StatusCode
}

// pause waits d between two polls of a bounded loop.
func pause(d time.Duration) { <-time.After(d) }

func (p *moatProc) hasExited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// waitExit waits at most d for the process to end and returns its exit code
// and how long it took.
func (p *moatProc) waitExit(t testing.TB, d time.Duration) (int, time.Duration) {
	t.Helper()
	start := time.Now()
	select {
	case <-p.exited:
	case <-time.After(d):
		t.Fatalf("moat still running %v after it was told to stop", d)
	}
	return p.cmd.ProcessState.ExitCode(), time.Since(start)
}

// stop sends SIGTERM and checks that moat exits 0.
func (p *moatProc) stop(t testing.TB) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	if code, _ := p.waitExit(t, 30*time.Second); code != 0 {
		t.Fatalf("moat exited %d after SIGTERM (%v)", code, p.waitErr)
	}
}

// kill9 kills moat with SIGKILL, as a crash would, and reaps it.
func (p *moatProc) kill9(t testing.TB) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatalf("SIGKILL: %v", err)
	}
	p.waitExit(t, 10*time.Second)
}

// logWatch collects moat's output and spots the log lines the tests wait
// for: "moat is ready" (with the bound address) and "shutting down".
type logWatch struct {
	ready    chan string   // the listen address, once
	stopping chan struct{} // closed at "shutting down"

	mu        sync.Mutex
	all       bytes.Buffer
	partial   []byte
	readySent bool
	stopSeen  bool
}

func newLogWatch() *logWatch {
	return &logWatch{ready: make(chan string, 1), stopping: make(chan struct{})}
}

func (w *logWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.all.Write(p)
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		var rec struct {
			Msg    string `json:"msg"`
			Listen string `json:"listen"`
		}
		if json.Unmarshal(w.partial[:i], &rec) == nil {
			switch {
			case rec.Msg == "moat is ready" && !w.readySent:
				w.readySent = true
				w.ready <- rec.Listen
			case rec.Msg == "shutting down" && !w.stopSeen:
				w.stopSeen = true
				close(w.stopping)
			}
		}
		w.partial = append(w.partial[:0], w.partial[i+1:]...)
	}
	return len(p), nil
}

func (w *logWatch) text() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.all.String()
}

// cliResult is the outcome of one run of the moat CLI.
type cliResult struct {
	code           int
	stdout, stderr string
}

func (r cliResult) String() string {
	return fmt.Sprintf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
}

// cli runs the moat binary as the command line against p, with --endpoint
// and --data-dir added.
func (p *moatProc) cli(t testing.TB, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args = append(args, "--endpoint", p.node.url, "--data-dir", p.dir)
	cmd := exec.CommandContext(ctx, moatBinary(t), args...)
	cmd.Env = moatEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := cliResult{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ctx.Err() == nil:
		r.code = ee.ExitCode()
	default:
		t.Fatalf("moat %s: %v\n%s", strings.Join(args, " "), err, r)
	}
	return r
}

// mustCLI is cli that expects exit status 0.
func (p *moatProc) mustCLI(t testing.TB, args ...string) cliResult {
	t.Helper()
	r := p.cli(t, args...)
	if r.code != 0 {
		t.Fatalf("moat %s: %s", strings.Join(args, " "), r)
	}
	return r
}

// activeInvocations reads dispatcher.active from moat's status.
func (n *testNode) activeInvocations(t testing.TB) int {
	t.Helper()
	resp := n.signed(t, "GET", "/moat/v1/status", nil)
	defer resp.Body.Close()
	var st struct {
		Dispatcher struct {
			Active int `json:"active"`
		} `json:"dispatcher"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /moat/v1/status: %d %v", resp.StatusCode, err)
	}
	return st.Dispatcher.Active
}

// waitActive polls the status until at least want invocations run, or d
// passes, and returns the highest count it saw.
func (n *testNode) waitActive(t testing.TB, want int, d time.Duration) int {
	t.Helper()
	best := 0
	for deadline := time.Now().Add(d); time.Now().Before(deadline); pause(10 * time.Millisecond) {
		best = max(best, n.activeInvocations(t))
		if best >= want {
			break
		}
	}
	return best
}

// probe sends one signed ListFunctions request on a new connection and
// reports whether moat refused it: connection refused, or 503.
func (n *testNode) probe() (refused bool, what string) {
	req, _ := http.NewRequest("GET", n.url+"/2015-03-31/functions", nil)
	sum := sha256.Sum256(nil)
	_ = v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: n.key.AccessKeyID, SecretAccessKey: n.key.SecretAccessKey},
		req, hex.EncodeToString(sum[:]), "lambda", "us-east-1", time.Now())
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return errors.Is(err, syscall.ECONNREFUSED), err.Error()
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusServiceUnavailable, resp.Status
}

// followDestination reads the records of a queue destination, following
// new ones, until done says so or d passes. It returns what it read; err is
// set when the deadline ended the reading.
func (n *testNode) followDestination(t testing.TB, name string, d time.Duration, done func([]destRecord) bool) ([]destRecord, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", n.url+"/moat/v1/destinations/"+name+"?follow=1", nil)
	sum := sha256.Sum256(nil)
	_ = v4.NewSigner().SignHTTP(ctx, aws.Credentials{AccessKeyID: n.key.AccessKeyID, SecretAccessKey: n.key.SecretAccessKey},
		req, hex.EncodeToString(sum[:]), "lambda", "us-east-1", time.Now())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("follow destination %s: %v", name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("follow destination %s: %d %s", name, resp.StatusCode, b)
	}
	dec := json.NewDecoder(resp.Body)
	var recs []destRecord
	for !done(recs) {
		var rec destRecord
		if err := dec.Decode(&rec); err != nil {
			return recs, fmt.Errorf("follow destination %s: %w", name, err)
		}
		recs = append(recs, rec)
	}
	return recs, nil
}

// readDestination returns the records a queue destination holds now.
func (n *testNode) readDestination(t testing.TB, name string) []destRecord {
	t.Helper()
	resp := n.signed(t, "GET", "/moat/v1/destinations/"+name, nil)
	defer resp.Body.Close()
	var recs []destRecord
	dec := json.NewDecoder(resp.Body)
	for {
		var rec destRecord
		if err := dec.Decode(&rec); err != nil {
			return recs
		}
		recs = append(recs, rec)
	}
}

// hostProc identifies one process on the host: its pid and its start time,
// so that a reused pid is not mistaken for it.
type hostProc struct {
	pid    int
	ppid   int
	start  string
	exe    string
	cgroup string // the instance cgroup's path under moat's parent: <node>/<instance>
}

// instanceProcs lists the processes of the instances of the moat process
// moatPid: its children (each instance's first process) and every process
// that shares their cgroups.
func instanceProcs(moatPid int) map[int]hostProc {
	all := map[int]hostProc{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, ok := procStat(pid)
		if !ok || st.state == "Z" {
			continue
		}
		hp := hostProc{pid: pid, ppid: st.ppid, start: st.start}
		hp.exe, _ = os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid)); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if _, path, ok := strings.Cut(line, ":/moat/"); ok {
					hp.cgroup = path // <node>/<instance>
					break
				}
			}
		}
		all[pid] = hp
	}
	cgroups := map[string]bool{}
	for _, hp := range all {
		if hp.ppid == moatPid && hp.cgroup != "" {
			cgroups[hp.cgroup] = true
		}
	}
	found := map[int]hostProc{}
	for pid, hp := range all {
		if hp.ppid == moatPid || cgroups[hp.cgroup] {
			found[pid] = hp
		}
	}
	return found
}

type procStatus struct {
	state string // R, S, Z, ...
	ppid  int
	start string // start time in clock ticks after boot
}

// procStat reads the state, parent and start time of pid from
// /proc/<pid>/stat.
func procStat(pid int) (procStatus, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStatus{}, false
	}
	// The command name is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStatus{}, false
	}
	// f[0] is field 3 (state), f[1] field 4 (ppid), f[19] field 22 (starttime).
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return procStatus{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	return procStatus{state: f[0], ppid: ppid, start: f[19]}, true
}

// alive reports whether the process still runs: it exists, is not a
// zombie waiting for its reaper, and is the same process (start time).
func (hp hostProc) alive() bool {
	st, ok := procStat(hp.pid)
	return ok && st.state != "Z" && st.start == hp.start
}

// cgroupDirs returns the instance's cgroup directories that still exist.
func (hp hostProc) cgroupDirs() []string {
	if hp.cgroup == "" {
		return nil
	}
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/moat/" + hp.cgroup)
	return dirs
}
