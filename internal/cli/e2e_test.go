package cli

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"moat.dev/moat/internal/node"
)

// These tests run the command line against an httptest server standing in
// for moat, and check what it sends: method, path, query, headers, body and
// a SigV4 signature that verifies with the caller's keys.

const (
	testAK     = "AKIDMOATTEST"
	testSK     = "secretmoattest"
	testRegion = "us-east-1"
)

type recorded struct {
	method, host, uri, path string
	query                   map[string][]string
	header                  http.Header
	body                    []byte
}

// fakeMoat serves scripted handlers and records every request.
type fakeMoat struct {
	mu   sync.Mutex
	reqs []recorded
	mux  *http.ServeMux
	srv  *httptest.Server
	env  map[string]string
}

func newFakeMoat(t *testing.T) *fakeMoat {
	f := &fakeMoat{mux: http.NewServeMux()}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, recorded{
			method: r.Method, host: r.Host, uri: r.URL.RequestURI(), path: r.URL.Path,
			query: r.URL.Query(), header: r.Header.Clone(), body: body,
		})
		f.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		f.mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	dataDir := t.TempDir()
	writeCredentials(t, dataDir, map[string][2]string{"moat": {testAK, testSK}})
	f.env = map[string]string{"MOAT_ENDPOINT": f.srv.URL, "MOAT_DATA_DIR": dataDir}
	return f
}

func (f *fakeMoat) handle(pattern string, h http.HandlerFunc) { f.mux.HandleFunc(pattern, h) }

