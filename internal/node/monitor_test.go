package node

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"

	"moat.dev/moat/internal/detect"
	"moat.dev/moat/internal/fixture"
	"moat.dev/moat/internal/monitor"
)

// requireMonitoring fails (under CI) or skips the test when the node runs
// without the sensor.
func (n *testNode) requireMonitoring(t *testing.T) {
	t.Helper()
	resp := n.signed(t, "GET", "/moat/v1/status", nil)
	defer resp.Body.Close()
	var st struct {
		Monitor monitor.Status `json:"monitor"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if st.Monitor.Monitoring != "on" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("monitoring is off under CI: %s", st.Monitor.Reason)
		}
		t.Skipf("monitoring is off on this host: %s", st.Monitor.Reason)
	}
	// The BPF LSM probe ran, and says what it found.
	if b := st.Monitor.BPFLSM; b != "available (unused)" && !strings.HasPrefix(b, "unavailable: ") {
		t.Errorf("status monitor.bpfLSM = %q", b)
	}
}

// waitLearned waits until a function's $LATEST profile has learned: the
// window counts an invocation once its events are all in.
func (n *testNode) waitLearned(t *testing.T, function string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp := n.signed(t, "GET", "/moat/v1/profiles/"+function, nil)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 && strings.Contains(string(b), "\nstate: learned") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("profile of %s not learned: %d\n%s", function, resp.StatusCode, b)
		}
		pause(50 * time.Millisecond)
	}
}

// createRaw creates a function from a CreateFunction body with moat's own
// fields.
func (n *testNode) createRaw(t *testing.T, body map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	resp := n.signed(t, "POST", "/2015-03-31/functions", b)
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("create %s: %d %s", body["FunctionName"], resp.StatusCode, out)
	}
}

// invokeID invokes and returns the payload and the request id.
func (n *testNode) invokeID(t *testing.T, name string, payload any) ([]byte, string) {
	t.Helper()
	out := n.invoke(t, name, payload, nil)
	id, ok := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
	if !ok || id == "" {
		t.Fatal("no request id in the Invoke response")
	}
	return out.Payload, id
}

// alerts reads the stored alerts of a function.
func (n *testNode) alerts(t *testing.T, function string) []detect.Alert {
	t.Helper()
	resp := n.signed(t, "GET", "/moat/v1/alerts?function="+function, nil)
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("alerts: %d %s", resp.StatusCode, b)
	}
	var out []detect.Alert
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 8<<20)
	for sc.Scan() {
		var a detect.Alert
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			t.Fatalf("alert %s: %v", sc.Bytes(), err)
		}
		out = append(out, a)
	}
	return out
}

// trace reads the records of a request, waiting for them to be written.
func (n *testNode) trace(t *testing.T, requestID string) []monitor.Record {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp := n.signed(t, "GET", "/moat/v1/traces/"+requestID, nil)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			var out struct{ Records []monitor.Record }
			if err := json.Unmarshal(b, &out); err != nil {
				t.Fatal(err)
			}
			return out.Records
		}
		if resp.StatusCode != 404 || time.Now().After(deadline) {
			t.Fatalf("trace %s: %d %s", requestID, resp.StatusCode, b)
		}
		pause(50 * time.Millisecond)
	}
}

// TestMonitorTraceRecord runs a function through the real sensor and reads
// back its invocation's forensic record after the instance is gone.
func TestMonitorTraceRecord(t *testing.T) {
	n := startNode(t, nil)
	n.requireMonitoring(t)
	// A fresh instance per invocation: the record must outlive it.
	n.createRaw(t, map[string]any{
		"FunctionName": "traced", "Runtime": "provided.al2023", "Handler": "bootstrap",
		"Code":    map[string]string{"ZipFile": base64.StdEncoding.EncodeToString(fixture.GoZip(t, "testdata/functions/suspicious"))},
		"Sandbox": map[string]any{"Ephemeral": "per-invocation"},
	})
	_, first := n.invokeID(t, "traced", map[string]any{"action": "list"})
	_, shell := n.invokeID(t, "traced", map[string]any{"action": "shell"})

	recs := n.trace(t, first)
	if len(recs) != 1 {
		t.Fatalf("records of %s: %d", first, len(recs))
	}
	r := recs[0]
	if r.RequestID != first || r.Function != "traced" || r.Version != "$LATEST" || r.Instance == "" || !r.End.After(r.Start) {
		t.Errorf("record header = %+v", r)
	}
	// The first invocation holds the init: the exec of the bootstrap.
	if len(r.Events) == 0 || r.Events[0].Kind != "exec" || r.Events[0].Path != "/var/task/bootstrap" || r.Events[0].Phase != detect.PhaseInit {
		b, _ := json.MarshalIndent(r, "", " ")
		t.Errorf("first event: want the init's exec of /var/task/bootstrap; record %s", b)
	}

	recs = n.trace(t, shell)
	var sawExec bool
	for _, e := range recs[0].Events {
		if e.RequestID != shell && e.Phase == detect.PhaseInvoke {
			t.Errorf("event of another request in the record: %+v", e)
		}
		if e.Kind == "exec" && strings.HasSuffix(e.Path, "/sh") && slices.Contains(e.Argv, "id") && e.RequestID == shell {
			sawExec = true
		}
	}
	if !sawExec {
		t.Errorf("record of %s lacks the exec of sh -c id: %+v", shell, recs[0].Events)
	}
	if len(recs[0].Alerts) == 0 {
		t.Errorf("record of %s names no alert", shell)
	}

	// The CLI prints it as a tree.
	resp := n.signed(t, "GET", "/moat/v1/traces/not-a-request", nil)
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("trace of an unknown request: %d, want 404", resp.StatusCode)
	}
}

// suspiciousActions maps each action of testdata/functions/suspicious to
// the rule that must catch it.
var suspiciousActions = map[string]string{
	"environ-self":       "environ-read",
	"memfd-exec":         "fileless-exec",
	"environ-init":       "environ-read",
	"shadow":             "credential-read",
	"aws-credentials":    "credential-read",
	"ssh-key":            "credential-read",
	"shell":              "shell-spawned",
	"tmp-write-exec":     "tmp-write-exec",
	"shm-exec":           "exec-from-writable",
	"reverse-shell":      "reverse-shell",
	"connect-then-shell": "reverse-shell",
	"download-exec":      "download-exec",
	"metadata":           "metadata-access",
	"mining-pool":        "mining-pool",
	"setuid":             "privilege-change",
	"capset":             "privilege-change",
	"ptrace":             "denied-syscall",
	"mount":              "denied-syscall",
	"bpf":                "denied-syscall",
	"unshare":            "denied-syscall",
	"keyctl-burst":       "denied-burst",
	"docker-socket":      "container-socket",
	"code-tamper":        "sensitive-write",
	"network-tool":       "network-tool",
	"bind-shell":         "listener",
	"metadata-udp":       "metadata-access",
	"environ-dirfd":      "environ-read",
	"environ-cwd":        "environ-read",
	"shadow-dotdot":      "credential-read",
	"shadow-symlink":     "sensitive-link",
	"setuid-file":        "setuid-bit",
	"preload":            "loader-hijack",
	"fork-storm":         "process-storm",
	"decode-exec":        "decode-exec",
	"key-sweep":          "credential-sweep",
	"upload":             "exfil-upload",
	"tor-proxy":          "anonymity-network",
	"hidden-dir":         "hidden-file",
}

// TestMonitorCatchesSuspiciousActions is the external check: each
// suspicious action, performed inside a real sandbox, raises its alert
// with the request id of the invocation that did it.
func TestMonitorCatchesSuspiciousActions(t *testing.T) {
	n := startNode(t, func(o *Options) { o.Sensor.LearnInvocations = 2 })
	n.requireMonitoring(t)
	n.create(t, "suspicious", fixture.GoZip(t, "testdata/functions/suspicious"), nil)

	// Learning: two ordinary invocations.
	for range 2 {
		n.invokeID(t, "suspicious", map[string]any{"action": "list"})
	}
	want := map[string]string{} // request id → rule
	byAction := map[string]string{}
	names := make([]string, 0, len(suspiciousActions))
	for a := range suspiciousActions {
		names = append(names, a)
	}
	slices.Sort(names)
	for _, action := range names {
		payload, id := n.invokeID(t, "suspicious", map[string]any{"action": action})
		t.Logf("%s (%s): %s", action, id, payload)
		want[id] = suspiciousActions[action]
		byAction[action] = id
	}
	if len(want) < 15 {
		t.Fatalf("only %d distinct actions", len(want))
	}

	deadline := time.Now().Add(15 * time.Second)
	for {
		got := map[string][]string{} // request id → rules
		for _, a := range n.alerts(t, "suspicious") {
			got[a.RequestID] = append(got[a.RequestID], a.Rule)
			if a.Function != "suspicious" || a.Version != "$LATEST" || a.Instance == "" || len(a.Evidence) == 0 || a.ID == "" {
				t.Errorf("alert lacks its attribution or evidence: %+v", a)
			}
		}
		var missing []string
		for _, action := range names {
			id := byAction[action]
			if !slices.Contains(got[id], want[id]) {
				missing = append(missing, fmt.Sprintf("%s (%s): want %s, got %v", action, id, want[id], got[id]))
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("actions without their alert:\n%s", strings.Join(missing, "\n"))
		}
		pause(200 * time.Millisecond)
	}
}

// TestMonitorBenignNoFalsePositives learns a benign function's profile and
// then runs it 1,000 times: ordinary work (JSON, /tmp scratch files, HTTP
// to its granted test host) must raise no alert at all.
func TestMonitorBenignNoFalsePositives(t *testing.T) {
	const learn, runs = 50, 1000
	n := startNode(t, func(o *Options) { o.Sensor.LearnInvocations = learn })
	n.requireMonitoring(t)
	host := newHTTPTestHost(t)
	n.createRaw(t, map[string]any{
		"FunctionName": "benign", "Runtime": "provided.al2023", "Handler": "bootstrap",
		"Code":    map[string]string{"ZipFile": base64.StdEncoding.EncodeToString(fixture.GoZip(t, "testdata/functions/benign"))},
		"Sandbox": map[string]any{"Egress": []string{host.addr}},
	})
	url := "http://" + host.addr + "/data"
	call := func(i int) {
		payload, _ := n.invokeID(t, "benign", map[string]any{"n": i, "url": url})
		var out struct {
			OK     bool `json:"ok"`
			Status int  `json:"status"`
		}
		if err := json.Unmarshal(payload, &out); err != nil || !out.OK || out.Status != 200 {
			t.Fatalf("invocation %d: %s", i, payload)
		}
	}
	for i := range learn {
		call(i)
	}
	// The window is over: the profile is learned.
	n.waitLearned(t, "benign")
	for i := range runs {
		call(learn + i)
	}
	// Let the last records and alerts land.
	pause(500 * time.Millisecond)
	if alerts := n.alerts(t, "benign"); len(alerts) != 0 {
		for _, a := range alerts[:min(10, len(alerts))] {
			ev, _ := json.Marshal(a.Evidence)
			t.Errorf("false positive: %s %s %s\n  %s", a.Rule, a.RequestID, a.Summary, ev)
		}
		t.Fatalf("%d alerts for a benign function", len(alerts))
	}
}

// httpTestHost is a test host in its own network namespace serving HTTP.
type httpTestHost struct{ addr string }

func newHTTPTestHost(t *testing.T) *httpTestHost {
	t.Helper()
	h := newTestHost(t)
	addr := strings.Replace(h.addr, ":7777", ":8080", 1)
	ln := listenInNamedNetns(t, h.ns, addr)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"items":[1,2,3],"name":"test host"}`)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return &httpTestHost{addr: addr}
}

