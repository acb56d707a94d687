package runtimeapi_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"moat.dev/moat/internal/runtimeapi"
)

const base = "/2018-06-01/runtime"

// waitLimit bounds every wait of these tests, so that a broken state machine
// fails the test instead of hanging it.
const waitLimit = 30 * time.Second

// newAPI serves a fresh Server on a loopback listener. The Server is closed
// before the listener, which releases any /next still polling.
func newAPI(t *testing.T) (*runtimeapi.Server, *httptest.Server) {
	t.Helper()
	api := runtimeapi.New()
	ts := httptest.NewServer(api)
	t.Cleanup(ts.Close)
	t.Cleanup(api.Close)
	return api, ts
}

// reply is one HTTP exchange as the runtime saw it.
type reply struct {
	status int
	header http.Header
	body   []byte
	err    error
}

// errorType is the errorType of an error document reply.
func (r reply) errorType() string {
	var doc struct {
		ErrorType string `json:"errorType"`
	}
	_ = json.Unmarshal(r.body, &doc)
	return doc.ErrorType
}

// do sends one request. It reports failures in the reply rather than to a
// testing.T, so it can run on any goroutine.
func do(ts *httptest.Server, method, path string, header http.Header, body []byte) reply {
	req, err := http.NewRequest(method, ts.URL+path, bytes.NewReader(body))
	if err != nil {
		return reply{err: err}
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		return reply{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, body: b, err: err}
}

// nextAsync calls invocation/next on its own goroutine, as a runtime's long
// poll.
func nextAsync(ts *httptest.Server) <-chan reply {
	ch := make(chan reply, 1)
	go func() { ch <- do(ts, http.MethodGet, base+"/invocation/next", nil, nil) }()
	return ch
}

func next(t *testing.T, ts *httptest.Server) reply {
	t.Helper()
	return waitReply(t, nextAsync(ts))
}

func post(t *testing.T, ts *httptest.Server, path string, header http.Header, body []byte) reply {
	t.Helper()
	r := do(ts, http.MethodPost, base+path, header, body)
	if r.err != nil {
		t.Fatalf("POST %s: %v", path, r.err)
	}
	return r
}

func waitReply(t *testing.T, ch <-chan reply) reply {
	t.Helper()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("request: %v", r.err)
		}
		return r
	case <-time.After(waitLimit):
		t.Fatal("request did not return")
	}
	return reply{}
}

// outcome is what one Invoke returned.
type outcome struct {
	res *runtimeapi.Result
	err error
}

func invokeAsync(ctx context.Context, api *runtimeapi.Server, inv *runtimeapi.Invocation) <-chan outcome {
	ch := make(chan outcome, 1)
	go func() {
		res, err := api.Invoke(ctx, inv)
		ch <- outcome{res, err}
	}()
	return ch
}

func waitOutcome(t *testing.T, ch <-chan outcome) outcome {
	t.Helper()
	select {
	case o := <-ch:
		return o
	case <-time.After(waitLimit):
		t.Fatal("Invoke did not return")
	}
	return outcome{}
}