// reply returns a handler answering status with the JSON body and headers.
func reply(status int, body string, headers ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		if w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

// awsError answers in the AWS JSON error shape moat uses.
func awsError(status int, code, msg string) http.HandlerFunc {
	return reply(status, fmt.Sprintf(`{"Type":"User","Message":%q}`, msg), "X-Amzn-ErrorType", code)
}

func (f *fakeMoat) run(t *testing.T, args ...string) result {
	t.Helper()
	return f.runIn(t, "", args...)
}

func (f *fakeMoat) runIn(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	a, out, errb := testApp(f.env, stdin)
	code := a.main(context.Background(), args)
	return result{code, out.String(), errb.String()}
}

// requests returns the recorded requests after checking that each one
// carries a valid signature.
func (f *fakeMoat) requests(t *testing.T) []recorded {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.reqs {
		verifySignature(t, r)
	}
	return append([]recorded(nil), f.reqs...)
}

// wantCalls checks the method and path of every request, in order.
func (f *fakeMoat) wantCalls(t *testing.T, want ...string) []recorded {
	t.Helper()
	reqs := f.requests(t)
	var got []string
	for _, r := range reqs {
		got = append(got, r.method+" "+r.path)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("requests:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	return reqs
}

// verifySignature re-signs the request as received, from the headers it
// says it signed, and compares signatures: this proves the signature covers
// this method, path, query, body, service "lambda", the region and the key.
func verifySignature(t *testing.T, r recorded) {
	t.Helper()
	auth := r.header.Get("Authorization")
	const prefix = "AWS4-HMAC-SHA256 Credential=" + testAK + "/"
	if !strings.HasPrefix(auth, prefix) || !strings.Contains(auth, "/"+testRegion+"/lambda/aws4_request") {
		t.Fatalf("%s %s: Authorization %q", r.method, r.path, auth)
	}
	_, signed, ok := strings.Cut(auth, "SignedHeaders=")
	if !ok {
		t.Fatalf("no SignedHeaders in %q", auth)
	}
	signed, _, _ = strings.Cut(signed, ",")
	req, err := http.NewRequest(r.method, "http://"+r.host+r.uri, bytes.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = r.host
	for _, h := range strings.Split(signed, ";") {
		if h != "host" && h != "content-length" {
			req.Header[http.CanonicalHeaderKey(h)] = r.header.Values(h)
		}
	}
	when, err := time.Parse("20060102T150405Z", r.header.Get("X-Amz-Date"))
	if err != nil {
		t.Fatalf("X-Amz-Date: %v", err)
	}
	sum := sha256.Sum256(r.body)
	creds := aws.Credentials{AccessKeyID: testAK, SecretAccessKey: testSK}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "lambda", testRegion, when); err != nil {
		t.Fatal(err)
	}
	if got := req.Header.Get("Authorization"); got != auth {
		t.Errorf("%s %s: signature does not verify\n got  %s\n want %s", r.method, r.path, auth, got)
	}
}

func decodeBody(t *testing.T, r recorded) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("%s %s body %q: %v", r.method, r.path, r.body, err)
	}
	return m
}

const fnConfig = `{"FunctionName":"%s","FunctionArn":"arn:aws:lambda:us-east-1:000000000000:function:%[1]s","Runtime":"provided.al2023","Handler":"bootstrap","MemorySize":%d,"Timeout":3,"CodeSize":42,"CodeSha256":"c29tZQ==","Version":"$LATEST","LastModified":"2026-01-02T03:04:05.000+0000"}`

func TestDeployCreatesFromDirectory(t *testing.T) {
	f := newFakeMoat(t)
	f.handle("GET /2015-03-31/functions/hello/configuration", awsError(404, "ResourceNotFoundException", "Function not found: hello"))
	f.handle("POST /2015-03-31/functions", reply(201, fmt.Sprintf(fnConfig, "hello", 256)))

	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "bootstrap"), []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(filepath.Join(dir, "data.txt"), []byte("x"), 0o644)
	r := f.run(t, "deploy", "hello", dir, "--memory", "256", "--env", "A=1", "--env", "B=two=2", "--description", "d")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "created hello (42 bytes") {
		t.Errorf("stdout %q", r.stdout)
	}
	reqs := f.wantCalls(t, "GET /2015-03-31/functions/hello/configuration", "POST /2015-03-31/functions")
	body := decodeBody(t, reqs[1])
	for k, want := range map[string]any{
		"FunctionName": "hello", "MemorySize": 256.0, "Timeout": 3.0, "Runtime": "provided.al2023",
		"Handler": "bootstrap", "Description": "d", "Role": defaultRole, "PackageType": "Zip",
	} {
		if body[k] != want {
			t.Errorf("%s = %v, want %v", k, body[k], want)
		}
	}
	if env := fmt.Sprint(body["Environment"]); env != "map[Variables:map[A:1 B:two=2]]" {
		t.Errorf("Environment = %s", env)
	}
	code, _ := body["Code"].(map[string]any)
	zb, err := base64.StdEncoding.DecodeString(fmt.Sprint(code["ZipFile"]))
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(zb), int64(len(zb)))
	if err != nil {
		t.Fatal(err)
	}
	modes := map[string]os.FileMode{}
	for _, zf := range zr.File {
		modes[zf.Name] = zf.Mode().Perm()
	}
	if modes["bootstrap"]&0o111 == 0 || modes["data.txt"]&0o111 != 0 || len(modes) != 2 {
		t.Errorf("zip entries %v", modes)
	}
}

func TestDeployUpdatesExisting(t *testing.T) {
	zipFile := filepath.Join(t.TempDir(), "fn.zip")
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("bootstrap")
	w.Write([]byte("bin"))
	zw.Close()
	os.WriteFile(zipFile, buf.Bytes(), 0o644)

	t.Run("code and set flags", func(t *testing.T) {
		f := newFakeMoat(t)
		f.handle("GET /2015-03-31/functions/hello/configuration", reply(200, fmt.Sprintf(fnConfig, "hello", 128)))
		f.handle("PUT /2015-03-31/functions/hello/code", reply(200, fmt.Sprintf(fnConfig, "hello", 128)))
		f.handle("PUT /2015-03-31/functions/hello/configuration", reply(200, fmt.Sprintf(fnConfig, "hello", 512)))
		r := f.run(t, "deploy", "hello", zipFile, "--memory", "512", "--output", "json")
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		reqs := f.wantCalls(t, "GET /2015-03-31/functions/hello/configuration",
			"PUT /2015-03-31/functions/hello/code", "PUT /2015-03-31/functions/hello/configuration")
		if code := decodeBody(t, reqs[1]); code["ZipFile"] != base64.StdEncoding.EncodeToString(buf.Bytes()) {
			t.Errorf("UpdateFunctionCode body %v", code)
		}
		cfg := decodeBody(t, reqs[2])
		if cfg["MemorySize"] != 512.0 || len(cfg) != 1 {
			t.Errorf("UpdateFunctionConfiguration body %v, want only MemorySize", cfg)
		}
		var v functionView
		if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v.MemorySize != 512 || v.FunctionName != "hello" {
			t.Errorf("json output %q: %v", r.stdout, err)
		}
	})
	t.Run("code only", func(t *testing.T) {
		f := newFakeMoat(t)
		f.handle("GET /2015-03-31/functions/hello/configuration", reply(200, fmt.Sprintf(fnConfig, "hello", 128)))
		f.handle("PUT /2015-03-31/functions/hello/code", reply(200, fmt.Sprintf(fnConfig, "hello", 128)))
		if r := f.run(t, "deploy", "hello", zipFile); r.code != 0 || !strings.HasPrefix(r.stdout, "updated hello") {
			t.Fatalf("exit %d: %s %s", r.code, r.stdout, r.stderr)
		}
		f.wantCalls(t, "GET /2015-03-31/functions/hello/configuration", "PUT /2015-03-31/functions/hello/code")
	})
}

