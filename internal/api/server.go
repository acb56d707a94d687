// Package api is moat's HTTP edge: the Lambda-compatible REST API (control
// plane and Invoke), SigV4 authentication, request size limits, and the AWS
// JSON error shapes. It owns routing and wire formats only: it never runs
// functions (invoke does) nor stores records (registry does).
package api

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"moat.dev/moat/internal/registry"
)

// Request size limits, as AWS enforces them.
const (
	MaxSyncPayload   = 6 * 1024 * 1024 // RequestResponse request and response
	MaxAsyncPayload  = 256 * 1024      // Event invocations
	MaxControlBody   = 69905067        // CreateFunction / UpdateFunctionCode with a base64 ZipFile
	maxInvokeReadCap = MaxSyncPayload + 1
)

// Authenticator checks a request's SigV4 signature over the request and the
// SHA-256 of its body. It returns the caller's access key, or an *Error
// (403 codes) that explains the refusal.
type Authenticator interface {
	Authenticate(r *http.Request, payloadSHA256 []byte) (accessKey string, err error)
}

// Options configure a Server.
type Options struct {
	Registry     *registry.Registry
	Resolver     Resolver
	Invoker      Invoker
	Queue        Enqueuer
	Logs         LogReader
	Destinations DestinationReader
	Monitor      Monitor    // records, alerts and rules; nil: unavailable
	Profiles     Profiles   // behaviour profiles; nil: unavailable
	Status       func() any // body of GET /moat/v1/status; nil omits the route
	// Isolation reports the walls instances get on this node, for
	// GetFunction's Isolation field.
	Isolation func() any
	// URLBase is the address of the function URL with an id, for the
	// FunctionUrl field; nil leaves it empty.
	URLBase func(id string) string
	// Presign signs a GET of url into a presigned URL valid for expires,
	// for GetFunction's Code.Location; nil leaves the URL unsigned (its
	// download then needs a signed request).
	Presign func(url string, expires time.Duration) (string, error)
	Auth    Authenticator
	// Scheduler enables the EventBridge Scheduler API; nil leaves it off.
	Scheduler *SchedulerOptions
	Logger    *slog.Logger
}

// Server serves the API. Create it with New; it is an http.Handler.
type Server struct {
	opts  Options
	log   *slog.Logger
	mux   *http.ServeMux
	ready atomic.Bool
}

// New returns a Server. It answers /healthz with 503 until SetReady(true).
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{opts: opts, log: opts.Logger, mux: http.NewServeMux()}
	s.routes()
	return s
}

// SetReady flips the /healthz answer.
func (s *Server) SetReady(ok bool) { s.ready.Store(ok) }

type handlerFunc func(w http.ResponseWriter, r *http.Request, body []byte) error