func wantResult(t *testing.T, o outcome) *runtimeapi.Result {
	t.Helper()
	if o.err != nil {
		t.Fatalf("Invoke: %v", o.err)
	}
	return o.res
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func invocation(id, payload string) *runtimeapi.Invocation {
	return &runtimeapi.Invocation{
		RequestID:  id,
		Payload:    []byte(payload),
		Deadline:   time.UnixMilli(1_700_000_000_123),
		InvokedARN: "arn:aws:lambda:us-east-1:000000000000:function:f",
		TraceID:    "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0",
	}
}

func TestNextDeliversInvocation(t *testing.T) {
	full := invocation("8476a536-e9f4-11e8-9739-2dfe598c3fcd", `{"key":"value"}`)
	full.ClientContext = `{"client":{"installation_id":"i"},"custom":{"k":"v"},"env":{"e":"f"}}`
	full.CognitoIdentity = `{"cognitoIdentityId":"id-1","cognitoIdentityPoolId":"pool-1"}`
	tests := []struct {
		name       string
		inv        *runtimeapi.Invocation
		wantHeader map[string]string // "" means absent
	}{
		{"every header", full, map[string]string{
			"Lambda-Runtime-Aws-Request-Id":       full.RequestID,
			"Lambda-Runtime-Deadline-Ms":          "1700000000123",
			"Lambda-Runtime-Invoked-Function-Arn": full.InvokedARN,
			"Lambda-Runtime-Trace-Id":             full.TraceID,
			"Lambda-Runtime-Client-Context":       full.ClientContext,
			"Lambda-Runtime-Cognito-Identity":     full.CognitoIdentity,
			"Content-Type":                        "application/json",
		}},
		{"optional headers absent", invocation("req-2", `[1,2,3]`), map[string]string{
			"Lambda-Runtime-Aws-Request-Id":   "req-2",
			"Lambda-Runtime-Deadline-Ms":      "1700000000123",
			"Lambda-Runtime-Client-Context":   "",
			"Lambda-Runtime-Cognito-Identity": "",
		}},
		{"empty payload", invocation("req-3", ""), map[string]string{
			"Lambda-Runtime-Aws-Request-Id": "req-3",
			"Content-Length":                "0",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api, ts := newAPI(t)
			done := invokeAsync(t.Context(), api, tt.inv)
			r := next(t, ts)
			if r.status != http.StatusOK {
				t.Fatalf("next = %d %s", r.status, r.body)
			}
			if string(r.body) != string(tt.inv.Payload) {
				t.Errorf("next body = %q, want %q", r.body, tt.inv.Payload)
			}
			for k, want := range tt.wantHeader {
				got, present := r.header.Get(k), len(r.header.Values(k)) > 0
				if want == "" && present {
					t.Errorf("header %s = %q, want it absent", k, got)
				}
				if want != "" && got != want {
					t.Errorf("header %s = %q, want %q", k, got, want)
				}
			}

			out := `{"answer":42}`
			if p := post(t, ts, "/invocation/"+tt.inv.RequestID+"/response", nil, []byte(out)); p.status != http.StatusAccepted {
				t.Fatalf("response = %d %s", p.status, p.body)
			}
			res := wantResult(t, waitOutcome(t, done))
			if string(res.Payload) != out || res.IsError() {
				t.Errorf("Invoke = %+v, want payload %s", res, out)
			}
		})
	}
}

// chunked hides a body's length, so that the client sends it chunked and
// can send trailers after it.
type chunked struct{ io.Reader }

func TestAnswers(t *testing.T) {
	errDoc := `{"errorMessage":"bad thing","errorType":"BodyType","stackTrace":[]}`
	big := bytes.Repeat([]byte("a"), runtimeapi.MaxResponse)
	tests := []struct {
		name       string
		verb       string // response or error
		header     http.Header
		trailer    http.Header // sent after a chunked body
		body       []byte
		wantStatus int
		want       runtimeapi.Result
		wantDocMsg string // when set, the payload is an error document with this message
	}{
		{name: "response", verb: "response", body: []byte(`{"ok":true}`),
			wantStatus: 202, want: runtimeapi.Result{Payload: []byte(`{"ok":true}`)}},
		{name: "empty response", verb: "response", body: nil,
			wantStatus: 202, want: runtimeapi.Result{Payload: []byte{}}},
		{name: "response not JSON", verb: "response", body: []byte("plain \x00 bytes"),
			wantStatus: 202, want: runtimeapi.Result{Payload: []byte("plain \x00 bytes")}},
		{name: "response of exactly 6 MB", verb: "response", body: big,
			wantStatus: 202, want: runtimeapi.Result{Payload: big}},
		{name: "response over 6 MB", verb: "response", body: append(big[:len(big):len(big)], 'b'),
			wantStatus: 413,
			want: runtimeapi.Result{Err: true, Payload: []byte(
				`{"errorMessage":"Response payload size exceeded maximum allowed payload size (6291556 bytes).","errorType":"Function.ResponseSizeTooLarge"}`)}},
		{name: "response failing part way", verb: "response",
			trailer: http.Header{
				"Lambda-Runtime-Function-Error-Type": {"ReadError"},
				"Lambda-Runtime-Function-Error-Body": {base64.StdEncoding.EncodeToString(
					[]byte(`{"errorMessage":"disk gone","errorType":"ReadError"}`))},
			},
			body:       []byte(`{"partial":`),
			wantStatus: 202,
			want: runtimeapi.Result{ErrorType: "ReadError",
				Payload: []byte(`{"errorMessage":"disk gone","errorType":"ReadError"}`)}},
		{name: "error with type header", verb: "error",
			header:     http.Header{"Lambda-Runtime-Function-Error-Type": {"HeaderType"}},
			body:       []byte(errDoc),
			wantStatus: 202, want: runtimeapi.Result{ErrorType: "HeaderType", Payload: []byte(errDoc)}},
		{name: "error with type only in body", verb: "error", body: []byte(errDoc),
			wantStatus: 202, want: runtimeapi.Result{ErrorType: "BodyType", Payload: []byte(errDoc)}},
		{name: "error without a type", verb: "error", body: []byte(`{"errorMessage":"m"}`),
			wantStatus: 202, want: runtimeapi.Result{ErrorType: "Unhandled", Payload: []byte(`{"errorMessage":"m"}`)}},
		{name: "error body not JSON", verb: "error",
			header:     http.Header{"Lambda-Runtime-Function-Error-Type": {"Runtime.Crash"}},
			body:       []byte("segfault at 0x0"),
			wantStatus: 202, want: runtimeapi.Result{ErrorType: "Runtime.Crash"},
			wantDocMsg: "segfault at 0x0"},
		{name: "error body neither JSON nor typed", verb: "error", body: []byte("oops"),
			wantStatus: 202, want: runtimeapi.Result{ErrorType: "Unhandled"}, wantDocMsg: "oops"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api, ts := newAPI(t)
			done := invokeAsync(t.Context(), api, invocation("req-1", `{}`))
			if r := next(t, ts); r.status != http.StatusOK {
				t.Fatalf("next = %d %s", r.status, r.body)
			}

			req, err := http.NewRequest(http.MethodPost, ts.URL+base+"/invocation/req-1/"+tt.verb, bytes.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if tt.trailer != nil {
				req.Body = io.NopCloser(chunked{bytes.NewReader(tt.body)})
				req.ContentLength = -1
				req.Trailer = tt.trailer
			}
			for k, v := range tt.header {
				req.Header[k] = v
			}
			resp, err := ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("POST %s = %d %s, want %d", tt.verb, resp.StatusCode, b, tt.wantStatus)
			}

			res := wantResult(t, waitOutcome(t, done))
			if res.ErrorType != tt.want.ErrorType || res.Err != tt.want.Err {
				t.Errorf("Result ErrorType=%q Err=%v, want %q %v", res.ErrorType, res.Err, tt.want.ErrorType, tt.want.Err)
			}
			if res.IsError() != (tt.want.ErrorType != "" || tt.want.Err) {
				t.Errorf("IsError = %v", res.IsError())
			}
			if tt.wantDocMsg != "" {
				var doc struct{ ErrorMessage, ErrorType string }
				if err := json.Unmarshal(res.Payload, &doc); err != nil ||
					doc.ErrorMessage != tt.wantDocMsg || doc.ErrorType != tt.want.ErrorType {
					t.Errorf("payload = %s, want an error document %q of type %q", res.Payload, tt.wantDocMsg, tt.want.ErrorType)
				}
			} else if !bytes.Equal(res.Payload, tt.want.Payload) {
				t.Errorf("payload = %.200q, want %.200q", res.Payload, tt.want.Payload)
			}
		})
	}
}