func TestInvoke(t *testing.T) {
	payloadFile := filepath.Join(t.TempDir(), "event.json")
	os.WriteFile(payloadFile, []byte(`{"from":"file"}`), 0o644)
	logTail := base64.StdEncoding.EncodeToString([]byte("START RequestId: r1\nhello\nEND RequestId: r1\n"))

	tests := []struct {
		name       string
		args       []string
		stdin      string
		handler    http.HandlerFunc
		wantCode   int
		wantOut    string // stdout, exactly
		wantErr    string // in stderr
		wantBody   string
		wantHeader map[string]string
		wantQuery  string
	}{
		{name: "inline payload", args: []string{"--payload", `{"a":1}`},
			handler: reply(200, `{"a":1}`, "X-Amzn-RequestId", "r1", "X-Amz-Executed-Version", "$LATEST"),
			wantOut: "{\"a\":1}\n", wantBody: `{"a":1}`,
			wantHeader: map[string]string{"X-Amz-Invocation-Type": "RequestResponse"}},
		{name: "file payload and qualifier", args: []string{"--payload", "@" + payloadFile, "--qualifier", "live"},
			handler: reply(200, `"ok"`), wantOut: "\"ok\"\n", wantBody: `{"from":"file"}`, wantQuery: "Qualifier=live"},
		{name: "stdin payload", args: []string{"--payload", "-"}, stdin: `[1,2]`,
			handler: reply(200, `null`), wantOut: "null\n", wantBody: `[1,2]`},
		{name: "no payload", args: nil, handler: reply(200, `{}`), wantOut: "{}\n", wantBody: ``},
		{name: "tail", args: []string{"--tail"},
			handler: reply(200, `1`, "X-Amz-Log-Result", logTail), wantOut: "1\n", wantErr: "hello\nEND RequestId: r1\n",
			wantHeader: map[string]string{"X-Amz-Log-Type": "Tail"}},
		{name: "client context", args: []string{"--client-context", `{"custom":{"k":"v"}}`},
			handler: reply(200, `1`), wantOut: "1\n",
			wantHeader: map[string]string{"X-Amz-Client-Context": base64.StdEncoding.EncodeToString([]byte(`{"custom":{"k":"v"}}`))}},
		{name: "function error", args: []string{"--payload", `{}`},
			handler:  reply(200, `{"errorMessage":"boom","errorType":"errorString"}`, "X-Amz-Function-Error", "Unhandled"),
			wantCode: 1, wantOut: "{\"errorMessage\":\"boom\",\"errorType\":\"errorString\"}\n", wantErr: "function error (Unhandled)", wantBody: `{}`},
		{name: "async", args: []string{"--async", "--payload", `{}`},
			handler: reply(202, ``, "X-Amzn-RequestId", "req-123"), wantOut: "req-123\n", wantBody: `{}`,
			wantHeader: map[string]string{"X-Amz-Invocation-Type": "Event"}},
		{name: "dry run", args: []string{"--dry-run"}, handler: reply(204, ``), wantOut: "",
			wantHeader: map[string]string{"X-Amz-Invocation-Type": "DryRun"}},
		{name: "json output", args: []string{"--output", "json"},
			handler: reply(200, `{"x":true}`, "X-Amzn-RequestId", "r9", "X-Amz-Executed-Version", "3"),
			wantOut: "{\n  \"StatusCode\": 200,\n  \"RequestId\": \"r9\",\n  \"ExecutedVersion\": \"3\",\n  \"Payload\": {\n    \"x\": true\n  }\n}\n"},
		{name: "throttled", args: nil,
			handler:  awsError(429, "TooManyRequestsException", "Rate Exceeded."),
			wantCode: 1, wantErr: "moat: Invoke: TooManyRequestsException: Rate Exceeded.\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeMoat(t)
			f.handle("POST /2015-03-31/functions/fn/invocations", tt.handler)
			r := f.runIn(t, tt.stdin, append([]string{"invoke", "fn"}, tt.args...)...)
			if r.code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr %q", r.code, tt.wantCode, r.stderr)
			}
			if r.stdout != tt.wantOut {
				t.Errorf("stdout %q, want %q", r.stdout, tt.wantOut)
			}
			if !strings.Contains(r.stderr, tt.wantErr) {
				t.Errorf("stderr %q lacks %q", r.stderr, tt.wantErr)
			}
			reqs := f.wantCalls(t, "POST /2015-03-31/functions/fn/invocations")
			if string(reqs[0].body) != tt.wantBody {
				t.Errorf("body %q, want %q", reqs[0].body, tt.wantBody)
			}
			for k, v := range tt.wantHeader {
				if got := reqs[0].header.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if q, _, _ := strings.Cut(strings.TrimPrefix(reqs[0].uri, reqs[0].path), "#"); strings.TrimPrefix(q, "?") != tt.wantQuery {
				t.Errorf("query %q, want %q", q, tt.wantQuery)
			}
		})
	}
}

