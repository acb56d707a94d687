package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"moat.dev/moat/internal/invoke"
	"moat.dev/moat/internal/registry"
)

// echoInvoker answers every invocation with its payload; the dispatcher
// has its own tests with real instances.
type echoInvoker struct{ throttle bool }

func (e echoInvoker) Resolve(name, qualifier string) (*registry.Target, error) {
	if name != "echo" && name != "arn:aws:lambda:us-east-1:000000000000:function:echo" {
		return nil, registry.ErrNotFound
	}
	return &registry.Target{Config: &registry.Config{FunctionName: "echo", Version: registry.Latest}, Reserved: -1}, nil
}

func (e echoInvoker) InvokeTarget(_ context.Context, t *registry.Target, req *invoke.Request) (*invoke.Response, error) {
	if e.throttle {
		return nil, &invoke.ThrottleError{Reason: "ReservedFunctionConcurrentInvocationLimitExceeded"}
	}
	return &invoke.Response{RequestID: "r1", ExecutedVersion: t.Config.Version, Payload: req.Payload, LogTail: "START\n"}, nil
}

type queued struct{ n int }

func (q *queued) Enqueue(context.Context, *registry.Target, string, []byte, string) (string, error) {
	q.n++
	return "r2", nil
}

func invokeServer(inv echoInvoker) *Server {
	return New(Options{Resolver: inv, Invoker: inv, Queue: &queued{}, Auth: ctlAllowAll{}})
}

func TestInvokeHandler(t *testing.T) {
	cc := base64.StdEncoding.EncodeToString([]byte(`{"custom":{"a":"b"}}`))
	tests := []struct {
		name      string
		fn        string
		headers   map[string]string
		body      string
		throttle  bool
		status    int
		errorType string
	}{
		{name: "sync", fn: "echo", body: `{"a":1}`, status: 200},
		{name: "by ARN", fn: "arn:aws:lambda:us-east-1:000000000000:function:echo", body: `{}`, status: 200},
		{name: "event", fn: "echo", headers: map[string]string{"X-Amz-Invocation-Type": "Event"}, body: `{}`, status: 202},
		{name: "dry run", fn: "echo", headers: map[string]string{"X-Amz-Invocation-Type": "DryRun"}, status: 204},
		{name: "bad type", fn: "echo", headers: map[string]string{"X-Amz-Invocation-Type": "Later"}, status: 400, errorType: "InvalidParameterValueException"},
		{name: "bad log type", fn: "echo", headers: map[string]string{"X-Amz-Log-Type": "All"}, status: 400, errorType: "InvalidParameterValueException"},
		{name: "client context", fn: "echo", headers: map[string]string{"X-Amz-Client-Context": cc}, body: `{}`, status: 200},
		{name: "bad client context", fn: "echo", headers: map[string]string{"X-Amz-Client-Context": "%%%"}, status: 400, errorType: "InvalidRequestContentException"},
		{name: "not json", fn: "echo", body: `{"a":`, status: 400, errorType: "InvalidRequestContentException"},
		{name: "unknown", fn: "nope", body: `{}`, status: 404, errorType: "ResourceNotFoundException"},
		{name: "async too large", fn: "echo", headers: map[string]string{"X-Amz-Invocation-Type": "Event"}, body: `"` + string(bytes.Repeat([]byte("a"), MaxAsyncPayload)) + `"`, status: 413, errorType: "RequestTooLargeException"},
		{name: "sync too large", fn: "echo", body: `"` + string(bytes.Repeat([]byte("a"), MaxSyncPayload)) + `"`, status: 413, errorType: "RequestTooLargeException"},
		{name: "throttled", fn: "echo", body: `{}`, throttle: true, status: 429, errorType: "TooManyRequestsException"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := invokeServer(echoInvoker{throttle: tc.throttle})
			req := httptest.NewRequest("POST", "/2015-03-31/functions/"+tc.fn+"/invocations", bytes.NewBufferString(tc.body))
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			if got := rec.Header().Get("X-Amzn-ErrorType"); got != tc.errorType {
				t.Fatalf("error type %q, want %q", got, tc.errorType)
			}
			if tc.status == 200 && rec.Body.String() != tc.body {
				t.Fatalf("payload %q, want %q", rec.Body, tc.body)
			}
			if tc.errorType != "" {
				var doc map[string]any
				if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil || doc["Message"] == "" {
					t.Fatalf("error body is not the AWS shape: %s", rec.Body)
				}
			}
		})
	}
}

func FuzzInvokeRequest(f *testing.F) {
	f.Add("echo", "RequestResponse", "Tail", "", []byte(`{"a":1}`))
	f.Add("echo", "Event", "None", "e30=", []byte(`[]`))
	f.Add("nope", "DryRun", "", "", []byte(``))
	f.Add("echo", "x", "y", "!!", []byte(`{`))
	srv := invokeServer(echoInvoker{})
	f.Fuzz(func(t *testing.T, fn, typ, logType, cc string, body []byte) {
		req, err := http.NewRequest("POST", "http://moat/2015-03-31/functions/"+url.PathEscape(fn)+"/invocations", bytes.NewReader(body))
		if err != nil {
			t.Skip()
		}
		req.Header.Set("X-Amz-Invocation-Type", typ)
		req.Header.Set("X-Amz-Log-Type", logType)
		req.Header.Set("X-Amz-Client-Context", cc)
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		switch rec.Code {
		case 200, 202, 204, 400, 404, 413, 301, 307, 308: // 3xx: ServeMux cleans "." and ".." segments
		default:
			t.Fatalf("unexpected status %d: %s", rec.Code, rec.Body)
		}
	})
}
