package runtimeapi_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"moat.dev/moat/internal/runtimeapi"
)

// The tests in this file need to know that a goroutine has reached a given
// point (Invoke queued, a handler blocked reading a body). They run in a
// synctest bubble and call the handler directly, with no network, so that
// synctest.Wait says when every goroutine is blocked.

// serve runs one request through the handler in memory.
func serve(api *runtimeapi.Server, method, path string, header http.Header, body io.Reader) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, base+path, body)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	api.ServeHTTP(rec, req)
	return rec
}

func serveNext(api *runtimeapi.Server) *httptest.ResponseRecorder {
	return serve(api, http.MethodGet, "/invocation/next", nil, nil)
}

func serveAnswer(api *runtimeapi.Server, id, verb, body string) *httptest.ResponseRecorder {
	return serve(api, http.MethodPost, "/invocation/"+id+"/"+verb, nil, bytes.NewReader([]byte(body)))
}

// received returns what ch holds now, if anything.
func received(ch <-chan outcome) (outcome, bool) {
	select {
	case o := <-ch:
		return o, true
	default:
		return outcome{}, false
	}
}

func TestQueuedInvocation(t *testing.T) {
	tests := []struct {
		name string
		// end acts on an instance whose runtime never called next, while
		// Invoke waits with req-1 queued.
		end     func(t *testing.T, api *runtimeapi.Server)
		wantErr error
	}{
		{"instance closes", func(t *testing.T, api *runtimeapi.Server) {
			api.Close()
		}, runtimeapi.ErrNotDelivered},
		{"runtime reports an init error", func(t *testing.T, api *runtimeapi.Server) {
			rec := serve(api, http.MethodPost, "/init/error",
				http.Header{"Lambda-Runtime-Function-Error-Type": {"Runtime.HandlerNotFound"}}, bytes.NewReader([]byte(`{}`)))
			if rec.Code != http.StatusAccepted {
				t.Errorf("init/error with an invocation queued = %d %s, want 202", rec.Code, rec.Body)
			}
			if ie := <-api.InitErrors(); ie.ErrorType != "Runtime.HandlerNotFound" {
				t.Errorf("InitErrors = %+v", ie)
			}
			if rec := serveNext(api); rec.Code != http.StatusForbidden {
				t.Errorf("next after init/error = %d, want 403", rec.Code)
			}
		}, runtimeapi.ErrNotDelivered},
		{"context ends", func(t *testing.T, api *runtimeapi.Server) {
			// The fake clock runs to the deadline as soon as everything waits.
		}, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				api := runtimeapi.New()
				ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
				defer cancel()
				done := invokeAsync(ctx, api, invocation("req-1", `{}`))
				synctest.Wait()
				if _, ok := received(done); ok {
					t.Fatal("Invoke returned before anything happened")
				}
				if isClosed(api.Ready()) {
					t.Error("Ready closed by Invoke alone")
				}
				tt.end(t, api)
				o := <-done
				if !errors.Is(o.err, tt.wantErr) {
					t.Errorf("Invoke = %+v, %v; want %v", o.res, o.err, tt.wantErr)
				}
				api.Close()
			})
		})
	}
}

func TestInvokeBeforeFirstNext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := runtimeapi.New()
		done := invokeAsync(t.Context(), api, invocation("req-1", `"queued"`))
		synctest.Wait()
		if _, err := api.Invoke(t.Context(), invocation("req-2", `{}`)); !errors.Is(err, runtimeapi.ErrBusy) {
			t.Errorf("Invoke with one queued = %v, want ErrBusy", err)
		}
		rec := serveNext(api) // returns at once with the queued invocation
		if rec.Code != http.StatusOK || rec.Body.String() != `"queued"` ||
			rec.Header().Get("Lambda-Runtime-Aws-Request-Id") != "req-1" {
			t.Fatalf("first next = %d %s %v", rec.Code, rec.Body, rec.Header())
		}
		if !isClosed(api.Ready()) {
			t.Error("Ready not closed by the first next")
		}
		if rec := serve(api, http.MethodPost, "/init/error", nil, nil); rec.Code != http.StatusForbidden {
			t.Errorf("init/error after next = %d, want 403", rec.Code)
		}
		if rec := serveAnswer(api, "req-1", "response", `"done"`); rec.Code != http.StatusAccepted {
			t.Fatalf("response = %d", rec.Code)
		}
		if o := <-done; o.err != nil || string(o.res.Payload) != `"done"` {
			t.Errorf("Invoke = %+v, %v", o.res, o.err)
		}
		api.Close()
	})
}

// TestLateAnswerNotReused: an answer that arrives after its Invoke gave up
// must never be returned to a later Invoke.
func TestLateAnswerNotReused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := runtimeapi.New()
		ctx, cancel := context.WithCancel(t.Context())
		done := invokeAsync(ctx, api, invocation("req-1", `{}`))
		synctest.Wait()
		serveNext(api)
		cancel()
		if o := <-done; !errors.Is(o.err, context.Canceled) {
			t.Fatalf("Invoke = %+v, %v; want Canceled", o.res, o.err)
		}
		if rec := serveAnswer(api, "req-1", "response", `"stale"`); rec.Code != http.StatusAccepted {
			t.Fatalf("late response = %d", rec.Code)
		}

		done = invokeAsync(t.Context(), api, invocation("req-2", `{}`))
		synctest.Wait()
		if o, ok := received(done); ok {
			t.Fatalf("Invoke of req-2 returned %s, %v before the runtime took it", payloadOf(o), o.err)
		}
		serveNext(api)
		serveAnswer(api, "req-2", "response", `"fresh"`)
		if o := <-done; o.err != nil || string(o.res.Payload) != `"fresh"` {
			t.Errorf("Invoke of req-2 = %s, %v; want \"fresh\"", payloadOf(o), o.err)
		}
		api.Close()
	})
}