func (s *Server) routes() {
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if !s.ready.Load() {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "ok\n")
	})

	const fn = "/2015-03-31/functions/{name}"
	// Invoke.
	s.handle("POST "+fn+"/invocations", maxInvokeReadCap, s.invoke)
	// Control plane.
	s.handle("POST /2015-03-31/functions", MaxControlBody, s.control(s.createFunction))
	s.handle("POST /2015-03-31/functions/{$}", MaxControlBody, s.control(s.createFunction))
	s.handle("GET /2015-03-31/functions", 0, s.control(s.listFunctions))
	s.handle("GET /2015-03-31/functions/{$}", 0, s.control(s.listFunctions))
	s.handle("GET "+fn, 0, s.control(s.getFunction))
	s.handle("DELETE "+fn, 0, s.control(s.deleteFunction))
	s.handle("GET "+fn+"/configuration", 0, s.control(s.getFunctionConfiguration))
	s.handle("PUT "+fn+"/configuration", 1<<20, s.control(s.updateFunctionConfiguration))
	s.handle("PUT "+fn+"/code", MaxControlBody, s.control(s.updateFunctionCode))
	s.handle("POST "+fn+"/versions", 1<<20, s.control(s.publishVersion))
	s.handle("GET "+fn+"/versions", 0, s.control(s.listVersions))
	s.handle("POST "+fn+"/aliases", 1<<20, s.control(s.createAlias))
	s.handle("GET "+fn+"/aliases", 0, s.control(s.listAliases))
	s.handle("GET "+fn+"/aliases/{alias}", 0, s.control(s.getAlias))
	s.handle("PUT "+fn+"/aliases/{alias}", 1<<20, s.control(s.updateAlias))
	s.handle("DELETE "+fn+"/aliases/{alias}", 0, s.control(s.deleteAlias))
	s.handle("PUT /2017-10-31/functions/{name}/concurrency", 1<<20, s.control(s.putConcurrency))
	s.handle("DELETE /2017-10-31/functions/{name}/concurrency", 0, s.control(s.deleteConcurrency))
	s.handle("GET /2019-09-30/functions/{name}/concurrency", 0, s.control(s.getConcurrency))
	s.handle("PUT /2019-09-25/functions/{name}/event-invoke-config", 1<<20, s.control(s.putEventInvokeConfig))
	s.handle("POST /2019-09-25/functions/{name}/event-invoke-config", 1<<20, s.control(s.putEventInvokeConfig))
	s.handle("GET /2019-09-25/functions/{name}/event-invoke-config", 0, s.control(s.getEventInvokeConfig))
	s.handle("DELETE /2019-09-25/functions/{name}/event-invoke-config", 0, s.control(s.deleteEventInvokeConfig))
	s.handle("GET /2019-09-25/functions/{name}/event-invoke-config/list", 0, s.control(s.listEventInvokeConfigs))
	// moat's own API.
	s.handle("POST /2017-03-31/tags/{arn}", 1<<20, s.control(s.tagResource))
	s.handle("DELETE /2017-03-31/tags/{arn}", 0, s.control(s.untagResource))
	s.handle("GET /2017-03-31/tags/{arn}", 0, s.control(s.listTags))
	s.handle("GET /2016-08-19/account-settings", 0, s.control(s.getAccountSettings))
	s.handle("GET /2016-08-19/account-settings/{$}", 0, s.control(s.getAccountSettings))
	const url = "/2021-10-31/functions/{name}/url"
	s.handle("POST "+url, 1<<20, s.control(s.createFunctionURL))
	s.handle("GET "+url, 0, s.control(s.getFunctionURL))
	s.handle("PUT "+url, 1<<20, s.control(s.updateFunctionURL))
	s.handle("DELETE "+url, 0, s.control(s.deleteFunctionURL))
	s.handle("GET "+url+"s", 0, s.control(s.listFunctionURLs))
	s.handle("GET /moat/v1/logs/{name}", 0, s.readLogs)
	s.handle("GET /moat/v1/destinations/{dest}", 0, s.readDestination)
	s.handle("GET /moat/v1/code/{sha256}", 0, s.control(s.getCode))
	s.handle("GET /moat/v1/events", 0, s.events)
	s.monitorRoutes()
	s.scheduleRoutes()
	if s.opts.Status != nil {
		s.handle("GET /moat/v1/status", 0, func(w http.ResponseWriter, r *http.Request, _ []byte) error {
			return writeJSON(w, http.StatusOK, s.opts.Status())
		})
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, errorf(CodeUnknownOperation, "Unknown operation "+r.Method+" "+r.URL.Path))
	})
}

// handle registers h behind authentication. The body, at most limit bytes,
// is read before the signature is checked (SigV4 signs its hash); a larger
// body is refused with the size error of the operation.
func (s *Server) handle(pattern string, limit int64, h handlerFunc) {
	s.handleWith(s.opts.Auth, pattern, limit, h)
}

// handleWith is handle with the authenticator of another service's API.
func (s *Server) handleWith(auth Authenticator, pattern string, limit int64, h handlerFunc) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		body, err := readBody(r, limit)
		if err != nil {
			writeError(w, err)
			return
		}
		sum := sha256.Sum256(body)
		if auth == nil {
			writeError(w, errorf(CodeMissingAuthToken, "Missing Authentication Token"))
			return
		}
		if _, err := auth.Authenticate(r, sum[:]); err != nil {
			writeError(w, err)
			return
		}
		if err := h(w, r, body); err != nil {
			var e *Error
			if !errors.As(err, &e) {
				s.log.Error("api request failed", "method", r.Method, "path", r.URL.Path, "err", err)
			}
			writeError(w, err)
		}
	})
}

// readBody reads the whole body, at most limit bytes. A body of known
// length is read into one buffer of exactly that size: it is the largest
// allocation of a CreateFunction call (up to MaxControlBody), so it is made
// once, never grown and copied.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	if limit == 0 {
		limit = 1 << 20
	}
	if r.ContentLength > limit {
		return nil, tooLarge(r, r.ContentLength)
	}
	if r.ContentLength > 0 {
		buf := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			return nil, errorf(CodeInvalidRequestContent, "could not read request body")
		}
		// net/http ends the body at Content-Length; a reader that does
		// not is refused rather than trusted.
		var one [1]byte
		if n, _ := io.ReadFull(r.Body, one[:]); n > 0 {
			return nil, errorf(CodeInvalidRequestContent, "request body is longer than its Content-Length")
		}
		return buf, nil
	}
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, errorf(CodeInvalidRequestContent, "could not read request body")
	}
	if n > limit {
		return nil, tooLarge(r, n)
	}
	return buf.Bytes(), nil
}

func tooLarge(r *http.Request, n int64) error {
	if r.Method == http.MethodPost && hasSuffix(r.URL.Path, "/invocations") {
		return errorf(CodeRequestTooLarge, "Request must be smaller than 6291456 bytes for the InvokeFunction operation")
	}
	return errorf(CodeRequestEntityTooLarge, "Request must be smaller than 69905067 bytes for the operation")
}

func hasSuffix(s, suffix string) bool {
	return len(s) >= len(suffix) && s[len(s)-len(suffix):] == suffix
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }
