package invoke

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"moat.dev/moat/internal/codepkg"
	"moat.dev/moat/internal/fixture"
	"moat.dev/moat/internal/logs"
	"moat.dev/moat/internal/registry"
	"moat.dev/moat/internal/sandbox"
)

func TestMain(m *testing.M) {
	sandbox.Init()
	os.Exit(m.Run())
}

// fakeResolver serves fixed targets: the registry has its own tests.
type fakeResolver struct {
	mu      sync.Mutex
	targets map[string]*registry.Target
	env     map[string]string
}

func (f *fakeResolver) Resolve(name, qualifier string) (*registry.Target, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.targets[name]
	if !ok {
		return nil, registry.ErrNotFound
	}
	return t, nil
}

func (f *fakeResolver) Environment(*registry.Config) (map[string]string, error) { return f.env, nil }

// dirCode serves code packages unpacked once into a temp dir.
type dirCode struct{ dirs map[string]string }

func (c *dirCode) Dir(_ context.Context, sha string) (string, error) {
	d, ok := c.dirs[sha]
	if !ok {
		return "", errors.New("no such package")
	}
	return d, nil
}

// memLogs collects log records.
type memLogs struct {
	mu   sync.Mutex
	recs []logs.Record
}

func (m *memLogs) Write(r logs.Record) {
	m.mu.Lock()
	m.recs = append(m.recs, r)
	m.mu.Unlock()
}

func (m *memLogs) forRequest(id string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.recs {
		if r.RequestID == id {
			return r.Text
		}
	}
	return ""
}

type harness struct {
	d    *Dispatcher
	res  *fakeResolver
	logs *memLogs
	code *dirCode
}

func newHarness(t *testing.T, opts Options) *harness {
	t.Helper()
	fixture.RequireRoot(t)
	mgr, err := sandbox.NewManager(sandbox.Options{CgroupParent: "moat-test-invoke", Namespaces: true, Landlock: true})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{
		res:  &fakeResolver{targets: map[string]*registry.Target{}, env: map[string]string{"GREETING": "hi"}},
		logs: &memLogs{},
		code: &dirCode{dirs: map[string]string{}},
	}
	opts.Resolver, opts.Spawner, opts.Logs, opts.Code = h.res, mgr, h.logs, h.code
	opts.TaskRoot = "/var/task"
	h.d = New(opts)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = h.d.Close(ctx)
		_ = mgr.Close()
	})
	return h
}

// deploy registers a function running the Go package pkg.
func (h *harness) deploy(t *testing.T, name, pkg string, mutate func(*registry.Target)) {
	t.Helper()
	zip := fixture.GoZip(t, pkg)
	dst := filepath.Join(t.TempDir(), "code")
	info, err := codepkg.Unpack(zip, dst, codepkg.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	h.code.dirs[info.SHA256Hex] = dst
	tg := &registry.Target{
		Config: &registry.Config{
			FunctionName: name, Version: registry.Latest, Runtime: "provided.al2023", Handler: "bootstrap",
			MemorySize: 128, Timeout: 3, EphemeralStorage: 512, CodeSha256Hex: info.SHA256Hex, RevisionID: "r1",
		},
		InvokedARN: "arn:aws:lambda:us-east-1:000000000000:function:" + name,
		Reserved:   -1,
		Async:      registry.AsyncConfig{MaximumRetryAttempts: 2, MaximumEventAgeInSeconds: 21600},
	}
	if mutate != nil {
		mutate(tg)
	}
	h.res.mu.Lock()
	h.res.targets[name] = tg
	h.res.mu.Unlock()
}

func (h *harness) invoke(t *testing.T, name string, ev any) *Response {
	t.Helper()
	b, _ := json.Marshal(ev)
	resp, err := h.d.Invoke(context.Background(), &Request{FunctionName: name, Payload: b, WantLog: true})
	if err != nil {
		t.Fatalf("invoke %s: %v", name, err)
	}
	return resp
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("response %q is not a JSON object: %v", b, err)
	}
	return m
}