func payloadOf(o outcome) string {
	if o.res == nil {
		return "<nil>"
	}
	return string(o.res.Payload)
}

// TestAnswerWinsOverEnd: when the runtime has answered, Invoke returns the
// answer even if the instance closes, or ctx ends, before Invoke wakes up. A
// runtime that reports a panic and exits at once must not be reported as a
// runtime crash.
func TestAnswerWinsOverEnd(t *testing.T) {
	ends := []struct {
		name string
		end  func(api *runtimeapi.Server, cancel context.CancelFunc)
	}{
		{"close", func(api *runtimeapi.Server, _ context.CancelFunc) { api.Close() }},
		{"context", func(_ *runtimeapi.Server, cancel context.CancelFunc) { cancel() }},
	}
	for _, e := range ends {
		t.Run(e.name, func(t *testing.T) {
			// Which of the two Invoke sees first is up to the scheduler, so
			// try many times.
			for range 200 {
				synctest.Test(t, func(t *testing.T) {
					api := runtimeapi.New()
					ctx, cancel := context.WithCancel(t.Context())
					defer cancel()
					// No synctest.Wait: Invoke may not have reached its
					// wait when the answer and the end both arrive.
					done := invokeAsync(ctx, api, invocation("req-1", `{}`))
					if rec := serveNext(api); rec.Code != http.StatusOK {
						t.Fatalf("next = %d %s", rec.Code, rec.Body)
					}
					if rec := serveAnswer(api, "req-1", "error", `{"errorType":"Runtime.Panic"}`); rec.Code != http.StatusAccepted {
						t.Fatalf("error = %d %s", rec.Code, rec.Body)
					}
					e.end(api, cancel)
					if o := <-done; o.err != nil || o.res.ErrorType != "Runtime.Panic" {
						t.Fatalf("Invoke = %+v, %v; want the answer", o.res, o.err)
					}
					api.Close()
				})
			}
		})
	}
}

// TestNextRacesInvoke: a next that arrives while Invoke is handing over an
// invocation gets it, whichever of the two the scheduler runs first. This is
// the warm path: the runtime asks for more work as soon as it has answered,
// and the dispatcher invokes as soon as it has the answer. The window is
// narrow, so several instances run the race many times at once.
func TestNextRacesInvoke(t *testing.T) {
	const instances, rounds = 8, 5000
	refused := make(chan string, instances)
	var wg sync.WaitGroup
	for range instances {
		wg.Go(func() {
			api := runtimeapi.New()
			defer api.Close()
			for range rounds {
				done := invokeAsync(t.Context(), api, invocation("req-1", `{}`))
				if rec := serveNext(api); rec.Code != http.StatusOK {
					refused <- fmt.Sprintf("next racing Invoke = %d %s", rec.Code, rec.Body)
					return
				}
				serveAnswer(api, "req-1", "response", `1`)
				<-done
			}
		})
	}
	wg.Wait()
	close(refused)
	for msg := range refused {
		t.Error(msg)
	}
}

// TestNextWhileAnswerArrives: a next that comes while the answer's body is
// still being read is refused, and the answer still completes.
func TestNextWhileAnswerArrives(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := runtimeapi.New()
		done := invokeAsync(t.Context(), api, invocation("req-1", `{}`))
		synctest.Wait()
		serveNext(api)

		pr, pw := io.Pipe()
		answered := make(chan int, 1)
		go func() {
			answered <- serve(api, http.MethodPost, "/invocation/req-1/response", nil, pr).Code
		}()
		_, _ = pw.Write([]byte(`"half`))
		synctest.Wait() // the handler has claimed req-1 and waits for the rest

		if rec := serveNext(api); rec.Code != http.StatusForbidden {
			t.Errorf("next during the answer = %d %s, want 403", rec.Code, rec.Body)
		}
		if rec := serveAnswer(api, "req-1", "response", `"again"`); rec.Code != http.StatusBadRequest {
			t.Errorf("second answer during the first = %d, want 400", rec.Code)
		}
		_, _ = pw.Write([]byte(` and half"`))
		pw.Close()
		if code := <-answered; code != http.StatusAccepted {
			t.Errorf("answer = %d", code)
		}
		if o := <-done; o.err != nil || string(o.res.Payload) != `"half and half"` {
			t.Errorf("Invoke = %s, %v", payloadOf(o), o.err)
		}
		api.Close()
	})
}

// TestCloseWhileNextPolls: Close ends a poll that is already waiting, and
// an Invoke that comes after is not delivered.
func TestCloseWhileNextPolls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := runtimeapi.New()
		polled := make(chan *httptest.ResponseRecorder, 1)
		go func() { polled <- serveNext(api) }()
		synctest.Wait()
		if !isClosed(api.Ready()) {
			t.Error("Ready not closed by a polling next")
		}
		api.Close()
		if rec := <-polled; rec.Code != http.StatusGone {
			t.Errorf("polling next = %d, want 410", rec.Code)
		}
		if _, err := api.Invoke(t.Context(), invocation("req-1", `{}`)); !errors.Is(err, runtimeapi.ErrNotDelivered) {
			t.Errorf("Invoke after Close = %v, want ErrNotDelivered", err)
		}
	})
}