func TestInvalidPayloadSendsNothing(t *testing.T) {
	f := newFakeMoat(t)
	r := f.run(t, "invoke", "fn", "--payload", `{"unterminated":`)
	if r.code != 2 {
		t.Fatalf("exit %d", r.code)
	}
	if reqs := f.requests(t); len(reqs) != 0 {
		t.Errorf("%d requests sent", len(reqs))
	}
}

func TestListFollowsPages(t *testing.T) {
	f := newFakeMoat(t)
	f.handle("GET /2015-03-31/functions", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("Marker") == "" {
			reply(200, `{"Functions":[`+fmt.Sprintf(fnConfig, "a", 128)+`],"NextMarker":"page2"}`)(w, r)
			return
		}
		reply(200, `{"Functions":[`+fmt.Sprintf(fnConfig, "b", 1024)+`]}`)(w, r)
	})
	r := f.run(t, "ls")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") || !strings.HasPrefix(lines[1], "a ") ||
		!strings.HasPrefix(lines[2], "b ") || !strings.Contains(lines[2], "1024 MB") {
		t.Errorf("ls output:\n%s", r.stdout)
	}
	reqs := f.wantCalls(t, "GET /2015-03-31/functions", "GET /2015-03-31/functions")
	if reqs[1].query["Marker"][0] != "page2" {
		t.Errorf("second page query %v", reqs[1].query)
	}

	r = f.run(t, "ls", "--output", "json")
	var out struct{ Functions []functionView }
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || len(out.Functions) != 2 || out.Functions[1].MemorySize != 1024 {
		t.Errorf("json %q: %v", r.stdout, err)
	}
}