func TestInvokeOutcomes(t *testing.T) {
	h := newHarness(t, Options{})
	h.deploy(t, "behave", "testdata/functions/behave", nil)
	h.deploy(t, "short", "testdata/functions/behave", func(tg *registry.Target) { tg.Config.Timeout = 1 })
	// A 64 MB function has a 64/1769 share of a CPU: on a loaded machine
	// faulting in 64 MB can take seconds, so its deadline is far enough
	// that the memory limit, not the clock, ends the invocation.
	h.deploy(t, "small", "testdata/functions/behave", func(tg *registry.Target) { tg.Config.MemorySize = 64; tg.Config.Timeout = 30 })

	t.Run("echo and warm reuse", func(t *testing.T) {
		r1 := h.invoke(t, "behave", map[string]any{"action": "count"})
		r2 := h.invoke(t, "behave", map[string]any{"action": "count"})
		if r1.FunctionError != "" || r2.FunctionError != "" {
			t.Fatalf("unexpected function errors %q %q", r1.Payload, r2.Payload)
		}
		c1, c2 := decode(t, r1.Payload)["count"], decode(t, r2.Payload)["count"]
		if c1 == nil || c2 == nil || c2.(float64) != c1.(float64)+1 {
			t.Fatalf("second invocation did not reuse the warm instance: %v then %v", c1, c2)
		}
		if !strings.Contains(r1.LogTail, "Init Duration:") || strings.Contains(r2.LogTail, "Init Duration:") {
			t.Fatalf("Init Duration must appear on the first invocation only:\n%s\n---\n%s", r1.LogTail, r2.LogTail)
		}
		if r2.ExecutedVersion != "$LATEST" || r2.RequestID == "" {
			t.Fatalf("bad metadata %+v", r2)
		}
	})
	t.Run("log framing", func(t *testing.T) {
		r := h.invoke(t, "behave", map[string]any{"action": "log", "lines": 3})
		text := h.logs.forRequest(r.RequestID)
		for _, want := range []string{
			"START RequestId: " + r.RequestID + " Version: $LATEST\n",
			"stdout line 1", "stderr line 3",
			"END RequestId: " + r.RequestID + "\n",
			"REPORT RequestId: " + r.RequestID + "\tDuration: ",
			"Memory Size: 128 MB\tMax Memory Used: ",
		} {
			if !strings.Contains(text, want) {
				t.Fatalf("log record lacks %q:\n%s", want, text)
			}
		}
		if strings.Index(text, "stderr line 3") > strings.Index(text, "END RequestId") {
			t.Fatalf("function output after END:\n%s", text)
		}
		if r.LogTail != text {
			t.Fatalf("tail differs from the stored record")
		}
	})
	t.Run("environment", func(t *testing.T) {
		t.Setenv("MOAT_HOST_SECRET", "leak")
		r := h.invoke(t, "behave", map[string]any{"action": "env", "names": []string{"GREETING", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "_HANDLER", "TZ", "MOAT_HOST_SECRET", "HOME"}})
		vars := decode(t, r.Payload)["vars"].(map[string]any)
		want := map[string]any{"GREETING": "hi", "AWS_LAMBDA_FUNCTION_NAME": "behave", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128", "_HANDLER": "bootstrap", "TZ": ":UTC"}
		for k, v := range want {
			if vars[k] != v {
				t.Errorf("%s = %v, want %v", k, vars[k], v)
			}
		}
		for _, k := range []string{"MOAT_HOST_SECRET", "HOME"} {
			if _, ok := vars[k]; ok {
				t.Errorf("instance inherited %s from moat", k)
			}
		}
	})
	t.Run("handled error", func(t *testing.T) {
		r := h.invoke(t, "behave", map[string]any{"action": "error", "message": "boom"})
		doc := decode(t, r.Payload)
		if r.FunctionError != "Unhandled" || doc["errorMessage"] != "boom" || doc["errorType"] != "errorString" {
			t.Fatalf("got %q %s", r.FunctionError, r.Payload)
		}
	})
	t.Run("exit fails only its invocation", func(t *testing.T) {
		pid1 := decode(t, h.invoke(t, "behave", map[string]any{"action": "pid"}).Payload)["pid"]
		r := h.invoke(t, "behave", map[string]any{"action": "exit", "code": 2})
		doc := decode(t, r.Payload)
		if doc["errorType"] != "Runtime.ExitError" || !strings.Contains(doc["errorMessage"].(string), "exit status 2") {
			t.Fatalf("got %s", r.Payload)
		}
		next := h.invoke(t, "behave", map[string]any{"action": "count"})
		if decode(t, next.Payload)["count"].(float64) != 1 {
			t.Fatalf("next invocation did not get a fresh instance: %s (pid before %v)", next.Payload, pid1)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		r := h.invoke(t, "short", map[string]any{"action": "sleep", "sleep_ms": 5000})
		doc := decode(t, r.Payload)
		if r.ErrorType != "Sandbox.Timedout" || !strings.Contains(doc["errorMessage"].(string), "Task timed out after 1.00 seconds") {
			t.Fatalf("got %s", r.Payload)
		}
		if !strings.Contains(h.logs.forRequest(r.RequestID), "Task timed out after 1.00 seconds") {
			t.Fatalf("timeout missing from the log")
		}
		if ok := h.invoke(t, "short", map[string]any{"action": "count"}); decode(t, ok.Payload)["count"].(float64) != 1 {
			t.Fatalf("instance was not replaced after a timeout: %s", ok.Payload)
		}
	})
	t.Run("out of memory", func(t *testing.T) {
		r := h.invoke(t, "small", map[string]any{"action": "alloc", "mb": 200})
		doc := decode(t, r.Payload)
		if r.ErrorType != "Runtime.OutOfMemory" {
			t.Fatalf("got %s", r.Payload)
		}
		_ = doc
		text := h.logs.forRequest(r.RequestID)
		if !strings.Contains(text, "Memory Size: 64 MB\tMax Memory Used: 64 MB") {
			t.Fatalf("REPORT should show the limit reached:\n%s", text)
		}
	})
}

func TestInitFailures(t *testing.T) {
	h := newHarness(t, Options{InitTimeout: 500 * time.Millisecond})
	h.deploy(t, "init-error", "testdata/functions/init-error", nil)
	h.deploy(t, "never-next", "testdata/functions/never-next", nil)
	r := h.invoke(t, "init-error", map[string]any{})
	if r.FunctionError != "Unhandled" || r.ErrorType == "" {
		t.Fatalf("init error not reported: %+v %s", r, r.Payload)
	}
	r = h.invoke(t, "never-next", map[string]any{})
	if r.ErrorType != "Runtime.InitTimeout" {
		t.Fatalf("init timeout not reported: %s", r.Payload)
	}
}

func TestThrottle(t *testing.T) {
	h := newHarness(t, Options{})
	h.deploy(t, "one", "testdata/functions/behave", func(tg *registry.Target) { tg.Reserved = 1 })
	h.deploy(t, "none", "testdata/functions/behave", func(tg *registry.Target) { tg.Reserved = 0 })
	if _, err := h.d.Invoke(context.Background(), &Request{FunctionName: "none", Payload: []byte(`{}`)}); !errors.Is(err, ErrThrottled) {
		t.Fatalf("reserved 0 must throttle, got %v", err)
	}
	// Hold the function's only slot, as a running invocation does.
	h.res.mu.Lock()
	one := h.res.targets["one"]
	h.res.mu.Unlock()
	if err := h.d.acquire(one); err != nil {
		t.Fatal(err)
	}
	_, err := h.d.Invoke(context.Background(), &Request{FunctionName: "one", Payload: []byte(`{"action":"count"}`)})
	var te *ThrottleError
	if !errors.As(err, &te) || te.Reason != "ReservedFunctionConcurrentInvocationLimitExceeded" {
		t.Fatalf("second concurrent invocation: %v, want throttle", err)
	}
	h.d.release(one)
	if r := h.invoke(t, "one", map[string]any{"action": "count"}); r.FunctionError != "" {
		t.Fatalf("invocation after the slot was released: %s", r.Payload)
	}
}

func TestNodeConcurrencyLimit(t *testing.T) {
	h := newHarness(t, Options{MaxConcurrency: 1})
	h.deploy(t, "a", "testdata/functions/behave", nil)
	h.deploy(t, "b", "testdata/functions/behave", nil)
	h.res.mu.Lock()
	a := h.res.targets["a"]
	h.res.mu.Unlock()
	if err := h.d.acquire(a); err != nil {
		t.Fatal(err)
	}
	defer h.d.release(a)
	_, err := h.d.Invoke(context.Background(), &Request{FunctionName: "b", Payload: []byte(`{}`)})
	var te *ThrottleError
	if !errors.As(err, &te) || te.Reason != "ConcurrentInvocationLimitExceeded" {
		t.Fatalf("invocation beyond the node limit: %v, want throttle", err)
	}
}

func TestReapIdle(t *testing.T) {
	h := newHarness(t, Options{})
	h.deploy(t, "behave", "testdata/functions/behave", nil)
	h.invoke(t, "behave", map[string]any{"action": "count"})
	if n := h.d.Stats().IdleInstances; n != 1 {
		t.Fatalf("idle instances = %d, want 1", n)
	}
	if n := h.d.reap(time.Now().Add(time.Second)); n != 1 {
		t.Fatalf("reaped %d, want 1", n)
	}
	if r := h.invoke(t, "behave", map[string]any{"action": "count"}); decode(t, r.Payload)["count"].(float64) != 1 {
		t.Fatalf("reaped instance was reused")
	}
}

func TestPerInvocationInstances(t *testing.T) {
	h := newHarness(t, Options{})
	h.deploy(t, "single", "testdata/functions/behave", func(tg *registry.Target) {
		tg.Config.Sandbox = &registry.SandboxConfig{Ephemeral: registry.EphemeralPerInvocation}
	})
	for i := 0; i < 3; i++ {
		r := h.invoke(t, "single", map[string]any{"action": "count"})
		if c := decode(t, r.Payload)["count"]; c != float64(1) {
			t.Fatalf("invocation %d ran on a reused instance (count %v)", i, c)
		}
	}
	if n := h.d.Stats().IdleInstances; n != 0 {
		t.Fatalf("%d idle instances kept for a per-invocation function", n)
	}
}
