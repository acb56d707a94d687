package runtimeapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// MaxResponse is the largest response a function may return (6 MB, as AWS).
const MaxResponse = 6 * 1024 * 1024

// maxErrorBody bounds /error and /init/error bodies.
const maxErrorBody = 1 << 20

const prefix = "/2018-06-01/runtime/"

// The error type travels in a header on /error and init/error, and in a
// trailer, with the error document, on a /response that fails part way
// through (aws-lambda-go sends them when reading the handler's response
// fails).
const (
	headerErrorType  = "Lambda-Runtime-Function-Error-Type"
	trailerErrorBody = "Lambda-Runtime-Function-Error-Body"
)

// Invocation is one event handed to the runtime.
type Invocation struct {
	RequestID       string
	Payload         []byte
	Deadline        time.Time
	InvokedARN      string
	TraceID         string
	ClientContext   string // JSON, already base64-decoded
	CognitoIdentity string // JSON
}

// Result is what the runtime answered for an invocation.
type Result struct {
	Payload []byte
	// ErrorType is set when the runtime called /error: the
	// Lambda-Runtime-Function-Error-Type header, or the body's errorType.
	ErrorType string
	// Err is set when the answer itself was invalid (for example a response
	// over MaxResponse); Payload then holds the error document to return.
	Err bool
}

// IsError reports whether the function failed this invocation.
func (r *Result) IsError() bool { return r.ErrorType != "" || r.Err }

// InitError is what the runtime reported through init/error.
type InitError struct {
	ErrorType string
	Payload   []byte
}

// Sentinel errors of Invoke.
var (
	ErrClosed = errors.New("runtime api closed")      // the instance is gone
	ErrBusy   = errors.New("instance is not waiting") // Invoke while an invocation is in flight
	// ErrNotDelivered: the instance went away, or reported an init error,
	// before the runtime took the invocation, so it never ran and can be
	// given to another instance.
	ErrNotDelivered = fmt.Errorf("%w before the runtime took the invocation", ErrClosed)
)

type state int

const (
	stateInit    state = iota // bootstrap started, has not asked for work
	stateIdle                 // waiting in invocation/next
	stateBusy                 // an invocation is out
	stateInitErr              // init/error received
	stateClosed
)

// call is one Invoke: the invocation and the channel its outcome goes to.
// Each call has its own channel, so an answer that arrives after its Invoke
// gave up can never be taken for the answer to a later one.
type call struct {
	inv   *Invocation
	reply chan reply // buffered 1; written at most once
}

type reply struct {
	res *Result
	err error
}

// Server is the Runtime API of one instance. It is an http.Handler.
//
// In stateBusy the call in cur is either queued in work (the runtime has not
// taken it yet) or out with the runtime; Invoke queues it while holding mu so
// that no handler ever sees stateBusy with neither.
type Server struct {
	mu      sync.Mutex
	st      state
	cur     *call          // the call out in stateBusy; nil once an answer claimed it
	work    chan *call     // buffered 1: the queued call, taken by /next
	ready   chan struct{}  // closed at the first /next
	initErr chan InitError // buffered 1
	closed  chan struct{}
	once    sync.Once
	started bool // the runtime has called /next at least once
}

// New returns a Server for a freshly spawned instance.
func New() *Server {
	return &Server{
		work:    make(chan *call, 1),
		ready:   make(chan struct{}),
		initErr: make(chan InitError, 1),
		closed:  make(chan struct{}),
	}
}

// Ready is closed when the runtime first asks for an invocation, which ends
// its init phase.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// InitErrors delivers the runtime's init/error report, if it makes one.
func (s *Server) InitErrors() <-chan InitError { return s.initErr }

// Close ends the instance's API: pending long polls return and Invoke fails
// with ErrClosed. It is safe to call more than once.
func (s *Server) Close() {
	s.once.Do(func() {
		s.mu.Lock()
		s.st = stateClosed
		s.mu.Unlock()
		close(s.closed)
	})
}