func TestControlCommands(t *testing.T) {
	const alias = `{"Name":"live","FunctionVersion":"1","AliasArn":"arn:aws:lambda:us-east-1:000000000000:function:fn:live","RoutingConfig":{"AdditionalVersionWeights":{"2":0.1}}}`
	tests := []struct {
		name     string
		args     []string
		route    string
		handler  http.HandlerFunc
		wantOut  string
		wantBody map[string]any // top-level fields of the JSON body, compared with fmt.Sprint
		wantQ    map[string]string
	}{
		{name: "rm", args: []string{"rm", "fn"}, route: "DELETE /2015-03-31/functions/fn",
			handler: reply(204, ""), wantOut: "deleted fn\n"},
		{name: "rm version", args: []string{"rm", "fn", "--qualifier", "3"}, route: "DELETE /2015-03-31/functions/fn",
			handler: reply(204, ""), wantOut: "deleted fn:3\n", wantQ: map[string]string{"Qualifier": "3"}},
		{name: "publish", args: []string{"publish", "fn", "--description", "release"}, route: "POST /2015-03-31/functions/fn/versions",
			handler: reply(201, `{"FunctionName":"fn","Version":"4"}`), wantOut: "4\n",
			wantBody: map[string]any{"Description": "release"}},
		{name: "alias create", args: []string{"alias", "fn", "create", "live", "--version", "1", "--weight", "2=0.1"},
			route: "POST /2015-03-31/functions/fn/aliases", handler: reply(201, alias), wantOut: "live -> 1 (2=10%)\n",
			wantBody: map[string]any{"Name": "live", "FunctionVersion": "1", "RoutingConfig": "map[AdditionalVersionWeights:map[2:0.1]]"}},
		{name: "alias update", args: []string{"alias", "fn", "update", "live", "--version", "2"},
			route: "PUT /2015-03-31/functions/fn/aliases/live", handler: reply(200, alias), wantOut: "live -> 1 (2=10%)\n",
			wantBody: map[string]any{"FunctionVersion": "2"}},
		{name: "alias get json", args: []string{"alias", "fn", "get", "live", "--output", "json"},
			route: "GET /2015-03-31/functions/fn/aliases/live", handler: reply(200, alias),
			wantOut: "{\n  \"Name\": \"live\",\n  \"AliasArn\": \"arn:aws:lambda:us-east-1:000000000000:function:fn:live\",\n  \"FunctionVersion\": \"1\",\n  \"RoutingConfig\": {\n    \"AdditionalVersionWeights\": {\n      \"2\": 0.1\n    }\n  }\n}\n"},
		{name: "alias rm", args: []string{"alias", "fn", "rm", "live"},
			route: "DELETE /2015-03-31/functions/fn/aliases/live", handler: reply(204, ""), wantOut: "deleted alias fn:live\n"},
		{name: "alias ls", args: []string{"alias", "fn", "ls"},
			route: "GET /2015-03-31/functions/fn/aliases", handler: reply(200, `{"Aliases":[`+alias+`]}`),
			wantOut: "ALIAS  VERSION  WEIGHTS  DESCRIPTION\nlive   1        2=10%    -\n"},
		{name: "url get", args: []string{"url", "fn"},
			route: "GET /2021-10-31/functions/fn/url", handler: reply(200, `{"FunctionUrl":"http://abc.lambda-url.us-east-1.localhost:9002/","AuthType":"NONE","FunctionArn":"arn:fn"}`),
			wantOut: "http://abc.lambda-url.us-east-1.localhost:9002/  (NONE, arn:fn)\n"},
		{name: "url create", args: []string{"url", "fn", "--auth", "iam", "--cors-origin", "https://app.example", "--cors-method", "GET", "--qualifier", "live"},
			route: "POST /2021-10-31/functions/fn/url", handler: reply(201, `{"FunctionUrl":"http://abc.lambda-url.us-east-1.localhost:9002/","AuthType":"AWS_IAM","FunctionArn":"arn:fn:live"}`),
			wantOut:  "http://abc.lambda-url.us-east-1.localhost:9002/  (AWS_IAM, arn:fn:live)\n",
			wantBody: map[string]any{"AuthType": "AWS_IAM", "Cors": "map[AllowMethods:[GET] AllowOrigins:[https://app.example]]"}},
		{name: "url delete", args: []string{"url", "fn", "--delete"},
			route: "DELETE /2021-10-31/functions/fn/url", handler: reply(204, ""), wantOut: "deleted the URL of fn\n"},
		{name: "concurrency get", args: []string{"concurrency", "fn"},
			route: "GET /2019-09-30/functions/fn/concurrency", handler: reply(200, `{}`), wantOut: "fn: no reserved concurrency\n"},
		{name: "concurrency put", args: []string{"concurrency", "fn", "5", "--output", "json"},
			route: "PUT /2017-10-31/functions/fn/concurrency", handler: reply(200, `{"ReservedConcurrentExecutions":5}`),
			wantOut: "{\n  \"ReservedConcurrentExecutions\": 5\n}\n", wantBody: map[string]any{"ReservedConcurrentExecutions": "5"}},
		{name: "concurrency delete", args: []string{"concurrency", "fn", "--delete"},
			route: "DELETE /2017-10-31/functions/fn/concurrency", handler: reply(204, ""), wantOut: "fn: no reserved concurrency\n"},
		{name: "async-config put", args: []string{"async-config", "fn", "--max-retries", "0", "--on-failure", "arn:aws:sqs:us-east-1:000000000000:dlq"},
			route:    "PUT /2019-09-25/functions/fn/event-invoke-config",
			handler:  reply(200, `{"FunctionArn":"arn:fn","MaximumRetryAttempts":0,"DestinationConfig":{"OnFailure":{"Destination":"arn:aws:sqs:us-east-1:000000000000:dlq"}}}`),
			wantOut:  "FUNCTION  MAX RETRIES  MAX AGE  ON SUCCESS  ON FAILURE\nfn        0            -        -           arn:aws:sqs:us-east-1:000000000000:dlq\n",
			wantBody: map[string]any{"MaximumRetryAttempts": "0", "DestinationConfig": "map[OnFailure:map[Destination:arn:aws:sqs:us-east-1:000000000000:dlq]]"}},
		{name: "async-config get", args: []string{"async-config", "fn", "--output", "json"},
			route:   "GET /2019-09-25/functions/fn/event-invoke-config",
			handler: reply(200, `{"FunctionArn":"arn:fn","MaximumRetryAttempts":2,"MaximumEventAgeInSeconds":600,"LastModified":1767323045}`),
			wantOut: "{\n  \"FunctionArn\": \"arn:fn\",\n  \"MaximumRetryAttempts\": 2,\n  \"MaximumEventAgeInSeconds\": 600,\n  \"LastModified\": \"2026-01-02T03:04:05Z\"\n}\n"},
		{name: "async-config delete", args: []string{"async-config", "fn", "--delete"},
			route: "DELETE /2019-09-25/functions/fn/event-invoke-config", handler: reply(204, ""),
			wantOut: "fn: asynchronous invocation configuration removed\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeMoat(t)
			f.handle(tt.route, tt.handler)
			r := f.run(t, tt.args...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			if r.stdout != tt.wantOut {
				t.Errorf("stdout %q, want %q", r.stdout, tt.wantOut)
			}
			reqs := f.wantCalls(t, tt.route)
			if tt.wantBody != nil {
				body := decodeBody(t, reqs[0])
				for k, v := range tt.wantBody {
					if fmt.Sprint(body[k]) != fmt.Sprint(v) {
						t.Errorf("body %s = %v, want %v", k, body[k], v)
					}
				}
			}
			for k, v := range tt.wantQ {
				if got := reqs[0].query[k]; len(got) != 1 || got[0] != v {
					t.Errorf("query %s = %v, want %s", k, got, v)
				}
			}
		})
	}
}

