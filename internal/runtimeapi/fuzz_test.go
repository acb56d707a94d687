package runtimeapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"

	"moat.dev/moat/internal/runtimeapi"
)

// The fuzz input is a program of operations on one Server, each an opcode
// byte and its operands. Strings are a length byte and that many bytes.
const (
	opInvoke    = iota // id kind byte (even: a fresh "req-N", odd: a string operand)
	opNext             // GET next on its own goroutine (it may long-poll)
	opRespond          // body string: POST response for the latest Invoke's id
	opFail             // type string, body string: POST error for the latest Invoke's id
	opAnswerID         // verb byte, id string, body string: POST response or error for any id
	opInitError        // type string, body string
	opRaw              // method byte, path string, body string; path is under the API prefix if it starts with '/'
	opCancel           // end the latest Invoke's context
	opClose            //
	opOversize         // POST a response one byte over MaxResponse for the latest Invoke's id
	opCount
)

var fuzzMethods = []string{"GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS"}

type program struct{ b []byte }

func (p *program) byte() byte {
	if len(p.b) == 0 {
		return 0
	}
	c := p.b[0]
	p.b = p.b[1:]
	return c
}

func (p *program) str() string {
	n := min(int(p.byte()), len(p.b))
	s := string(p.b[:n])
	p.b = p.b[n:]
	return s
}

// enc builds a program for the seed corpus.
func enc(parts ...any) []byte {
	var b []byte
	for _, p := range parts {
		switch v := p.(type) {
		case int:
			b = append(b, byte(v))
		case string:
			b = append(b, byte(len(v)))
			b = append(b, v...)
		}
	}
	return b
}

// exchange is one request the fuzz program made and the reply it got.
type exchange struct {
	method, path string
	body         []byte
	code         int
	reqID        string // Lambda-Runtime-Aws-Request-Id of a 200 next
	replyBody    []byte
}

type fuzzInvoke struct {
	id     string
	done   <-chan outcome
	cancel context.CancelFunc
}

func FuzzRuntimeAPI(f *testing.F) {
	f.Add(enc(opInvoke, 0, opNext, opRespond, `{"ok":1}`))
	f.Add(enc(opNext, opInvoke, 0, opFail, "Handled", `{"errorType":"X"}`, opNext, opInvoke, 0, opRespond, ``))
	f.Add(enc(opInvoke, 0, opInitError, "Runtime.HandlerNotFound", `{}`, opNext, opInvoke, 0))
	f.Add(enc(opInvoke, 1, "a/b", opNext, opAnswerID, 0, "a/b", `1`, opAnswerID, 1, "a/b", `2`))
	f.Add(enc(opInvoke, 0, opNext, opNext, opRespond, `1`, opRespond, `2`, opClose, opNext))
	f.Add(enc(opInvoke, 0, opNext, opCancel, opRespond, `"late"`, opInvoke, 0, opNext, opRespond, `"fresh"`))
	f.Add(enc(opInvoke, 0, opCancel, opInvoke, 0, opNext, opRespond, `"x"`))
	f.Add(enc(opInvoke, 0, opNext, opOversize, opNext, opInvoke, 0, opClose))
	f.Add(enc(opRaw, 0, "/invocation/req-1/response", ``, opRaw, 1, "/invocation/next", ``, opRaw, 2, "x", ``))
	f.Add(enc(opNext, opClose, opInvoke, 0, opNext))

	f.Fuzz(func(t *testing.T, prog []byte) {
		synctest.Test(t, func(t *testing.T) { runProgram(t, prog) })
	})
}

func runProgram(t *testing.T, prog []byte) {
	api := runtimeapi.New()
	p := &program{b: prog}
	exchanges := make(chan exchange, len(prog)+2) // at most one a byte
	var invokes []fuzzInvoke
	seq := 0
	oversized := false

	send := func(method, path string, header http.Header, body []byte) {
		req := httptest.NewRequest(method, "/", bytes.NewReader(body))
		req.URL.Path = path
		for k, v := range header {
			req.Header[k] = v
		}
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, req)
		exchanges <- exchange{
			method: method, path: path, body: body, code: rec.Code,
			reqID:     rec.Header().Get("Lambda-Runtime-Aws-Request-Id"),
			replyBody: rec.Body.Bytes(),
		}
	}
	latest := func() string {
		if len(invokes) == 0 {
			return "none"
		}
		return invokes[len(invokes)-1].id
	}
	typed := func(typ string) http.Header {
		if typ == "" {
			return nil
		}
		return http.Header{"Lambda-Runtime-Function-Error-Type": {typ}}
	}

	for len(p.b) > 0 {
		switch p.byte() % opCount {
		case opInvoke:
			id := ""
			if p.byte()%2 == 0 {
				seq++
				id = fmt.Sprintf("req-%d", seq)
			} else {
				id = p.str()
			}
			ctx, cancel := context.WithCancel(t.Context())
			invokes = append(invokes, fuzzInvoke{id: id, cancel: cancel,
				done: invokeAsync(ctx, api, &runtimeapi.Invocation{RequestID: id, Payload: []byte(`{}`)})})
		case opNext:
			go send(http.MethodGet, base+"/invocation/next", nil, nil)
		case opRespond:
			send(http.MethodPost, base+"/invocation/"+latest()+"/response", nil, []byte(p.str()))
		case opFail:
			typ := p.str()
			send(http.MethodPost, base+"/invocation/"+latest()+"/error", typed(typ), []byte(p.str()))
		case opAnswerID:
			verb := []string{"response", "error"}[p.byte()%2]
			id := p.str()
			send(http.MethodPost, base+"/invocation/"+id+"/"+verb, nil, []byte(p.str()))
		case opInitError:
			typ := p.str()
			send(http.MethodPost, base+"/init/error", typed(typ), []byte(p.str()))
		case opRaw:
			method := fuzzMethods[int(p.byte())%len(fuzzMethods)]
			path := p.str()
			if strings.HasPrefix(path, "/") {
				path = base + path
			}
			send(method, path, nil, []byte(p.str()))
		case opCancel:
			if len(invokes) > 0 {
				invokes[len(invokes)-1].cancel()
			}
		case opClose:
			api.Close()
		case opOversize:
			if !oversized {
				oversized = true
				send(http.MethodPost, base+"/invocation/"+latest()+"/response", nil, make([]byte, runtimeapi.MaxResponse+1))
			}
		}
		synctest.Wait()
	}
	api.Close()
	synctest.Wait() // every poll and every Invoke has now returned

	checkExchanges(t, exchanges, invokes)
}