func TestInitError(t *testing.T) {
	tests := []struct {
		name    string
		header  http.Header
		body    string
		want    runtimeapi.InitError
		wantMsg string // when set, the payload is an error document with this message
	}{
		{"typed", http.Header{"Lambda-Runtime-Function-Error-Type": {"Runtime.HandlerNotFound"}},
			`{"errorMessage":"no handler","errorType":"Runtime.HandlerNotFound"}`,
			runtimeapi.InitError{ErrorType: "Runtime.HandlerNotFound",
				Payload: []byte(`{"errorMessage":"no handler","errorType":"Runtime.HandlerNotFound"}`)}, ""},
		{"type only in body", nil, `{"errorMessage":"bad import","errorType":"Runtime.ImportModuleError"}`,
			runtimeapi.InitError{ErrorType: "Runtime.ImportModuleError",
				Payload: []byte(`{"errorMessage":"bad import","errorType":"Runtime.ImportModuleError"}`)}, ""},
		{"untyped", nil, `{}`, runtimeapi.InitError{ErrorType: "Runtime.Unknown", Payload: []byte(`{}`)}, ""},
		{"not JSON", http.Header{"Lambda-Runtime-Function-Error-Type": {"Runtime.ExitError"}}, "config missing",
			runtimeapi.InitError{ErrorType: "Runtime.ExitError"}, "config missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api, ts := newAPI(t)
			if r := post(t, ts, "/init/error", tt.header, []byte(tt.body)); r.status != http.StatusAccepted {
				t.Fatalf("init/error = %d %s", r.status, r.body)
			}
			var ie runtimeapi.InitError
			select {
			case ie = <-api.InitErrors():
			case <-time.After(waitLimit):
				t.Fatal("InitErrors delivered nothing")
			}
			if ie.ErrorType != tt.want.ErrorType {
				t.Errorf("ErrorType = %q, want %q", ie.ErrorType, tt.want.ErrorType)
			}
			if tt.wantMsg != "" {
				var doc struct{ ErrorMessage, ErrorType string }
				if err := json.Unmarshal(ie.Payload, &doc); err != nil || doc.ErrorMessage != tt.wantMsg || doc.ErrorType != tt.want.ErrorType {
					t.Errorf("payload = %s, want an error document %q", ie.Payload, tt.wantMsg)
				}
			} else if !bytes.Equal(ie.Payload, tt.want.Payload) {
				t.Errorf("payload = %s, want %s", ie.Payload, tt.want.Payload)
			}

			if _, err := api.Invoke(t.Context(), invocation("req-1", `{}`)); !errors.Is(err, runtimeapi.ErrNotDelivered) {
				t.Errorf("Invoke after init/error = %v, want ErrNotDelivered", err)
			}
			if r := next(t, ts); r.status != http.StatusForbidden || r.errorType() != "InvalidStateTransition" {
				t.Errorf("next after init/error = %d %s, want 403", r.status, r.body)
			}
			if r := post(t, ts, "/init/error", nil, []byte(`{}`)); r.status != http.StatusForbidden {
				t.Errorf("second init/error = %d %s, want 403", r.status, r.body)
			}
			if isClosed(api.Ready()) {
				t.Error("Ready closed after init/error")
			}
		})
	}
}