// Invoke hands inv to the runtime and waits for its answer. It returns
// ErrBusy while another invocation is out; ErrNotDelivered if the instance
// goes away or reports an init error before the runtime took inv; ErrClosed
// if it goes away after; and ctx.Err() when ctx ends (the caller then kills
// the instance: the invocation cannot be taken back). An answer that has
// arrived is returned even if the instance closes or ctx ends at the same
// time.
func (s *Server) Invoke(ctx context.Context, inv *Invocation) (*Result, error) {
	c := &call{inv: inv, reply: make(chan reply, 1)}
	s.mu.Lock()
	switch s.st {
	case stateClosed, stateInitErr:
		s.mu.Unlock()
		return nil, ErrNotDelivered
	case stateBusy:
		s.mu.Unlock()
		return nil, ErrBusy
	}
	// stateInit is allowed: the invocation waits until the runtime asks.
	s.st = stateBusy
	s.cur = c
	s.work <- c // never blocks: only one invocation is out at a time
	s.mu.Unlock()

	select {
	case r := <-c.reply:
		return r.res, r.err
	case <-s.closed:
		if r, ok := tryReply(c); ok {
			return r.res, r.err
		}
		select {
		case <-s.work:
			return nil, ErrNotDelivered
		default:
			return nil, ErrClosed
		}
	case <-ctx.Done():
		if r, ok := tryReply(c); ok {
			return r.res, r.err
		}
		return nil, ctx.Err()
	}
}

// tryReply returns c's outcome if it has arrived.
func tryReply(c *call) (reply, bool) {
	select {
	case r := <-c.reply:
		return r, true
	default:
		return reply{}, false
	}
}

// ServeHTTP routes the Runtime API's endpoints.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if len(path) <= len(prefix) || path[:len(prefix)] != prefix {
		writeErr(w, http.StatusNotFound, "InvalidPath", "unknown path "+path)
		return
	}
	rest := path[len(prefix):]
	// The path is matched before the method, so that a path no method
	// serves is 404 whatever the method.
	switch {
	case rest == "invocation/next":
		if r.Method != http.MethodGet {
			writeErr(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "use GET")
			return
		}
		s.next(w, r)
	case rest == "init/error":
		if r.Method != http.MethodPost {
			writeErr(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "use POST")
			return
		}
		s.initError(w, r)
	case len(rest) > len("invocation/") && rest[:len("invocation/")] == "invocation/":
		id, verb, ok := cutLast(rest[len("invocation/"):])
		if !ok || (verb != "response" && verb != "error") {
			writeErr(w, http.StatusNotFound, "InvalidPath", "unknown path "+path)
			return
		}
		if r.Method != http.MethodPost {
			writeErr(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "use POST")
			return
		}
		s.answer(w, r, id, verb == "error")
	default:
		writeErr(w, http.StatusNotFound, "InvalidPath", "unknown path "+path)
	}
}

func cutLast(s string) (before, after string, ok bool) {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '/' {
			return s[:i], s[i+1:], s[:i] != ""
		}
	}
	return "", "", false
}

func (s *Server) next(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if !s.started && (s.st == stateInit || s.st == stateBusy) {
		s.started = true
		close(s.ready)
	}
	switch s.st {
	case stateInit:
		s.st = stateIdle
	case stateBusy:
		// The runtime asks for more work while an invocation is out. If the
		// out invocation was already taken, this is a protocol error; if it
		// is still queued (Invoke came first), hand it over.
		if len(s.work) == 0 {
			msg := "State transition from Busy to Next is not allowed: "
			if s.cur != nil {
				msg += "answer request " + s.cur.inv.RequestID + " first"
			} else {
				msg += "the answer to the invocation in progress is still being received"
			}
			s.mu.Unlock()
			writeErr(w, http.StatusForbidden, "InvalidStateTransition", msg)
			return
		}
	case stateInitErr:
		s.mu.Unlock()
		writeErr(w, http.StatusForbidden, "InvalidStateTransition", "State transition from InitError to Next is not allowed")
		return
	case stateClosed:
		s.mu.Unlock()
		writeErr(w, http.StatusGone, "InstanceClosed", "instance is shutting down")
		return
	}
	s.mu.Unlock()

	var c *call
	select {
	case c = <-s.work:
	case <-s.closed:
		writeErr(w, http.StatusGone, "InstanceClosed", "instance is shutting down")
		return
	case <-r.Context().Done():
		return
	}
	inv := c.inv
	h := w.Header()
	h["Lambda-Runtime-Aws-Request-Id"] = []string{inv.RequestID}
	h["Lambda-Runtime-Deadline-Ms"] = []string{strconv.FormatInt(inv.Deadline.UnixMilli(), 10)}
	h["Lambda-Runtime-Invoked-Function-Arn"] = []string{inv.InvokedARN}
	h["Lambda-Runtime-Trace-Id"] = []string{inv.TraceID}
	if inv.ClientContext != "" {
		h["Lambda-Runtime-Client-Context"] = []string{inv.ClientContext}
	}
	if inv.CognitoIdentity != "" {
		h["Lambda-Runtime-Cognito-Identity"] = []string{inv.CognitoIdentity}
	}
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(len(inv.Payload))}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(inv.Payload)
}