// TestMonitorEnforce learns a profile, approves it and switches the
// function to enforce mode: an executable outside the profile then fails
// to run with EPERM (moat's exec supervisor refuses it), and the attempt
// is still recorded and alerted on, with its path.
func TestMonitorEnforce(t *testing.T) {
	n := startNode(t, func(o *Options) { o.Sensor.LearnInvocations = 2 })
	n.requireMonitoring(t)
	n.create(t, "guarded", fixture.GoZip(t, "testdata/functions/suspicious"), nil)
	for range 2 {
		n.invokeID(t, "guarded", map[string]any{"action": "list"})
	}
	n.waitLearned(t, "guarded")
	// Before enforcement, the shell runs.
	if out, _ := n.invokeID(t, "guarded", map[string]any{"action": "shell"}); !strings.Contains(string(out), "uid=993") {
		t.Fatalf("shell before enforcement: %s", out)
	}
	resp := n.signed(t, "POST", "/moat/v1/profiles/guarded/approve", nil)
	prof, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(prof), "state: approved") || strings.Contains(string(prof), "/bin/sh") {
		t.Fatalf("approve: %d\n%s", resp.StatusCode, prof)
	}
	resp = n.signed(t, "PUT", "/2015-03-31/functions/guarded/configuration", []byte(`{"Sandbox":{"Mode":"enforce"}}`))
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"Mode":"enforce"`) {
		t.Fatalf("enforce mode: %d %s", resp.StatusCode, b)
	}
	// The learned actions still work; a shell and a dropped payload do not.
	if out, _ := n.invokeID(t, "guarded", map[string]any{"action": "list"}); !strings.Contains(string(out), "shell") {
		t.Fatalf("list under enforcement: %s", out)
	}
	out, id := n.invokeID(t, "guarded", map[string]any{"action": "shell"})
	if !strings.Contains(string(out), `"err":"fork/exec /bin/sh: operation not permitted"`) || strings.Contains(string(out), "uid=993") {
		t.Fatalf("shell under enforcement ran or failed otherwise: %s", out)
	}
	out, _ = n.invokeID(t, "guarded", map[string]any{"action": "tmp-write-exec"})
	if !strings.Contains(string(out), `"what":"exec /tmp/.cache-x/payload []: \"\"","err":"fork/exec /tmp/.cache-x/payload: operation not permitted"`) {
		t.Errorf("payload under enforcement: %s", out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var found bool
		for _, a := range n.alerts(t, "guarded") {
			if a.RequestID == id && a.Rule == "profile.exec" && a.Evidence[len(a.Evidence)-1].Errno == "EPERM" &&
				a.Evidence[len(a.Evidence)-1].Path == "/bin/sh" {
				found = true
			}
		}
		if found {
			break
		}
		if time.Now().After(deadline) {
			for _, a := range n.alerts(t, "guarded") {
				t.Logf("alert %s %s %s %+v", a.RequestID, a.Rule, a.Summary, a.Evidence[len(a.Evidence)-1])
			}
			t.Fatalf("no profile.exec alert for the refused shell (request %s)", id)
		}
		pause(100 * time.Millisecond)
	}
}

// TestMonitoringOffStillRuns: a node without the sensor runs functions,
// says monitoring is off and why, and still serves alerts and rules.
func TestMonitoringOffStillRuns(t *testing.T) {
	n := startNode(t, func(o *Options) { o.Sensor.Disabled = true })
	resp := n.signed(t, "GET", "/moat/v1/status", nil)
	var st struct {
		Monitor monitor.Status `json:"monitor"`
	}
	json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if st.Monitor.Monitoring != "off" || !strings.Contains(st.Monitor.Reason, "disabled") {
		t.Errorf("status monitor = %+v", st.Monitor)
	}
	n.create(t, "plain", fixture.GoZip(t, "examples/echo-go"), nil)
	if out, _ := n.invokeID(t, "plain", map[string]any{"a": 1}); string(out) != `{"a":1}` {
		t.Errorf("invoke without the sensor: %s", out)
	}
	if alerts := n.alerts(t, "plain"); len(alerts) != 0 {
		t.Errorf("alerts without a sensor: %v", alerts)
	}
}

// TestRecycleOnDenial: with Sandbox.OnDenial recycle, a refused escape
// attempt kills the function's process on the spot (the invocation fails,
// the alert's evidence says killed), and an instance that was refused
// anything else (a connection to the metadata address) is not reused. A
// function without it keeps its instance.
func TestRecycleOnDenial(t *testing.T) {
	n := startNode(t, nil)
	n.requireMonitoring(t)
	zip := fixture.GoZip(t, "testdata/functions/suspicious")
	n.create(t, "recycled", zip, nil)
	n.create(t, "kept", zip, nil)
	resp := n.signed(t, "PUT", "/2015-03-31/functions/recycled/configuration", []byte(`{"Sandbox":{"OnDenial":"recycle"}}`))
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"OnDenial":"recycle"`) {
		t.Fatalf("set OnDenial: %d %s", resp.StatusCode, b)
	}
	resp = n.signed(t, "PUT", "/2015-03-31/functions/kept/configuration", []byte(`{"Sandbox":{"OnDenial":"sometimes"}}`))
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(b), "Sandbox.OnDenial must be") {
		t.Fatalf("invalid OnDenial: %d %s", resp.StatusCode, b)
	}

	// alertOf waits for the alert of rule for request id.
	alertOf := func(fn, id, rule string) detect.Alert {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			for _, a := range n.alerts(t, fn) {
				if a.RequestID == id && a.Rule == rule {
					return a
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: no %s alert for %s", fn, rule, id)
			}
			pause(50 * time.Millisecond)
		}
	}

	// An escape attempt: the kernel kills the process before ptrace
	// returns to it.
	out := n.invoke(t, "recycled", map[string]any{"action": "ptrace"}, nil)
	id, _ := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
	if out.FunctionError == nil || !strings.Contains(string(out.Payload), "Runtime.ExitError") || !strings.Contains(string(out.Payload), "killed") {
		t.Fatalf("ptrace under recycle: function error %v, payload %s", out.FunctionError, out.Payload)
	}
	a := alertOf("recycled", id, "denied-syscall")
	if ev := a.Evidence[len(a.Evidence)-1]; ev.Syscall != "ptrace" || !ev.Killed {
		t.Errorf("denied-syscall evidence: %+v, want ptrace, killed", ev)
	}

	// A refused connection: the invocation completes, but its instance
	// is not the next one's.
	for _, fn := range []string{"recycled", "kept"} {
		_, id1 := n.invokeID(t, fn, map[string]any{"action": "metadata"})
		_, id2 := n.invokeID(t, fn, map[string]any{"action": "environ-self"})
		i1 := alertOf(fn, id1, "metadata-access").Instance
		i2 := alertOf(fn, id2, "environ-read").Instance
		if recycled := i1 != i2; recycled != (fn == "recycled") {
			t.Logf("%+v", alertOf(fn, id1, "metadata-access").Evidence)
			t.Errorf("%s: instance %s then %s; recycled = %v", fn, i1, i2, recycled)
		}
	}
}
