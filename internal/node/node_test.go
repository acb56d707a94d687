package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"moat.dev/moat/internal/credentials"
	"moat.dev/moat/internal/fixture"
	"moat.dev/moat/internal/sandbox"
)

func TestMain(m *testing.M) {
	sandbox.Init()
	os.Exit(m.Run())
}

// testNode is a real node on a loopback port with a temp data dir.
type testNode struct {
	url    string
	dir    string
	key    credentials.Key
	client *lambda.Client
	stop   func()
}

func startNode(t testing.TB, mutate func(*Options)) *testNode {
	t.Helper()
	fixture.RequireRoot(t)
	dir := t.TempDir()
	opts := Options{
		Listen:           "127.0.0.1:0",
		URLListen:        "127.0.0.1:0",
		DataDir:          dir,
		AsyncRetryDelays: []time.Duration{50 * time.Millisecond, 50 * time.Millisecond},
		ShutdownGrace:    10 * time.Second,
		SandboxPool:      2, // as moat up: the suites run on pooled instances
		Logger:           slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if mutate != nil {
		mutate(&opts)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- Run(ctx, opts, func(addr string) { ready <- addr }) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("node did not start: %v", err)
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatal("node not ready after 60s")
	}
	n := &testNode{url: "http://" + addr, dir: dir}
	var stop func()
	var once sync.Once
	n.stop = func() { once.Do(stop) }
	stop = func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("node shutdown: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("node did not stop")
		}
	}
	t.Cleanup(n.stop)
	keys, err := credentials.Load(filepath.Join(dir, "credentials"))
	if err != nil {
		t.Fatal(err)
	}
	n.key = keys[credentials.Profile]
	n.client = lambda.New(lambda.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(n.url),
		Credentials:  awscreds.NewStaticCredentialsProvider(n.key.AccessKeyID, n.key.SecretAccessKey, ""),
	})
	return n
}

// signed sends a SigV4-signed request to moat's own API.
func (n *testNode) signed(t testing.TB, method, path string, body []byte) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, n.url+path, bytes.NewReader(body))
	sum := sha256.Sum256(body)
	err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: n.key.AccessKeyID, SecretAccessKey: n.key.SecretAccessKey},
		req, hex.EncodeToString(sum[:]), "lambda", "us-east-1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func (n *testNode) create(t testing.TB, name string, zip []byte, mutate func(*lambda.CreateFunctionInput)) {
	t.Helper()
	in := &lambda.CreateFunctionInput{
		FunctionName: aws.String(name),
		Runtime:      types.RuntimeProvidedal2023,
		Handler:      aws.String("bootstrap"),
		Role:         aws.String("arn:aws:iam::000000000000:role/moat"),
		Code:         &types.FunctionCode{ZipFile: zip},
	}
	if mutate != nil {
		mutate(in)
	}
	if _, err := n.client.CreateFunction(context.Background(), in); err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
}

func (n *testNode) invoke(t testing.TB, name string, payload any, mutate func(*lambda.InvokeInput)) *lambda.InvokeOutput {
	t.Helper()
	b, _ := json.Marshal(payload)
	in := &lambda.InvokeInput{FunctionName: aws.String(name), Payload: b}
	if mutate != nil {
		mutate(in)
	}
	out, err := n.client.Invoke(context.Background(), in)
	if err != nil {
		t.Fatalf("invoke %s: %v", name, err)
	}
	return out
}