func TestAPIErrorLine(t *testing.T) {
	f := newFakeMoat(t)
	f.handle("DELETE /2015-03-31/functions/ghost", awsError(404, "ResourceNotFoundException", "Function not found: arn:aws:lambda:us-east-1:000000000000:function:ghost"))
	r := f.run(t, "rm", "ghost")
	want := "moat: DeleteFunction: ResourceNotFoundException: Function not found: arn:aws:lambda:us-east-1:000000000000:function:ghost\n"
	if r.code != 1 || r.stderr != want || r.stdout != "" {
		t.Errorf("exit %d stderr %q, want 1 and %q", r.code, r.stderr, want)
	}
}

func TestUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	f := newFakeMoat(t)
	f.env["MOAT_ENDPOINT"] = "http://" + addr
	for _, args := range [][]string{{"ls"}, {"status"}} {
		r := f.run(t, args...)
		if r.code != 1 || !strings.Contains(r.stderr, "cannot reach moat at http://"+addr+": connection refused") {
			t.Errorf("%v: exit %d stderr %q", args, r.code, r.stderr)
		}
	}
}

func TestLogs(t *testing.T) {
	records := `{"time":"2026-01-02T03:04:05Z","function":"fn","version":"$LATEST","requestId":"r1","logStream":"s","message":"START RequestId: r1 Version: $LATEST\nhello\n"}
{"time":"2026-01-02T03:04:06Z","function":"fn","version":"$LATEST","requestId":"r1","logStream":"s","message":"no newline"}
`
	tests := []struct {
		name    string
		args    []string
		wantOut string
		wantQ   string
	}{
		{"text", []string{"--since", "10m"}, "START RequestId: r1 Version: $LATEST\nhello\nno newline\n", "since=10m"},
		{"json follow", []string{"--follow", "--since", "2026-01-02T00:00:00Z", "--output", "json"}, records,
			"follow=1&since=2026-01-02T00%3A00%3A00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeMoat(t)
			f.handle("GET /moat/v1/logs/fn", reply(200, records, "Content-Type", "application/x-ndjson"))
			r := f.run(t, append([]string{"logs", "fn"}, tt.args...)...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			if r.stdout != tt.wantOut {
				t.Errorf("stdout %q, want %q", r.stdout, tt.wantOut)
			}
			reqs := f.wantCalls(t, "GET /moat/v1/logs/fn")
			if q := strings.TrimPrefix(reqs[0].uri, reqs[0].path+"?"); q != tt.wantQ {
				t.Errorf("query %q, want %q", q, tt.wantQ)
			}
		})
	}
}