// TestRefusals covers the transitions the state machine refuses, and that
// a refusal leaves the invocation in progress intact.
func TestRefusals(t *testing.T) {
	tests := []struct {
		name string
		// act runs with req-1 out with the runtime and returns the refused
		// request's reply; the test then answers req-1 and checks Invoke.
		act        func(t *testing.T, ts *httptest.Server) reply
		wantStatus int
		wantType   string
	}{
		{"response for another request id", func(t *testing.T, ts *httptest.Server) reply {
			return post(t, ts, "/invocation/req-2/response", nil, []byte(`"wrong"`))
		}, 400, "InvalidRequestID"},
		{"error for another request id", func(t *testing.T, ts *httptest.Server) reply {
			return post(t, ts, "/invocation/req-2/error", nil, []byte(`{}`))
		}, 400, "InvalidRequestID"},
		{"request id that prefixes the real one", func(t *testing.T, ts *httptest.Server) reply {
			return post(t, ts, "/invocation/req-/response", nil, []byte(`"wrong"`))
		}, 400, "InvalidRequestID"},
		{"request id with a slash", func(t *testing.T, ts *httptest.Server) reply {
			return post(t, ts, "/invocation/x/req-1/response", nil, []byte(`"wrong"`))
		}, 400, "InvalidRequestID"},
		{"next while an invocation is out", func(t *testing.T, ts *httptest.Server) reply {
			return next(t, ts)
		}, 403, "InvalidStateTransition"},
		{"init/error after next", func(t *testing.T, ts *httptest.Server) reply {
			return post(t, ts, "/init/error", nil, []byte(`{"errorType":"X"}`))
		}, 403, "InvalidStateTransition"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api, ts := newAPI(t)
			done := invokeAsync(t.Context(), api, invocation("req-1", `{}`))
			if r := next(t, ts); r.status != http.StatusOK {
				t.Fatalf("next = %d %s", r.status, r.body)
			}
			r := tt.act(t, ts)
			if r.status != tt.wantStatus || r.errorType() != tt.wantType {
				t.Errorf("got %d %s, want %d %s", r.status, r.body, tt.wantStatus, tt.wantType)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("refusal Content-Type = %q", ct)
			}
			if p := post(t, ts, "/invocation/req-1/response", nil, []byte(`"right"`)); p.status != http.StatusAccepted {
				t.Fatalf("right response after refusal = %d %s", p.status, p.body)
			}
			if res := wantResult(t, waitOutcome(t, done)); string(res.Payload) != `"right"` {
				t.Errorf("Invoke = %s, want the right response", res.Payload)
			}
			select {
			case ie := <-api.InitErrors():
				t.Errorf("InitErrors delivered %+v", ie)
			default:
			}
		})
	}
}

func TestSecondAnswerRefused(t *testing.T) {
	for _, first := range []string{"response", "error"} {
		for _, second := range []string{"response", "error"} {
			t.Run(first+" then "+second, func(t *testing.T) {
				api, ts := newAPI(t)
				done := invokeAsync(t.Context(), api, invocation("req-1", `{}`))
				next(t, ts)
				if r := post(t, ts, "/invocation/req-1/"+first, nil, []byte(`{"n":1}`)); r.status != http.StatusAccepted {
					t.Fatalf("first %s = %d %s", first, r.status, r.body)
				}
				if r := post(t, ts, "/invocation/req-1/"+second, nil, []byte(`{"n":2}`)); r.status != http.StatusBadRequest || r.errorType() != "InvalidRequestID" {
					t.Errorf("second %s = %d %s, want 400 InvalidRequestID", second, r.status, r.body)
				}
				if res := wantResult(t, waitOutcome(t, done)); string(res.Payload) != `{"n":1}` {
					t.Errorf("Invoke = %s, want the first answer", res.Payload)
				}
			})
		}
	}
}

func TestAnswerWithNothingOut(t *testing.T) {
	_, ts := newAPI(t)
	for _, verb := range []string{"response", "error"} {
		if r := post(t, ts, "/invocation/req-1/"+verb, nil, nil); r.status != http.StatusBadRequest || r.errorType() != "InvalidRequestID" {
			t.Errorf("%s before any invocation = %d %s, want 400", verb, r.status, r.body)
		}
	}
}

func TestWarmInvocations(t *testing.T) {
	api, ts := newAPI(t)
	// A runtime that fails closes the API, so that Invoke returns.
	runtimeDone := make(chan error, 1)
	go func() {
		err := echoRuntime(ts.URL, ts.Client())
		api.Close()
		runtimeDone <- err
	}()
	for i := range 3000 {
		id := "req-" + strconv.Itoa(i)
		payload := `{"n":` + strconv.Itoa(i) + `}`
		ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
		res, err := api.Invoke(ctx, invocation(id, payload))
		cancel()
		if err != nil {
			api.Close()
			t.Fatalf("invocation %d: %v (runtime: %v)", i, err, <-runtimeDone)
		}
		if string(res.Payload) != payload || res.IsError() {
			t.Fatalf("invocation %d = %+v, want %s", i, res, payload)
		}
	}
	api.Close()
	if err := <-runtimeDone; err != nil {
		t.Fatal(err)
	}
}

// echoRuntime plays a runtime that answers every invocation with its event,
// over one keep-alive connection as aws-lambda-go does, until the Server
// closes. It returns the first thing a well-behaved runtime would not expect.
func echoRuntime(baseURL string, client *http.Client) error {
	nextURL := baseURL + base + "/invocation/next"
	for {
		resp, err := client.Get(nextURL)
		if err != nil {
			return err
		}
		event, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		switch resp.StatusCode {
		case http.StatusOK:
		case http.StatusGone:
			return nil
		default:
			return errors.New("next: " + resp.Status + ": " + string(event))
		}
		id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
		resp, err = client.Post(baseURL+base+"/invocation/"+id+"/response", "application/json", bytes.NewReader(event))
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusGone {
			return nil
		}
		if resp.StatusCode != http.StatusAccepted {
			return errors.New("response: " + resp.Status)
		}
	}
}