var accepted = []byte(`{"status":"OK"}` + "\n")

func (s *Server) answer(w http.ResponseWriter, r *http.Request, id string, isErr bool) {
	s.mu.Lock()
	c := s.cur
	if s.st != stateBusy || c == nil || c.inv.RequestID != id || len(s.work) != 0 {
		st := s.st
		s.mu.Unlock()
		if st == stateClosed {
			writeErr(w, http.StatusGone, "InstanceClosed", "instance is shutting down")
			return
		}
		writeErr(w, http.StatusBadRequest, "InvalidRequestID", "Invalid request ID: "+id+" is not the invocation in progress")
		return
	}
	// Hold the invocation: a second answer for the same id must fail.
	s.cur = nil
	s.mu.Unlock()

	res := &Result{}
	limit := int64(MaxResponse)
	if isErr {
		limit = maxErrorBody
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	switch {
	case err != nil:
		res.Err = true
		res.Payload = errorDoc("Runtime.InvalidResponse", "could not read the runtime's response: "+err.Error())
	case int64(len(body)) > limit && !isErr:
		res.Err = true
		res.Payload = errorDoc("Function.ResponseSizeTooLarge",
			"Response payload size exceeded maximum allowed payload size (6291556 bytes).")
		writeErr(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge",
			"Response payload size exceeded maximum allowed payload size (6291556 bytes).")
		s.finish(c, res)
		return
	case isErr:
		if int64(len(body)) > limit {
			body = body[:limit]
		}
		res.ErrorType = errorType(r, body, "Unhandled")
		res.Payload = body
		if !json.Valid(body) {
			res.Payload = errorDoc(res.ErrorType, string(body))
		}
	case r.Trailer.Get(headerErrorType) != "":
		// The runtime failed part way through sending the response: the
		// invocation failed, and the trailer holds the error document.
		res.ErrorType = r.Trailer.Get(headerErrorType)
		doc, err := base64.StdEncoding.DecodeString(r.Trailer.Get(trailerErrorBody))
		if err != nil || !json.Valid(doc) {
			doc = errorDoc(res.ErrorType, "the runtime failed while sending the response")
		}
		res.Payload = doc
	default:
		res.Payload = body
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write(accepted)
	s.finish(c, res)
}

// finish ends the invocation of c, which the caller has claimed, with res.
// The state is back to idle before Invoke returns, so its caller can invoke
// again at once.
func (s *Server) finish(c *call, res *Result) {
	s.mu.Lock()
	if s.st == stateBusy {
		s.st = stateIdle
	}
	s.mu.Unlock()
	c.reply <- reply{res: res}
}

func (s *Server) initError(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	// Before the first /next the state is init, or busy with an invocation
	// that Invoke queued and the runtime never took.
	if s.started || (s.st != stateInit && s.st != stateBusy) {
		s.mu.Unlock()
		writeErr(w, http.StatusForbidden, "InvalidStateTransition", "init/error is only allowed before the first invocation/next")
		return
	}
	var queued *call
	if s.st == stateBusy {
		select {
		case queued = <-s.work:
		default:
		}
		s.cur = nil
	}
	s.st = stateInitErr
	s.mu.Unlock()
	if queued != nil {
		queued.reply <- reply{err: ErrNotDelivered}
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxErrorBody))
	ie := InitError{ErrorType: errorType(r, body, "Runtime.Unknown"), Payload: body}
	if !json.Valid(body) {
		ie.Payload = errorDoc(ie.ErrorType, string(body))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write(accepted)
	s.initErr <- ie
}

// errorType is the type of the error the runtime reports in r: the
// Lambda-Runtime-Function-Error-Type header, else the errorType of the error
// document in body, else def.
func errorType(r *http.Request, body []byte, def string) string {
	if typ := r.Header.Get(headerErrorType); typ != "" {
		return typ
	}
	var doc struct {
		ErrorType string `json:"errorType"`
	}
	if json.Unmarshal(body, &doc) == nil && doc.ErrorType != "" {
		return doc.ErrorType
	}
	return def
}

// errorDoc is the JSON error document Lambda returns for platform-detected
// function errors.
func errorDoc(typ, msg string) []byte {
	b, _ := json.Marshal(struct {
		ErrorMessage string `json:"errorMessage"`
		ErrorType    string `json:"errorType"`
	}{msg, typ})
	return b
}

// ErrorDoc builds the JSON error document for an error the platform detected
// (timeout, runtime exit), in the shape runtimes use.
func ErrorDoc(errorType, message string) []byte { return errorDoc(errorType, message) }

func writeErr(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(errorDoc(typ, msg))
}