func TestLogsFollowStopsOnCancel(t *testing.T) {
	f := newFakeMoat(t)
	sent := make(chan struct{})
	f.handle("GET /moat/v1/logs/fn", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		io.WriteString(w, `{"message":"first\n"}`+"\n")
		w.(http.Flusher).Flush()
		close(sent)
		<-r.Context().Done() // a follow stream stays open until the client leaves
	})
	ctx, cancel := context.WithCancel(context.Background())
	a, _, errb := testApp(f.env, "")
	out := &signalWriter{wrote: make(chan struct{})}
	a.stdout = out
	done := make(chan int)
	go func() { done <- a.main(ctx, []string{"logs", "fn", "--follow"}) }()
	<-sent
	<-out.wrote // the record is printed; the stream is still open
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if out.String() != "first\n" {
		t.Errorf("stdout %q", out.String())
	}
}

// signalWriter closes wrote on its first write. (It does not embed the
// buffer: that would promote WriteString past Write.)
type signalWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	wrote chan struct{}
	once  sync.Once
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	n, err := w.buf.Write(p)
	w.mu.Unlock()
	w.once.Do(func() { close(w.wrote) })
	return n, err
}

func (w *signalWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func TestLogsError(t *testing.T) {
	f := newFakeMoat(t)
	f.handle("GET /moat/v1/logs/ghost", awsError(404, "ResourceNotFoundException", "Function not found: ghost"))
	r := f.run(t, "logs", "ghost")
	if r.code != 1 || r.stderr != "moat: Logs: ResourceNotFoundException: Function not found: ghost\n" {
		t.Errorf("exit %d stderr %q", r.code, r.stderr)
	}
	f.requests(t) // signature check
}

func TestStatus(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"nested maps sorted, every line ended",
			`{"region":"us-east-1","dispatcher":{"running":2,"warm":{"fn":1}},"isolation":{"cgroups":true},"tags":[]}`,
			"dispatcher.running: 2\ndispatcher.warm.fn: 1\nisolation.cgroups: true\nregion: us-east-1\ntags: []\n"},
		{"nothing missing",
			`{"isolationMissing":{},"isolation":{"seccomp":true,"landlockABI":4},"egress":"available"}`,
			"egress: available\nisolation.landlockABI: 4\nisolation.seccomp: true\nisolationMissing: none\n"},
		{"nothing missing, null", `{"isolationMissing":null}`, "isolationMissing: none\n"},
		{"walls missing",
			`{"isolationMissing":{"seccomp":"disabled","cgroups":"no memory or pids controller"}}`,
			"isolationMissing.cgroups: no memory or pids controller\nisolationMissing.seccomp: disabled\n"},
		{"empty", `{}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeMoat(t)
			f.handle("GET /moat/v1/status", reply(200, tt.body))
			r := f.run(t, "status")
			if r.code != 0 || r.stdout != tt.want {
				t.Errorf("exit %d stdout %q, want %q (stderr %q)", r.code, r.stdout, tt.want, r.stderr)
			}
			f.wantCalls(t, "GET /moat/v1/status")
		})
	}

	f := newFakeMoat(t)
	f.handle("GET /moat/v1/status", reply(200, `{"region":"us-east-1","isolationMissing":{}}`))
	r := f.run(t, "status", "--output", "json")
	var v map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v["region"] != "us-east-1" || !strings.HasSuffix(r.stdout, "}\n") {
		t.Errorf("json %q: %v", r.stdout, err)
	}
	if m, ok := v["isolationMissing"].(map[string]any); !ok || len(m) != 0 {
		t.Errorf("json isolationMissing %v, want {} as sent", v["isolationMissing"])
	}
}

func TestDestination(t *testing.T) {
	f := newFakeMoat(t)
	const recs = `{"requestContext":{"requestId":"r1","condition":"RetriesExhausted"}}` + "\n" + `{"requestContext":{"requestId":"r2"}}` + "\n"
	f.handle("GET /moat/v1/destinations/dlq", reply(200, recs))
	r := f.run(t, "destination", "dlq", "--follow")
	if r.code != 0 || r.stdout != recs {
		t.Errorf("exit %d stdout %q (stderr %q)", r.code, r.stdout, r.stderr)
	}
	reqs := f.wantCalls(t, "GET /moat/v1/destinations/dlq")
	if reqs[0].query["follow"][0] != "1" {
		t.Errorf("query %v", reqs[0].query)
	}
}

func TestUp(t *testing.T) {
	f := newFakeMoat(t)
	f.handle("GET /2015-03-31/functions/echo/configuration", awsError(404, "ResourceNotFoundException", "Function not found: echo"))
	f.handle("GET /2015-03-31/functions/hello-shell/configuration", reply(200, fmt.Sprintf(fnConfig, "hello-shell", 128)))
	f.handle("POST /2015-03-31/functions", reply(201, fmt.Sprintf(fnConfig, "echo", 128)))

	var got node.Options
	a, _, errb := testApp(f.env, "")
	a.examples = fstest.MapFS{
		"echo-go.zip":       {Data: []byte("PK\x05\x06echo")},
		"shell-runtime.zip": {Data: []byte("PK\x05\x06shell")},
	}
	a.runNode = func(ctx context.Context, opts node.Options, ready func(string)) error {
		got = opts
		ready(strings.TrimPrefix(f.srv.URL, "http://"))
		return nil
	}
	dataDir := f.env["MOAT_DATA_DIR"]
	code := a.main(context.Background(), []string{"up", "--examples", "--listen", "127.0.0.1:0",
		"--max-concurrency", "7", "--idle-timeout", "1m", "--log-format", "json", "--log-level", "debug", "--sandbox-pool", "3"})
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if got.Listen != "127.0.0.1:0" || got.DataDir != dataDir || got.MaxConcurrency != 7 || got.SandboxPool != 3 ||
		got.IdleTimeout != time.Minute || got.Region != "us-east-1" || got.Logger == nil || got.ShutdownGrace != 30*time.Second ||
		got.URLListen != "127.0.0.1:9002" || got.URLDomain != "localhost" {
		t.Errorf("node options %+v", got)
	}
	reqs := f.requests(t)
	var creates []string
	for _, r := range reqs {
		if r.method == "POST" {
			b := decodeBody(t, r)
			creates = append(creates, fmt.Sprint(b["FunctionName"], " ", b["Handler"], " ", b["Runtime"]))
		}
	}
	if len(creates) != 1 || creates[0] != "echo bootstrap provided.al2023" {
		t.Errorf("created %v, want only echo (hello-shell exists)", creates)
	}
	if !strings.Contains(errb.String(), `"msg":"example function deployed"`) {
		t.Errorf("log lacks the deployment:\n%s", errb.String())
	}
}

func TestUpWithoutBundledExamples(t *testing.T) {
	a, _, errb := testApp(map[string]string{"MOAT_DATA_DIR": t.TempDir()}, "")
	ranNode := false
	a.runNode = func(ctx context.Context, opts node.Options, ready func(string)) error {
		ranNode = true
		writeCredentials(t, opts.DataDir, map[string][2]string{"moat": {testAK, testSK}})
		ready("127.0.0.1:1")
		return context.Canceled
	}
	if code := a.main(context.Background(), []string{"up", "--examples"}); code != 0 || !ranNode {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(errb.String(), "no bundled examples") {
		t.Errorf("stderr %q", errb.String())
	}
}