func TestClose(t *testing.T) {
	t.Run("releases a pending next", func(t *testing.T) {
		api, ts := newAPI(t)
		pending := nextAsync(ts)
		<-api.Ready() // the runtime is in its long poll
		api.Close()
		if r := waitReply(t, pending); r.status != http.StatusGone || r.errorType() != "InstanceClosed" {
			t.Errorf("pending next = %d %s, want 410", r.status, r.body)
		}
	})
	t.Run("refuses everything after", func(t *testing.T) {
		api, ts := newAPI(t)
		api.Close()
		api.Close() // a second Close is harmless
		if r := next(t, ts); r.status != http.StatusGone {
			t.Errorf("next = %d %s, want 410", r.status, r.body)
		}
		if r := post(t, ts, "/invocation/req-1/response", nil, nil); r.status != http.StatusGone {
			t.Errorf("response = %d %s, want 410", r.status, r.body)
		}
		if r := post(t, ts, "/init/error", nil, []byte(`{}`)); r.status != http.StatusForbidden {
			t.Errorf("init/error = %d %s, want 403", r.status, r.body)
		}
		if _, err := api.Invoke(t.Context(), invocation("req-1", `{}`)); !errors.Is(err, runtimeapi.ErrNotDelivered) {
			t.Errorf("Invoke = %v, want ErrNotDelivered", err)
		}
	})
	t.Run("while Invoke waits for the answer", func(t *testing.T) {
		api, ts := newAPI(t)
		done := invokeAsync(t.Context(), api, invocation("req-1", `{}`))
		if r := next(t, ts); r.status != http.StatusOK {
			t.Fatalf("next = %d", r.status)
		}
		api.Close()
		o := waitOutcome(t, done)
		if !errors.Is(o.err, runtimeapi.ErrClosed) || errors.Is(o.err, runtimeapi.ErrNotDelivered) {
			t.Errorf("Invoke = %v, want ErrClosed and not ErrNotDelivered: the runtime had the event", o.err)
		}
		if r := post(t, ts, "/invocation/req-1/response", nil, nil); r.status != http.StatusGone {
			t.Errorf("late response = %d %s, want 410", r.status, r.body)
		}
	})
}

func TestReady(t *testing.T) {
	t.Run("closes on the first next", func(t *testing.T) {
		api, ts := newAPI(t)
		if isClosed(api.Ready()) {
			t.Fatal("Ready closed before next")
		}
		pending := nextAsync(ts)
		<-api.Ready()
		done := invokeAsync(t.Context(), api, invocation("req-1", `"x"`))
		if r := waitReply(t, pending); r.status != http.StatusOK || string(r.body) != `"x"` {
			t.Fatalf("next = %d %s", r.status, r.body)
		}
		post(t, ts, "/invocation/req-1/response", nil, []byte(`"y"`))
		if res := wantResult(t, waitOutcome(t, done)); string(res.Payload) != `"y"` {
			t.Errorf("Invoke = %s", res.Payload)
		}
	})
	t.Run("Invoke before the first next", func(t *testing.T) {
		api, ts := newAPI(t)
		done := invokeAsync(t.Context(), api, invocation("req-1", `"early"`))
		r := next(t, ts)
		if r.status != http.StatusOK || string(r.body) != `"early"` {
			t.Fatalf("first next = %d %s, want the queued invocation", r.status, r.body)
		}
		if !isClosed(api.Ready()) {
			t.Error("Ready not closed after the first next")
		}
		post(t, ts, "/invocation/req-1/response", nil, []byte(`"late"`))
		if res := wantResult(t, waitOutcome(t, done)); string(res.Payload) != `"late"` {
			t.Errorf("Invoke = %s", res.Payload)
		}
	})
}

func TestInvokeContext(t *testing.T) {
	api, ts := newAPI(t)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	done := invokeAsync(ctx, api, invocation("req-1", `{}`))
	next(t, ts)
	if o := waitOutcome(t, done); !errors.Is(o.err, context.DeadlineExceeded) {
		t.Fatalf("Invoke = %v, %v; want DeadlineExceeded", o.res, o.err)
	}
	// The invocation is still out: the runtime may answer it, and only then
	// is the instance free again.
	if _, err := api.Invoke(t.Context(), invocation("req-2", `{}`)); !errors.Is(err, runtimeapi.ErrBusy) {
		t.Errorf("Invoke while req-1 is out = %v, want ErrBusy", err)
	}
	if r := post(t, ts, "/invocation/req-1/response", nil, []byte(`"late"`)); r.status != http.StatusAccepted {
		t.Errorf("late response = %d %s", r.status, r.body)
	}
	done = invokeAsync(t.Context(), api, invocation("req-2", `{}`))
	if r := next(t, ts); r.header.Get("Lambda-Runtime-Aws-Request-Id") != "req-2" {
		t.Fatalf("next = %d %s, want req-2", r.status, r.header)
	}
	post(t, ts, "/invocation/req-2/response", nil, []byte(`"second"`))
	if res := wantResult(t, waitOutcome(t, done)); string(res.Payload) != `"second"` {
		t.Errorf("second Invoke = %s, want its own answer, not the late one", res.Payload)
	}
}