// route is what the Runtime API documents for a method and path: the status
// codes it may answer with.
func route(method, path string) (allowed []int, answerID string) {
	rest, ok := strings.CutPrefix(path, base+"/")
	switch {
	case !ok:
	case rest == "invocation/next":
		if method != http.MethodGet {
			return []int{405}, ""
		}
		return []int{200, 403, 410}, ""
	case rest == "init/error":
		if method != http.MethodPost {
			return []int{405}, ""
		}
		return []int{202, 403}, ""
	case strings.HasPrefix(rest, "invocation/"):
		mid := strings.TrimPrefix(rest, "invocation/")
		i := strings.LastIndexByte(mid, '/')
		if i <= 0 || (mid[i+1:] != "response" && mid[i+1:] != "error") {
			break
		}
		if method != http.MethodPost {
			return []int{405}, ""
		}
		if mid[i+1:] == "response" {
			return []int{202, 400, 410, 413}, mid[:i]
		}
		return []int{202, 400, 410}, mid[:i]
	}
	return []int{404}, ""
}

func checkExchanges(t *testing.T, exchanges chan exchange, invokes []fuzzInvoke) {
	close(exchanges)
	delivered := map[string]int{} // request id -> 200 nexts that carried it
	accepted := map[string][]exchange{}
	for ex := range exchanges {
		allowed, answerID := route(ex.method, ex.path)
		ok := false
		for _, c := range allowed {
			ok = ok || c == ex.code
		}
		if !ok {
			t.Errorf("%s %q = %d, want one of %v", ex.method, ex.path, ex.code, allowed)
		}
		if ex.code >= 400 && ex.method != http.MethodHead {
			var doc struct{ ErrorType string }
			if json.Unmarshal(ex.replyBody, &doc) != nil || doc.ErrorType == "" {
				t.Errorf("%s %q = %d with body %q, want an error document", ex.method, ex.path, ex.code, ex.replyBody)
			}
		}
		if ex.code == 200 {
			delivered[ex.reqID]++
		}
		if answerID != "" && (ex.code == 202 || ex.code == 413) {
			accepted[answerID] = append(accepted[answerID], ex)
		}
	}

	invoked := map[string]int{}
	for _, inv := range invokes {
		invoked[inv.id]++
	}
	for id, n := range delivered {
		if n > invoked[id] {
			t.Errorf("request %q delivered %d times for %d Invokes", id, n, invoked[id])
		}
	}
	for id, answers := range accepted {
		if len(answers) > delivered[id] {
			t.Errorf("request %q answered %d times for %d deliveries", id, len(answers), delivered[id])
		}
	}

	results := map[string]int{}
	for _, inv := range invokes {
		var o outcome
		select {
		case o = <-inv.done:
		default:
			t.Errorf("Invoke of %q still waiting after Close", inv.id)
			continue
		}
		inv.cancel()
		switch {
		case o.err == nil:
			results[inv.id]++
		case errors.Is(o.err, runtimeapi.ErrBusy), errors.Is(o.err, runtimeapi.ErrClosed),
			errors.Is(o.err, context.Canceled):
		default:
			t.Errorf("Invoke of %q = %v, not a documented error", inv.id, o.err)
		}
		if errors.Is(o.err, runtimeapi.ErrNotDelivered) && invoked[inv.id] == 1 && delivered[inv.id] > 0 {
			t.Errorf("Invoke of %q = %v, but next delivered it", inv.id, o.err)
		}
		if o.err != nil || invoked[inv.id] != 1 {
			continue
		}
		// A unique id: its result is the one answer accepted for it.
		answers := accepted[inv.id]
		if len(answers) != 1 {
			t.Errorf("Invoke of %q returned %s with %d answers accepted", inv.id, o.res.Payload, len(answers))
			continue
		}
		a := answers[0]
		switch {
		case a.code == 413:
			if !o.res.Err {
				t.Errorf("Invoke of %q after a 413 = %+v, want Err", inv.id, o.res)
			}
		case strings.HasSuffix(a.path, "/error"):
			if o.res.ErrorType == "" {
				t.Errorf("Invoke of %q after /error has no ErrorType", inv.id)
			}
		case !bytes.Equal(o.res.Payload, a.body) || o.res.IsError():
			t.Errorf("Invoke of %q = %q (error %v), want the response %q", inv.id, o.res.Payload, o.res.IsError(), a.body)
		}
	}
	for id, n := range results {
		if n > len(accepted[id]) {
			t.Errorf("request %q: %d results from %d accepted answers", id, n, len(accepted[id]))
		}
	}
}
