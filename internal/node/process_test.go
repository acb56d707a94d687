package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"moat.dev/moat/internal/credentials"
	"moat.dev/moat/internal/fixture"
	"moat.dev/moat/internal/invoke"
)

// The tests in this file run the real moat binary: `moat up` as a
// subprocess on a temp data dir and a loopback port, driven by the AWS SDK,
// by the moat binary as the CLI and by the AWS CLI. Helpers are in
// moat_process_test.go.

// TestProcessAsyncSurvivesKill9 accepts Event invocations, kills moat with
// SIGKILL while they run, and checks that no instance outlives it and that
// every accepted event still completes after a restart on the same data dir.
func TestProcessAsyncSurvivesKill9(t *testing.T) {
	fixture.RequireRoot(t)
	ctx := context.Background()
	dir := t.TempDir()
	p := startMoat(t, dir)
	n := p.node
	n.create(t, "behave", fixture.GoZip(t, "testdata/functions/behave"), func(in *lambda.CreateFunctionInput) {
		in.Timeout = aws.Int32(30)
	})
	if _, err := n.client.PutFunctionEventInvokeConfig(ctx, &lambda.PutFunctionEventInvokeConfigInput{
		FunctionName:         aws.String("behave"),
		MaximumRetryAttempts: aws.Int32(0),
		DestinationConfig: &types.DestinationConfig{
			OnSuccess: &types.OnSuccess{Destination: aws.String("arn:aws:sqs:us-east-1:000000000000:done")},
			OnFailure: &types.OnFailure{Destination: aws.String("arn:aws:sqs:us-east-1:000000000000:failed")},
		},
	}); err != nil {
		t.Fatal(err)
	}

	const events = 6
	markers := make([]string, events)
	for i := range markers {
		markers[i] = "kill9-" + invoke.NewRequestID()
		out := n.invoke(t, "behave", map[string]any{"action": "sleep", "sleep_ms": 1500, "marker": markers[i]},
			func(in *lambda.InvokeInput) { in.InvocationType = types.InvocationTypeEvent })
		if out.StatusCode != 202 {
			t.Fatalf("event %d: status %d", i, out.StatusCode)
		}
	}

	// Kill moat while the events run: the instances' bootstraps are up.
	if got := n.waitActive(t, events, 10*time.Second); got == 0 {
		t.Fatal("no queued invocation started within 10s")
	}
	moatPid := p.cmd.Process.Pid
	var procs map[int]hostProc
	for deadline := time.Now().Add(5 * time.Second); ; pause(10 * time.Millisecond) {
		procs = instanceProcs(moatPid)
		if len(procs) >= events || time.Now().After(deadline) {
			break
		}
	}
	if len(procs) == 0 {
		t.Fatalf("moat (pid %d) has no instance process", moatPid)
	}
	if running := n.activeInvocations(t); running == 0 {
		t.Fatal("the invocations ended before moat could be killed; make them sleep longer")
	}
	p.kill9(t)
	killed := time.Now()

	// The instances die with moat (parent-death signal); a restart sweeps
	// whatever is left in moat's cgroups in any case.
	var survivors []hostProc
	for deadline := time.Now().Add(3 * time.Second); ; pause(10 * time.Millisecond) {
		survivors = survivors[:0]
		for _, hp := range procs {
			if hp.alive() {
				survivors = append(survivors, hp)
			}
		}
		if len(survivors) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(survivors) > 0 {
		t.Logf("%d of %d instance processes outlived moat by 3s: %+v", len(survivors), len(procs), survivors)
	}

	p2 := startMoat(t, dir)
	n = p2.node
	for _, hp := range procs {
		if hp.alive() {
			t.Errorf("instance process %d (%s) of the killed moat still runs after the restart", hp.pid, hp.exe)
		}
		if dirs := hp.cgroupDirs(); len(dirs) > 0 {
			t.Errorf("cgroups of instance %s were not swept on restart: %v", hp.cgroup, dirs)
		}
	}

	want := map[string]bool{}
	for _, m := range markers {
		want[m] = true
	}
	count := func(recs []destRecord) map[string]int {
		seen := map[string]int{}
		for _, r := range recs {
			var ev struct {
				Marker string `json:"marker"`
			}
			if json.Unmarshal(r.RequestPayload, &ev) == nil && want[ev.Marker] {
				seen[ev.Marker]++
			}
		}
		return seen
	}
	recs, err := n.followDestination(t, "done", 50*time.Second, func(recs []destRecord) bool {
		return len(count(recs)) == events
	})
	seen := count(recs)
	if err != nil {
		var missing []string
		for _, m := range markers {
			if seen[m] == 0 {
				missing = append(missing, m)
			}
		}
		t.Fatalf("accepted events lost after kill -9 and restart: %d of %d never reached the destination %v (%v); on-failure records: %+v",
			len(missing), events, missing, err, n.readDestination(t, "failed"))
	}
	// Count duplicates over everything the destination holds by now.
	recs = n.readDestination(t, "done")
	dups := 0
	for _, c := range count(recs) {
		dups += c - 1
	}
	for _, r := range recs {
		if r.RequestContext.Condition != "Success" {
			t.Errorf("record %s: condition %q", r.RequestContext.RequestID, r.RequestContext.Condition)
		}
	}
	t.Logf("all %d events completed %v after kill -9 (%d duplicate deliveries, at-least-once; %d instance processes were running at the kill)",
		events, time.Since(killed).Round(time.Millisecond), dups, len(procs))
	p2.stop(t)
}

// TestProcessCLI drives the real command line against the real server.
func TestProcessCLI(t *testing.T) {
	fixture.RequireRoot(t)
	root := fixture.ModuleRoot(t)
	p := startMoat(t, t.TempDir())

	// A directory deploy: the shell runtime, its bootstrap kept executable.
	r := p.mustCLI(t, "deploy", "hello-shell", filepath.Join(root, "examples", "shell-runtime"), "--handler", "function.handler")
	if !strings.HasPrefix(r.stdout, "created hello-shell ") {
		t.Errorf("deploy hello-shell: %s", r)
	}
	r = p.mustCLI(t, "invoke", "hello-shell", "--payload", `{"name":"x"}`)
	if !strings.Contains(r.stdout, "Hello from a shell function on moat!") || !strings.Contains(r.stdout, `"name":"x"`) {
		t.Errorf("invoke hello-shell: %s", r)
	}

	// A zip deploy with configuration flags.
	zipPath := filepath.Join(t.TempDir(), "echo.zip")
	if err := os.WriteFile(zipPath, fixture.GoZip(t, "examples/echo-go"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Lambda wants variable names of two characters or more, and so does moat.
	r = p.cli(t, "deploy", "echo", zipPath, "--memory", "256", "--env", "A=B")
	if r.code != 1 || !strings.Contains(r.stderr, "ValidationException") {
		t.Errorf("deploy with the variable name A: %s", r)
	}
	r = p.mustCLI(t, "deploy", "echo", zipPath, "--memory", "256", "--env", "AB=B")
	if !strings.HasPrefix(r.stdout, "created echo ") {
		t.Errorf("deploy echo: %s", r)
	}
	cfg, err := p.node.client.GetFunctionConfiguration(context.Background(), &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("echo")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt32(cfg.MemorySize) != 256 || cfg.Environment == nil || cfg.Environment.Variables["AB"] != "B" {
		t.Errorf("deployed echo: memory %d, environment %+v", aws.ToInt32(cfg.MemorySize), cfg.Environment)
	}

	r = p.mustCLI(t, "invoke", "echo", "--tail", "--payload", `{"k":"v"}`)
	if strings.TrimSpace(r.stdout) != `{"k":"v"}` || !strings.Contains(r.stderr, "START RequestId: ") || !strings.Contains(r.stderr, "REPORT RequestId: ") {
		t.Errorf("invoke echo --tail: %s", r)
	}

	r = p.mustCLI(t, "ls", "--output", "json")
	var list struct {
		Functions []struct {
			FunctionName string
			MemorySize   int
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
		t.Fatalf("ls --output json: %v\n%s", err, r)
	}
	names := map[string]int{}
	for _, f := range list.Functions {
		names[f.FunctionName] = f.MemorySize
	}
	if len(names) != 2 || names["echo"] != 256 || names["hello-shell"] == 0 {
		t.Errorf("ls lists %v", names)
	}

	r = p.mustCLI(t, "publish", "echo")
	if strings.TrimSpace(r.stdout) != "1" {
		t.Errorf("publish echo: %s", r)
	}
	r = p.mustCLI(t, "alias", "echo", "create", "live", "--version", "1")
	if strings.TrimSpace(r.stdout) != "live -> 1" {
		t.Errorf("alias create: %s", r)
	}
	r = p.mustCLI(t, "invoke", "echo", "--qualifier", "live", "--payload", `{"via":"alias"}`, "--output", "json")
	var inv struct {
		StatusCode      int
		ExecutedVersion string
		Payload         json.RawMessage
	}
	if err := json.Unmarshal([]byte(r.stdout), &inv); err != nil || inv.StatusCode != 200 || inv.ExecutedVersion != "1" || compactJSON(inv.Payload) != `{"via":"alias"}` {
		t.Errorf("invoke --qualifier live: %v %s", err, r)
	}

	p.mustCLI(t, "concurrency", "echo", "0")
	r = p.cli(t, "invoke", "echo", "--payload", `{}`)
	if r.code != 1 || !strings.Contains(r.stderr, "TooManyRequestsException") {
		t.Errorf("invoke with reserved concurrency 0: %s", r)
	}
	p.mustCLI(t, "concurrency", "echo", "--delete")
	p.mustCLI(t, "invoke", "echo", "--payload", `{}`)

	// Log records are written asynchronously: poll until START shows.
	for deadline := time.Now().Add(10 * time.Second); ; pause(50 * time.Millisecond) {
		r = p.mustCLI(t, "logs", "echo")
		if strings.Count(r.stdout, "START RequestId: ") >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("logs echo has not the START lines of 3 invocations: %s", r)
			break
		}
	}

	r = p.mustCLI(t, "invoke", "echo", "--async", "--payload", `{"queued":true}`)
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\n$`).MatchString(r.stdout) {
		t.Errorf("invoke --async does not print a request id: %s", r)
	}

	r = p.mustCLI(t, "rm", "echo")
	if strings.TrimSpace(r.stdout) != "deleted echo" {
		t.Errorf("rm echo: %s", r)
	}
	r = p.cli(t, "invoke", "echo", "--payload", `{}`)
	if r.code != 1 || !strings.Contains(r.stderr, "ResourceNotFoundException") {
		t.Errorf("invoke after rm: %s", r)
	}

	r = p.mustCLI(t, "status", "--output", "json")
	var st map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || st["dispatcher"] == nil || st["region"] != "us-east-1" {
		t.Errorf("status --output json: %v %s", err, r)
	}
	p.stop(t)
}

// TestProcessGracefulShutdown sends SIGTERM while an invocation runs: the
// invocation completes, new requests are refused, and moat exits 0 within
// its grace period.
func TestProcessGracefulShutdown(t *testing.T) {
	fixture.RequireRoot(t)
	const grace = 10 * time.Second
	p := startMoat(t, t.TempDir(), "--shutdown-grace", grace.String())
	n := p.node
	n.create(t, "behave", fixture.GoZip(t, "testdata/functions/behave"), func(in *lambda.CreateFunctionInput) {
		in.Timeout = aws.Int32(10)
	})

	type result struct {
		out *lambda.InvokeOutput
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := n.client.Invoke(context.Background(), &lambda.InvokeInput{
			FunctionName: aws.String("behave"),
			Payload:      []byte(`{"action":"sleep","sleep_ms":1500}`),
		}, func(o *lambda.Options) { o.RetryMaxAttempts = 1 })
		done <- result{out, err}
	}()
	if n.waitActive(t, 1, 10*time.Second) == 0 {
		t.Fatal("the invocation did not start within 10s")
	}

	sent := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.log.stopping:
	case <-time.After(5 * time.Second):
		t.Fatal("moat did not log that it is shutting down within 5s of SIGTERM")
	}
	var (
		refused      bool
		what         string
		inFlightThen bool
	)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); pause(5 * time.Millisecond) {
		if refused, what = n.probe(); refused {
			inFlightThen = len(done) == 0
			break
		}
	}
	if !refused {
		t.Errorf("a new request during shutdown was served: %s", what)
	} else if !inFlightThen {
		t.Errorf("new requests were refused only after the running invocation had finished")
	}

	var res result
	select {
	case res = <-done:
	case <-time.After(grace):
		t.Fatal("the running invocation got no response during shutdown")
	}
	if res.err != nil {
		t.Fatalf("the running invocation failed during shutdown: %v", res.err)
	}
	if res.out.StatusCode != 200 || res.out.FunctionError != nil || string(res.out.Payload) != `{"slept_ms":1500}` {
		t.Fatalf("the running invocation: %d %v %s", res.out.StatusCode, aws.ToString(res.out.FunctionError), res.out.Payload)
	}
	code, _ := p.waitExit(t, grace+5*time.Second)
	took := time.Since(sent)
	if code != 0 {
		t.Fatalf("moat exited %d after SIGTERM (%v)", code, p.waitErr)
	}
	if took > grace {
		t.Fatalf("moat took %v to stop, longer than its grace period %v", took, grace)
	}
	t.Logf("refused a new request (%s) while draining; exited 0 %v after SIGTERM", what, took.Round(time.Millisecond))
}

// TestProcessCredentialsFile checks the node's credentials file: private,
// kept across restarts, and usable as is by the AWS CLI.
func TestProcessCredentialsFile(t *testing.T) {
	fixture.RequireRoot(t)
	dir := t.TempDir()
	credPath := filepath.Join(dir, "credentials")
	p := startMoat(t, dir)

	fi, err := os.Stat(credPath)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("credentials file has mode %04o, want 0600", perm)
	}
	first, err := os.ReadFile(credPath)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := credentials.Load(credPath)
	if err != nil {
		t.Fatal(err)
	}
	key, ok := keys[credentials.Profile]
	if !ok || !strings.Contains(string(first), "\n[moat]\n") || key.AccessKeyID == "" || key.SecretAccessKey == "" {
		t.Fatalf("no [moat] profile with a key in:\n%s", first)
	}
	if fi, err := os.Stat(filepath.Join(dir, "master.key")); err == nil && fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("master key has mode %04o", fi.Mode().Perm())
	}
	p.node.create(t, "echo", fixture.GoZip(t, "examples/echo-go"), nil)
	p.stop(t)

	p = startMoat(t, dir)
	again, err := os.ReadFile(credPath)
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != string(first) {
		t.Fatalf("restart rewrote the credentials file:\nbefore:\n%s\nafter:\n%s", first, again)
	}
	if fi, err := os.Stat(credPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file after restart: %v %v", err, fi.Mode())
	}
	if p.node.key != key {
		t.Fatal("restarted node uses another key")
	}

	awsCLI, err := exec.LookPath("aws")
	if err != nil {
		t.Skip("the AWS CLI (aws) is not installed")
	}
	work := t.TempDir()
	outFile := filepath.Join(work, "out.json")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env := moatEnv(
		"AWS_SHARED_CREDENTIALS_FILE="+credPath,
		"AWS_PROFILE=moat",
		"AWS_REGION=us-east-1",
		"AWS_DEFAULT_REGION=us-east-1", // what version 1 reads
		"AWS_CONFIG_FILE="+filepath.Join(work, "no-config"),
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_PAGER=",
	)
	version := exec.CommandContext(ctx, awsCLI, "--version")
	version.Env = env
	v, err := version.CombinedOutput()
	if err != nil {
		t.Fatalf("aws --version: %v\n%s", err, v)
	}
	args := []string{"lambda", "invoke", "--endpoint-url", p.node.url, "--function-name", "echo", "--payload", `{"a":1}`}
	// Version 2 reads inline blobs as base64 unless told otherwise; version 1
	// sends them as they are and has no such option.
	if !strings.HasPrefix(string(v), "aws-cli/1.") {
		args = append(args, "--cli-binary-format", "raw-in-base64-out")
	}
	cmd := exec.CommandContext(ctx, awsCLI, append(args, outFile)...)
	cmd.Dir = work
	cmd.Env = env
	stdout, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("aws lambda invoke: %v\nstdout: %s\nstderr: %s", err, stdout, ee.Stderr)
		}
		t.Fatalf("aws lambda invoke: %v", err)
	}
	t.Logf("%s: %s", strings.TrimSpace(string(v)), strings.TrimSpace(string(stdout)))
	got, err := os.ReadFile(outFile)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != `{"a":1}` {
		t.Errorf("out.json = %q, want {\"a\":1}", got)
	}
	var meta struct {
		StatusCode      int
		ExecutedVersion string
		FunctionError   string
	}
	if err := json.Unmarshal(stdout, &meta); err != nil || meta.StatusCode != 200 || meta.FunctionError != "" || meta.ExecutedVersion != "$LATEST" {
		t.Errorf("aws lambda invoke printed %s (%v)", stdout, err)
	}

	// A function URL made with the AWS CLI answers plain HTTP.
	cmd = exec.CommandContext(ctx, awsCLI, "lambda", "create-function-url-config", "--endpoint-url", p.node.url,
		"--function-name", "echo", "--auth-type", "NONE")
	cmd.Env = env
	stdout, err = cmd.Output()
	if err != nil {
		t.Fatalf("aws lambda create-function-url-config: %v", err)
	}
	var cfg struct{ FunctionUrl string }
	if err := json.Unmarshal(stdout, &cfg); err != nil || cfg.FunctionUrl == "" {
		t.Fatalf("create-function-url-config printed %s (%v)", stdout, err)
	}
	u, err := url.Parse(cfg.FunctionUrl)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, "127.0.0.1:"+u.Port()) // <id>.lambda-url.us-east-1.localhost
	}}}
	resp, err := hc.Get(cfg.FunctionUrl + "from/cli?q=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"rawPath":"/from/cli"`) || !strings.Contains(string(body), `"version":"2.0"`) {
		t.Errorf("GET %s: %d %s", cfg.FunctionUrl, resp.StatusCode, body)
	}
	p.stop(t)
}

// compactJSON returns b without insignificant white space ("" if it is not
// JSON).
func compactJSON(b []byte) string {
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return ""
	}
	return buf.String()
}

// TestProcessMonitorCLI drives moat trace, alerts, profile and rules
// through the real binary against a real node.
func TestProcessMonitorCLI(t *testing.T) {
	fixture.RequireRoot(t)
	p := startMoat(t, t.TempDir(), "--learn-invocations", "1")
	p.node.requireMonitoring(t)
	dir := t.TempDir()
	zipPath := filepath.Join(dir, "suspicious.zip")
	if err := os.WriteFile(zipPath, fixture.GoZip(t, "testdata/functions/suspicious"), 0o644); err != nil {
		t.Fatal(err)
	}
	p.mustCLI(t, "deploy", "sus", zipPath)
	p.mustCLI(t, "invoke", "sus", "--payload", `{"action":"list"}`)
	p.node.waitLearned(t, "sus")
	r := p.mustCLI(t, "invoke", "sus", "--payload", `{"action":"shell"}`, "--output", "json")
	var inv struct{ RequestId string }
	if err := json.Unmarshal([]byte(r.stdout), &inv); err != nil || inv.RequestId == "" {
		t.Fatalf("invoke --output json: %s", r)
	}

	// The record, as a tree, once written.
	var tr cliResult
	for deadline := time.Now().Add(10 * time.Second); ; pause(100 * time.Millisecond) {
		tr = p.cli(t, "trace", inv.RequestId)
		if tr.code == 0 || time.Now().After(deadline) {
			break
		}
	}
	for _, want := range []string{"Request " + inv.RequestId, "function sus:$LATEST", "Processes", "/bin/sh -c id", "Alerts", "shell-spawned", "profile.exec"} {
		if !strings.Contains(tr.stdout, want) {
			t.Errorf("trace lacks %q: %s", want, tr)
		}
	}
	if r := p.cli(t, "trace", "no-such-request"); r.code != 1 || !strings.Contains(r.stderr, "ResourceNotFoundException") {
		t.Errorf("trace of an unknown request: %s", r)
	}

	r = p.mustCLI(t, "alerts", "--function", "sus")
	if !strings.Contains(r.stdout, "HIGH") || !strings.Contains(r.stdout, "shell-spawned") || !strings.Contains(r.stdout, inv.RequestId) {
		t.Errorf("alerts: %s", r)
	}

	r = p.mustCLI(t, "profile", "show", "sus")
	if !strings.Contains(r.stdout, "state: learned") || !strings.Contains(r.stdout, "/var/task/bootstrap") {
		t.Errorf("profile show: %s", r)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte(strings.Replace(r.stdout, "\nstate: learned", "\nstate: relaxed", 1)), 0o644)
	if r := p.cli(t, "profile", "edit", "sus", "-f", bad); r.code != 1 || !strings.Contains(r.stderr, "InvalidParameterValueException") || !strings.Contains(r.stderr, "state must be") {
		t.Errorf("profile edit with a bad state: %s", r)
	}
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte(strings.Replace(r.stdout, "exec:\n", "exec:\n  - /usr/bin/dash\n", 1)), 0o644)
	if r := p.mustCLI(t, "profile", "edit", "sus", "-f", good); !strings.Contains(r.stdout, "/usr/bin/dash") {
		t.Errorf("profile edit: %s", r)
	}
	if r := p.mustCLI(t, "profile", "approve", "sus"); !strings.Contains(r.stdout, "state: approved") {
		t.Errorf("profile approve: %s", r)
	}
	if r := p.cli(t, "profile", "approve", "sus"); r.code != 1 || !strings.Contains(r.stderr, "already approved") {
		t.Errorf("approving twice: %s", r)
	}

	rules := filepath.Join(dir, "rules.yaml")
	os.WriteFile(rules, []byte("rules:\n  - name: no-id\n    severity: high\n    condition: kind == \"exec\" && argv.exists(a, a == \"id\")\n"), 0o644)
	p.mustCLI(t, "rules", "check", rules)
	p.mustCLI(t, "rules", "set", rules)
	if r := p.mustCLI(t, "rules"); !strings.Contains(r.stdout, "shell-spawned") || !strings.Contains(r.stdout, "name: no-id") {
		t.Errorf("rules: %s", r)
	}
	os.WriteFile(rules, []byte("rules:\n  - name: broken\n    severity: high\n    condition: kind == \"exec\" && hostname == \"x\"\n"), 0o644)
	if r := p.cli(t, "rules", "set", rules); r.code != 1 || !strings.Contains(r.stderr, "undeclared reference to 'hostname'") {
		t.Errorf("rules set with an unknown field: %s", r)
	}
	// The user rule fires on the next shell.
	_ = p.mustCLI(t, "invoke", "sus", "--payload", `{"action":"shell"}`)
	for deadline := time.Now().Add(10 * time.Second); ; pause(100 * time.Millisecond) {
		if r := p.mustCLI(t, "alerts", "--function", "sus", "--output", "json"); strings.Contains(r.stdout, `"rule":"no-id"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the user rule raised no alert")
		}
	}
}