func TestInvokeBusy(t *testing.T) {
	api, ts := newAPI(t)
	done := invokeAsync(t.Context(), api, invocation("req-1", `{}`))
	next(t, ts) // req-1 is out
	if _, err := api.Invoke(t.Context(), invocation("req-2", `{}`)); !errors.Is(err, runtimeapi.ErrBusy) {
		t.Errorf("Invoke while busy = %v, want ErrBusy", err)
	}
	post(t, ts, "/invocation/req-1/response", nil, []byte(`1`))
	wantResult(t, waitOutcome(t, done))
}

func TestRoutes(t *testing.T) {
	tests := []struct {
		method, path string
		want         int
	}{
		{"GET", "/", 404},
		{"GET", "/2018-06-01/runtime", 404},
		{"GET", "/2018-06-01/runtime/", 404},
		{"GET", "/2018-06-01/runtime/invocation", 404},
		{"GET", "/2018-06-01/runtime/invocation/", 404},
		{"GET", "/2018-06-01/runtime/invocation/next/", 404},
		{"GET", "/2018-06-01/runtime/invocation/nextx", 404},
		{"GET", "/2019-01-01/runtime/invocation/next", 404},
		{"GET", "/2018-06-01/runtime/INVOCATION/next", 404},
		{"POST", "/2018-06-01/runtime/invocation/req-1", 404},
		{"POST", "/2018-06-01/runtime/invocation/req-1/", 404},
		{"POST", "/2018-06-01/runtime/invocation/req-1/result", 404},
		{"POST", "/2018-06-01/runtime/invocation//response", 404},
		{"POST", "/2018-06-01/runtime/invocation/response", 404},
		{"GET", "/2018-06-01/runtime/invocation/req-1/bogus", 404},
		{"POST", "/2018-06-01/runtime/init/error/x", 404},
		{"POST", "/2018-06-01/runtime/init", 404},
		{"POST", "/2020-01-01/extension/register", 404},
		{"POST", "/2018-06-01/runtime/invocation/next", 405},
		{"PUT", "/2018-06-01/runtime/invocation/next", 405},
		{"HEAD", "/2018-06-01/runtime/invocation/next", 405},
		{"GET", "/2018-06-01/runtime/init/error", 405},
		{"PUT", "/2018-06-01/runtime/init/error", 405},
		{"GET", "/2018-06-01/runtime/invocation/req-1/response", 405},
		{"DELETE", "/2018-06-01/runtime/invocation/req-1/error", 405},
	}
	api, ts := newAPI(t)
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			r := do(ts, tt.method, tt.path, nil, nil)
			if r.err != nil {
				t.Fatal(r.err)
			}
			if r.status != tt.want {
				t.Errorf("status = %d %s, want %d", r.status, r.body, tt.want)
			}
			wantType := map[int]string{404: "InvalidPath", 405: "MethodNotAllowed"}[tt.want]
			if tt.method != "HEAD" && r.errorType() != wantType {
				t.Errorf("errorType = %q, want %q", r.errorType(), wantType)
			}
		})
	}
	// None of it moved the state machine.
	if isClosed(api.Ready()) {
		t.Error("a refused request ended the init phase")
	}
	done := invokeAsync(t.Context(), api, invocation("req-1", `{}`))
	next(t, ts)
	post(t, ts, "/invocation/req-1/response", nil, []byte(`"ok"`))
	if res := wantResult(t, waitOutcome(t, done)); string(res.Payload) != `"ok"` {
		t.Errorf("Invoke after refusals = %s", res.Payload)
	}
}

// TestErrorDoc pins the document shape runtimes and callers read.
func TestErrorDoc(t *testing.T) {
	got := string(runtimeapi.ErrorDoc("Sandbox.Timedout", `Task "x" timed out`))
	want := `{"errorMessage":"Task \"x\" timed out","errorType":"Sandbox.Timedout"}`
	if got != want {
		t.Errorf("ErrorDoc = %s, want %s", got, want)
	}
	if !strings.HasPrefix(got, "{") || !json.Valid([]byte(got)) {
		t.Error("ErrorDoc is not a JSON object")
	}
}