func TestSDKEndToEnd(t *testing.T) {
	n := startNode(t, nil)
	ctx := context.Background()
	n.create(t, "echo", fixture.GoZip(t, "examples/echo-go"), nil)
	n.create(t, "behave", fixture.GoZip(t, "testdata/functions/behave"), func(in *lambda.CreateFunctionInput) {
		in.Environment = &types.Environment{Variables: map[string]string{"TAG": "one"}}
	})

	t.Run("sync echo with log tail", func(t *testing.T) {
		out := n.invoke(t, "echo", map[string]any{"hello": "moat"}, func(in *lambda.InvokeInput) { in.LogType = types.LogTypeTail })
		if string(out.Payload) != `{"hello":"moat"}` || out.StatusCode != 200 || out.FunctionError != nil {
			t.Fatalf("got %d %q %v", out.StatusCode, out.Payload, out.FunctionError)
		}
		tail, _ := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
		if !strings.Contains(string(tail), "START RequestId: ") || !strings.Contains(string(tail), "REPORT RequestId: ") {
			t.Fatalf("log tail: %q", tail)
		}
		if aws.ToString(out.ExecutedVersion) != "$LATEST" {
			t.Fatalf("executed version %q", aws.ToString(out.ExecutedVersion))
		}
	})
	t.Run("function error", func(t *testing.T) {
		out := n.invoke(t, "behave", map[string]any{"action": "error", "message": "nope"}, nil)
		if aws.ToString(out.FunctionError) != "Unhandled" || !strings.Contains(string(out.Payload), `"errorMessage":"nope"`) {
			resp := n.signed(t, "GET", "/moat/v1/logs/behave", nil)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			t.Fatalf("got %v %s\nlogs of behave:\n%s", out.FunctionError, out.Payload, body)
		}
	})
	t.Run("panic then fresh instance", func(t *testing.T) {
		out := n.invoke(t, "behave", map[string]any{"action": "panic", "message": "kaboom"}, nil)
		if aws.ToString(out.FunctionError) != "Unhandled" || !strings.Contains(string(out.Payload), "kaboom") {
			t.Fatalf("got %v %s", out.FunctionError, out.Payload)
		}
		out = n.invoke(t, "behave", map[string]any{"action": "count"}, nil)
		if out.FunctionError != nil {
			t.Fatalf("invocation after a panic failed: %s", out.Payload)
		}
	})
	t.Run("client context and ARN name", func(t *testing.T) {
		cc := base64.StdEncoding.EncodeToString([]byte(`{"custom":{"k":"v"}}`))
		out := n.invoke(t, "arn:aws:lambda:us-east-1:000000000000:function:behave", map[string]any{"action": "context"}, func(in *lambda.InvokeInput) {
			in.ClientContext = aws.String(cc)
		})
		s := string(out.Payload)
		if !strings.Contains(s, `"k":"v"`) || !strings.Contains(s, "function:behave") {
			t.Fatalf("context not passed: %s", s)
		}
	})
	t.Run("dry run and event", func(t *testing.T) {
		out := n.invoke(t, "echo", map[string]any{}, func(in *lambda.InvokeInput) { in.InvocationType = types.InvocationTypeDryRun })
		if out.StatusCode != 204 {
			t.Fatalf("dry run status %d", out.StatusCode)
		}
		out = n.invoke(t, "echo", map[string]any{}, func(in *lambda.InvokeInput) { in.InvocationType = types.InvocationTypeEvent })
		if out.StatusCode != 202 {
			t.Fatalf("event status %d", out.StatusCode)
		}
	})
	t.Run("errors", func(t *testing.T) {
		_, err := n.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("missing")})
		var nf *types.ResourceNotFoundException
		if !errors.As(err, &nf) {
			t.Fatalf("unknown function: %v", err)
		}
		big := bytes.Repeat([]byte("a"), 6*1024*1024+10)
		_, err = n.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo"), Payload: append(append([]byte(`"`), big...), '"')})
		var tl *types.RequestTooLargeException
		if !errors.As(err, &tl) {
			t.Fatalf("oversized payload: %v", err)
		}
		_, err = n.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo"), InvocationType: types.InvocationTypeEvent,
			Payload: []byte(`"` + strings.Repeat("a", 300*1024) + `"`)})
		if !errors.As(err, &tl) {
			t.Fatalf("oversized async payload: %v", err)
		}
		bad := lambda.New(lambda.Options{Region: "us-east-1", BaseEndpoint: aws.String(n.url),
			Credentials: awscreds.NewStaticCredentialsProvider(n.key.AccessKeyID, "wrong-secret", "")})
		_, err = bad.ListFunctions(ctx, &lambda.ListFunctionsInput{})
		if err == nil || !strings.Contains(err.Error(), "InvalidSignatureException") {
			t.Fatalf("wrong secret: %v", err)
		}
		resp, err := http.Get(n.url + "/2015-03-31/functions")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 403 {
			t.Fatalf("unsigned request: %d", resp.StatusCode)
		}
		resp, err = http.Get(n.url + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("healthz: %d", resp.StatusCode)
		}
	})
	t.Run("throttle", func(t *testing.T) {
		if _, err := n.client.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("echo"), ReservedConcurrentExecutions: aws.Int32(0)}); err != nil {
			t.Fatal(err)
		}
		_, err := n.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo"), Payload: []byte(`{}`)})
		var tm *types.TooManyRequestsException
		if !errors.As(err, &tm) {
			t.Fatalf("reserved concurrency 0: %v", err)
		}
		if _, err := n.client.DeleteFunctionConcurrency(ctx, &lambda.DeleteFunctionConcurrencyInput{FunctionName: aws.String("echo")}); err != nil {
			t.Fatal(err)
		}
		n.invoke(t, "echo", map[string]any{}, nil)
	})
	t.Run("versions and weighted alias", func(t *testing.T) {
		v1, err := n.client.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("behave")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := n.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("behave"),
			Environment: &types.Environment{Variables: map[string]string{"TAG": "two"}}}); err != nil {
			t.Fatal(err)
		}
		v2, err := n.client.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("behave")})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(v1.Version) == aws.ToString(v2.Version) {
			t.Fatalf("publishing a changed function returned the same version %s", aws.ToString(v1.Version))
		}
		if _, err := n.client.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("behave"), Name: aws.String("live"),
			FunctionVersion: v1.Version,
			RoutingConfig:   &types.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{aws.ToString(v2.Version): 0.5}}}); err != nil {
			t.Fatal(err)
		}
		seen := map[string]int{}
		for i := 0; i < 40; i++ {
			out := n.invoke(t, "behave", map[string]any{"action": "env", "names": []string{"TAG"}}, func(in *lambda.InvokeInput) { in.Qualifier = aws.String("live") })
			var r struct{ Vars map[string]string }
			_ = json.Unmarshal(out.Payload, &r)
			if want := map[string]string{aws.ToString(v1.Version): "one", aws.ToString(v2.Version): "two"}[aws.ToString(out.ExecutedVersion)]; r.Vars["TAG"] != want {
				t.Fatalf("version %s ran with TAG=%q", aws.ToString(out.ExecutedVersion), r.Vars["TAG"])
			}
			seen[aws.ToString(out.ExecutedVersion)]++
		}
		if len(seen) != 2 {
			t.Fatalf("weighted alias routed only to %v", seen)
		}
		out := n.invoke(t, "behave", map[string]any{"action": "env", "names": []string{"TAG"}}, func(in *lambda.InvokeInput) { in.Qualifier = v1.Version })
		if !strings.Contains(string(out.Payload), `"one"`) {
			t.Fatalf("version 1 is not immutable: %s", out.Payload)
		}
	})
	t.Run("logs endpoint", func(t *testing.T) {
		resp := n.signed(t, "GET", "/moat/v1/logs/echo", nil)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || !strings.Contains(string(body), "START RequestId") {
			t.Fatalf("logs: %d %s", resp.StatusCode, body)
		}
	})
}

// TestAsyncRetriesAndDestination checks that a failing Event invocation is
// tried 1 + MaximumRetryAttempts times and its record reaches the on-failure
// destination.
func TestAsyncRetriesAndDestination(t *testing.T) {
	n := startNode(t, nil)
	ctx := context.Background()
	n.create(t, "behave", fixture.GoZip(t, "testdata/functions/behave"), nil)
	if _, err := n.client.PutFunctionEventInvokeConfig(ctx, &lambda.PutFunctionEventInvokeConfigInput{
		FunctionName:         aws.String("behave"),
		MaximumRetryAttempts: aws.Int32(2),
		DestinationConfig: &types.DestinationConfig{
			OnFailure: &types.OnFailure{Destination: aws.String("arn:aws:sqs:us-east-1:000000000000:failed")},
			OnSuccess: &types.OnSuccess{Destination: aws.String("arn:aws:sqs:us-east-1:000000000000:succeeded")},
		},
	}); err != nil {
		t.Fatal(err)
	}
	n.invoke(t, "behave", map[string]any{"action": "error", "message": "always"}, func(in *lambda.InvokeInput) { in.InvocationType = types.InvocationTypeEvent })
	n.invoke(t, "behave", map[string]any{"action": "echo", "n": 1}, func(in *lambda.InvokeInput) { in.InvocationType = types.InvocationTypeEvent })

	failed := n.waitDestination(t, "failed")
	if failed.RequestContext.Condition != "RetriesExhausted" || failed.RequestContext.ApproximateInvokeCount != 3 ||
		failed.ResponseContext.FunctionError != "Unhandled" || !strings.Contains(string(failed.ResponsePayload), "always") {
		t.Fatalf("failure record: %+v %s", failed, failed.ResponsePayload)
	}
	ok := n.waitDestination(t, "succeeded")
	if ok.RequestContext.Condition != "Success" || !strings.Contains(string(ok.RequestPayload), `"n":1`) {
		t.Fatalf("success record: %+v", ok)
	}
}

type destRecord struct {
	RequestContext struct {
		RequestID              string `json:"requestId"`
		Condition              string `json:"condition"`
		ApproximateInvokeCount int    `json:"approximateInvokeCount"`
	} `json:"requestContext"`
	RequestPayload  json.RawMessage `json:"requestPayload"`
	ResponseContext struct {
		FunctionError string `json:"functionError"`
	} `json:"responseContext"`
	ResponsePayload json.RawMessage `json:"responsePayload"`
}

// waitDestination follows a queue destination until its first record.
func (n *testNode) waitDestination(t testing.TB, name string) destRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", n.url+"/moat/v1/destinations/"+name+"?follow=1", nil)
	sum := sha256.Sum256(nil)
	_ = v4.NewSigner().SignHTTP(ctx, aws.Credentials{AccessKeyID: n.key.AccessKeyID, SecretAccessKey: n.key.SecretAccessKey},
		req, hex.EncodeToString(sum[:]), "lambda", "us-east-1", time.Now())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rec destRecord
	if err := json.NewDecoder(resp.Body).Decode(&rec); err != nil {
		t.Fatalf("no record at destination %s: %v", name, err)
	}
	return rec
}

// TestNodesKeepTheirOwnInstances starts a second node on the same host and
// checks that its start-up sweep leaves the first node's warm instance
// alive: every node sweeps only its own cgroup parent.
func TestNodesKeepTheirOwnInstances(t *testing.T) {
	a := startNode(t, nil)
	a.create(t, "behave", fixture.GoZip(t, "testdata/functions/behave"), nil)
	first := a.invoke(t, "behave", map[string]any{"action": "count"}, nil)
	startNode(t, nil)
	second := a.invoke(t, "behave", map[string]any{"action": "count"}, nil)
	var c1, c2 struct{ Count int }
	_ = json.Unmarshal(first.Payload, &c1)
	_ = json.Unmarshal(second.Payload, &c2)
	if c1.Count != 1 || c2.Count != 2 {
		t.Fatalf("the first node's warm instance did not survive another node's start: counts %d then %d", c1.Count, c2.Count)
	}
}
