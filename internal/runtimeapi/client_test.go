package runtimeapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"moat.dev/moat/internal/fixture"
	"moat.dev/moat/internal/runtimeapi"
)

// These tests run real functions built with github.com/aws/aws-lambda-go
// against the Server, so that its runtime loop, not a test's idea of it, is
// the client.

// bootstrap is a function process talking to one Server.
type bootstrap struct {
	cmd     *exec.Cmd
	stderr  lockedBuffer
	done    chan struct{} // closed when the process has exited
	waitErr error
}

// startBootstrap runs the Go function built from pkgDir with the Runtime
// API at api, and waits for its first next. When the process exits the
// Server is closed, as the sandbox does.
func startBootstrap(t *testing.T, pkgDir string) (*runtimeapi.Server, *bootstrap) {
	t.Helper()
	bin := fixture.GoBinary(t, pkgDir)
	api, ts := newAPI(t)
	p := &bootstrap{done: make(chan struct{})}
	p.cmd = exec.Command(bin)
	p.cmd.Dir = t.TempDir()
	p.cmd.Env = []string{
		"AWS_LAMBDA_RUNTIME_API=" + ts.Listener.Addr().String(),
		"_HANDLER=bootstrap",
		"AWS_LAMBDA_FUNCTION_NAME=f",
	}
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
		api.Close()
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	select {
	case <-api.Ready():
	case <-p.done:
		t.Fatalf("%s exited before asking for an invocation: %v\n%s", pkgDir, p.waitErr, p.stderr.String())
	case <-time.After(waitLimit):
		t.Fatalf("%s never asked for an invocation", pkgDir)
	}
	return api, p
}

func invokeNow(t *testing.T, api *runtimeapi.Server, inv *runtimeapi.Invocation) (*runtimeapi.Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	defer cancel()
	return api.Invoke(ctx, inv)
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestAWSLambdaGoEcho(t *testing.T) {
	api, p := startBootstrap(t, "examples/echo-go")
	big, _ := json.Marshal(strings.Repeat("x", 1<<20))
	events := []struct{ name, event string }{
		{"object", `{"hello":"world"}`},
		{"array", `[1,2,3]`},
		{"string", `"text"`},
		{"null", `null`},
		{"unicode", `{"greeting":"héllo, 世界 ✓"}`},
		{"1 MiB", string(big)},
	}
	for i, ev := range events {
		t.Run(ev.name, func(t *testing.T) {
			inv := invocation("echo-"+strconv.Itoa(i), ev.event)
			inv.Deadline = time.Now().Add(time.Minute)
			res, err := invokeNow(t, api, inv)
			if err != nil {
				t.Fatalf("Invoke: %v\n%s", err, p.stderr.String())
			}
			if res.IsError() || string(res.Payload) != ev.event {
				t.Errorf("echo = type %q err %v payload %.200s, want %.200s", res.ErrorType, res.Err, res.Payload, ev.event)
			}
		})
	}
	// Every invocation went to the same process: it is still running.
	select {
	case <-p.done:
		t.Errorf("echo exited: %v\n%s", p.waitErr, p.stderr.String())
	default:
	}
}

func TestAWSLambdaGoBehave(t *testing.T) {
	api, p := startBootstrap(t, "testdata/functions/behave")

	t.Run("error", func(t *testing.T) {
		inv := invocation("error-1", `{"action":"error","message":"bad thing"}`)
		inv.Deadline = time.Now().Add(time.Minute)
		res, err := invokeNow(t, api, inv)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct{ ErrorMessage, ErrorType string }
		_ = json.Unmarshal(res.Payload, &doc)
		if res.ErrorType != "errorString" || res.Err || doc.ErrorMessage != "bad thing" || doc.ErrorType != "errorString" {
			t.Errorf("error = %+v %s", res, res.Payload)
		}
	})

	t.Run("context", func(t *testing.T) {
		inv := &runtimeapi.Invocation{
			RequestID:       "c0ffee00-0000-4000-8000-000000000001",
			Payload:         []byte(`{"action":"context"}`),
			Deadline:        time.UnixMilli(time.Now().Add(2 * time.Minute).UnixMilli()),
			InvokedARN:      "arn:aws:lambda:eu-west-1:123456789012:function:behave:live",
			TraceID:         "Root=1-00000000-000000000000000000000000;Sampled=0",
			ClientContext:   `{"client":{"app_title":"t"},"custom":{"k":"v","n":"1"},"env":{"platform":"linux"}}`,
			CognitoIdentity: `{"cognitoIdentityId":"id-1","cognitoIdentityPoolId":"pool-1"}`,
		}
		res, err := invokeNow(t, api, inv)
		if err != nil {
			t.Fatal(err)
		}
		if res.IsError() {
			t.Fatalf("context = %s", res.Payload)
		}
		var got struct {
			RequestID      string            `json:"request_id"`
			ARN            string            `json:"invoked_function_arn"`
			DeadlineUnixMS int64             `json:"deadline_unix_ms"`
			Custom         map[string]string `json:"client_context_custom"`
			Env            map[string]string `json:"client_context_env"`
			IdentityID     string            `json:"identity_id"`
			IdentityPoolID string            `json:"identity_pool_id"`
			FunctionName   string            `json:"function_name"`
		}
		if err := json.Unmarshal(res.Payload, &got); err != nil {
			t.Fatalf("context %s: %v", res.Payload, err)
		}
		if got.RequestID != inv.RequestID || got.ARN != inv.InvokedARN || got.DeadlineUnixMS != inv.Deadline.UnixMilli() ||
			got.Custom["k"] != "v" || got.Custom["n"] != "1" || len(got.Custom) != 2 || got.Env["platform"] != "linux" ||
			got.IdentityID != "id-1" || got.IdentityPoolID != "pool-1" || got.FunctionName != "f" {
			t.Errorf("the function saw %+v\nfor %+v", got, inv)
		}
	})

	t.Run("panic", func(t *testing.T) {
		inv := invocation("panic-1", `{"action":"panic","message":"boom"}`)
		inv.Deadline = time.Now().Add(time.Minute)
		res, err := invokeNow(t, api, inv)
		if err != nil {
			t.Fatalf("Invoke: %v (the error report must arrive before the exit)", err)
		}
		if res.ErrorType == "" || !strings.Contains(string(res.Payload), `"boom"`) {
			t.Errorf("panic = %+v %s", res, res.Payload)
		}
		select {
		case <-p.done:
		case <-time.After(waitLimit):
			t.Fatal("behave did not exit after a panic")
		}
		var ee *exec.ExitError
		if !errors.As(p.waitErr, &ee) || ee.ExitCode() == 0 {
			t.Errorf("behave exit = %v, want a non-zero status", p.waitErr)
		}
		if _, err := invokeNow(t, api, invocation("after-panic", `{"action":"echo"}`)); !errors.Is(err, runtimeapi.ErrNotDelivered) {
			t.Errorf("Invoke after the exit = %v, want ErrNotDelivered", err)
		}
	})
}
