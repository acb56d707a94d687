package invoke

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"moat.dev/moat/internal/logs"
	"moat.dev/moat/internal/registry"
	"moat.dev/moat/internal/runtimeapi"
	"moat.dev/moat/internal/sandbox"
)

// Resolver finds what to run; *registry.Registry implements it.
type Resolver interface {
	Resolve(name, qualifier string) (*registry.Target, error)
	Environment(c *registry.Config) (map[string]string, error)
}

// CodeSource gives the unpacked, read-only code of a package; *codepkg.Cache
// implements it.
type CodeSource interface {
	Dir(ctx context.Context, sha256hex string) (string, error)
}

// Spawner starts isolated instances; *sandbox.Manager implements it.
type Spawner interface {
	Spawn(ctx context.Context, spec sandbox.Spec) (*sandbox.Instance, error)
}

// Monitor follows instances and invocations for the runtime sensor;
// *monitor.Monitor implements it.
type Monitor interface {
	// Begin and End bracket one invocation on an instance. End reports
	// whether the instance must not be reused (its function recycles on
	// denial and a wall refused it something).
	Begin(instanceID, requestID, source string)
	End(instanceID, requestID string) (retire bool)
}

// Profiles gives the approved behaviour profile of a function version for
// enforce mode; *monitor.Monitor implements it.
type Profiles interface {
	// Enforcement returns the approved profile's executables and
	// destinations; ok is false when the version has no approved profile
	// yet. An error means the profile could not be read.
	Enforcement(ctx context.Context, function, version string) (exec, connect []string, ok bool, err error)
}

// LogSink stores log records; *logs.Writer implements it.
type LogSink interface {
	Write(rec logs.Record)
}

// Options configure a Dispatcher.
type Options struct {
	Resolver Resolver
	Code     CodeSource
	Spawner  Spawner
	Logs     LogSink
	// Monitor, when set, is told of every instance and invocation.
	Monitor Monitor
	// Profiles, when set, turns the approved profile of a function in
	// enforce mode into walls.
	Profiles Profiles
	Region   string
	// TaskRoot is LAMBDA_TASK_ROOT as instances see it; empty means the
	// host path of the unpacked code (when instances share the host's
	// mount namespace).
	TaskRoot string
	// MaxConcurrency bounds concurrent invocations on the node (default 1000).
	MaxConcurrency int
	// IdleTimeout reaps instances idle this long (default 5 minutes).
	IdleTimeout time.Duration
	// InitTimeout bounds an instance's init phase (default 10 s).
	InitTimeout time.Duration
	Logger      *slog.Logger
}

// Errors Invoke returns besides the registry's.
var (
	// ErrThrottled: no concurrency slot was free.
	ErrThrottled = errors.New("rate exceeded")
	// ErrClosed: the dispatcher is shutting down.
	ErrClosed = errors.New("dispatcher is shutting down")
)

// ThrottleError says which limit throttled an invocation.
type ThrottleError struct {
	Reason string // ReservedFunctionConcurrentInvocationLimitExceeded or ConcurrentInvocationLimitExceeded
}

func (e *ThrottleError) Error() string { return "rate exceeded: " + e.Reason }
func (e *ThrottleError) Unwrap() error { return ErrThrottled }

// Request is one invocation as the API received it.
type Request struct {
	FunctionName  string
	Qualifier     string
	Payload       []byte
	ClientContext string // decoded JSON
	// RequestID is set for queued (async) invocations, which keep their id
	// across retries; empty means a new one.
	RequestID string
	// WantLog asks for the log tail in the response.
	WantLog bool
	// Source says what triggered the invocation, for its forensic
	// record: "invoke" (the Invoke API) when empty, "async" (a queued
	// Event invocation), "url:<url-id>" (a function URL).
	Source string
}

// Response is the outcome of a synchronous invocation.
type Response struct {
	RequestID       string
	ExecutedVersion string
	FunctionARN     string // the invoked ARN
	Payload         []byte
	// FunctionError is "Unhandled" when the function failed; Payload then
	// holds the error document.
	FunctionError string
	ErrorType     string
	LogTail       string // last 4 KB of the invocation's log, if asked for
}

// Dispatcher runs invocations on warm or new instances.
type Dispatcher struct {
	opts Options
	log  *slog.Logger

	mu       sync.Mutex
	pools    map[poolKey]*pool
	active   int            // running invocations on the node
	fnActive map[string]int // running invocations per function
	closed   bool
	inflight sync.WaitGroup

	stopReaper chan struct{}
	reaperDone chan struct{}

	denied  atomic.Uint64 // invocations during which a connection was refused
	retired atomic.Uint64 // instances retired after a refusal

	liveMu sync.Mutex
	live   map[string]*instance // every instance not yet closed, by id (for Retire)
}

type poolKey struct {
	function, version, revision string
}

type pool struct {
	mu   sync.Mutex
	idle []*instance // LIFO: the most recently used is the warmest
}

// New starts a Dispatcher and its idle reaper.
func New(opts Options) *Dispatcher {
	if opts.MaxConcurrency <= 0 {
		opts.MaxConcurrency = 1000
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 5 * time.Minute
	}
	if opts.InitTimeout <= 0 {
		opts.InitTimeout = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	d := &Dispatcher{
		opts:       opts,
		log:        opts.Logger,
		pools:      map[poolKey]*pool{},
		fnActive:   map[string]int{},
		stopReaper: make(chan struct{}),
		reaperDone: make(chan struct{}),
	}
	go d.reaper()
	return d
}

// Invoke runs one invocation and waits for its outcome. The invocation is
// not tied to ctx's cancellation, as on Lambda: once started it runs to its
// own deadline even if the caller goes away.
func (d *Dispatcher) Invoke(ctx context.Context, req *Request) (*Response, error) {
	t, err := d.opts.Resolver.Resolve(req.FunctionName, req.Qualifier)
	if err != nil {
		return nil, err
	}
	return d.InvokeTarget(ctx, t, req)
}

// InvokeTarget runs req on an already resolved target.
func (d *Dispatcher) InvokeTarget(ctx context.Context, t *registry.Target, req *Request) (*Response, error) {
	if err := d.acquire(t); err != nil {
		return nil, err
	}
	defer d.release(t)
	return d.run(context.WithoutCancel(ctx), t, req)
}

func (d *Dispatcher) acquire(t *registry.Target) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	fn := t.Config.FunctionName
	if t.Reserved >= 0 && d.fnActive[fn] >= t.Reserved {
		return &ThrottleError{Reason: "ReservedFunctionConcurrentInvocationLimitExceeded"}
	}
	if d.active >= d.opts.MaxConcurrency {
		return &ThrottleError{Reason: "ConcurrentInvocationLimitExceeded"}
	}
	d.active++
	d.fnActive[fn]++
	d.inflight.Add(1)
	return nil
}

func (d *Dispatcher) release(t *registry.Target) {
	d.mu.Lock()
	d.active--
	fn := t.Config.FunctionName
	if d.fnActive[fn]--; d.fnActive[fn] <= 0 {
		delete(d.fnActive, fn)
	}
	d.mu.Unlock()
	d.inflight.Done()
}

func (d *Dispatcher) poolFor(cfg *registry.Config) *pool {
	k := poolKey{cfg.FunctionName, cfg.Version, cfg.RevisionID}
	d.mu.Lock()
	p := d.pools[k]
	if p == nil {
		p = &pool{}
		d.pools[k] = p
	}
	d.mu.Unlock()
	return p
}

func (p *pool) get() *instance {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.idle); n > 0 {
		i := p.idle[n-1]
		p.idle = p.idle[:n-1]
		return i
	}
	return nil
}

// put returns an instance to the pool, unless it was retired; false
// means the caller must close it.
func (p *pool) put(i *instance) bool {
	i.lastUsed = time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	// Retire sets retired before it looks in the pool under mu: either
	// it finds the instance here, or put sees the mark.
	if i.retired.Load() {
		return false
	}
	p.idle = append(p.idle, i)
	return true
}

// remove takes an idle instance out of the pool; false if it was not
// there (it is running an invocation, or already gone).
func (p *pool) remove(i *instance) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, x := range p.idle {
		if x == i {
			p.idle = slices.Delete(p.idle, k, k+1)
			return true
		}
	}
	return false
}

// Retire destroys an instance instead of reusing it: at once if it is
// idle, when its invocation in progress ends otherwise. The monitor calls
// it for functions whose Sandbox.OnDenial is recycle, after the sandbox
// refused the instance something.
func (d *Dispatcher) Retire(instanceID string) {
	d.liveMu.Lock()
	inst := d.live[instanceID]
	d.liveMu.Unlock()
	if inst == nil || !inst.retired.CompareAndSwap(false, true) {
		return
	}
	d.log.Warn("instance retired: the sandbox refused it something", "function", inst.cfg.FunctionName,
		"version", inst.cfg.Version, "instance", instanceID)
	d.retired.Add(1)
	if p := inst.pool; p != nil && p.remove(inst) {
		go inst.close()
	}
}

// track records a spawned instance until it is closed.
func (d *Dispatcher) track(inst *instance) {
	d.liveMu.Lock()
	if d.live == nil {
		d.live = map[string]*instance{}
	}
	d.live[inst.id] = inst
	d.liveMu.Unlock()
	inst.untrack = func() {
		d.liveMu.Lock()
		delete(d.live, inst.id)
		d.liveMu.Unlock()
	}
}

// NewRequestID returns a random UUID (version 4), the form Lambda uses.
func NewRequestID() string { return uuid.NewString() }

func traceID(now time.Time) string {
	var b [20]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("Root=1-%08x-%s;Parent=%s;Sampled=0", now.Unix(), hex.EncodeToString(b[:12]), hex.EncodeToString(b[12:]))
}

// run executes req on a warm or new instance of t.
func (d *Dispatcher) run(ctx context.Context, t *registry.Target, req *Request) (*Response, error) {
	cfg := t.Config
	reqID := req.RequestID
	if reqID == "" {
		reqID = NewRequestID()
	}
	resp := &Response{RequestID: reqID, ExecutedVersion: cfg.Version, FunctionARN: t.InvokedARN}
	p := d.poolFor(cfg)
	a, err := d.deliver(ctx, t, req, reqID, p)
	if err != nil {
		var ie *errInit
		if !errors.As(err, &ie) {
			return nil, err
		}
		return d.initFailed(t, req, resp, ie), nil
	}
	dur := time.Since(a.start)
	healthy, status, out, err := d.outcome(cfg, reqID, a, resp)
	if err != nil {
		return nil, err
	}
	var text strings.Builder
	text.WriteString(logs.StartLine(reqID, cfg.Version))
	text.WriteString(out)
	if note := a.inst.deniedNote(reqID); note != "" {
		text.WriteString(note)
		d.denied.Add(1)
	}
	text.WriteString(logs.EndLine(reqID))
	text.WriteString(a.inst.report(reqID, dur, status))
	logText := text.String()
	d.store(cfg, a.inst, reqID, logText)
	if req.WantLog {
		resp.LogTail = logs.Tail(logText, 4096)
	}

	if !healthy || cfg.PerInvocation() || !p.put(a.inst) {
		go a.inst.close()
	}
	return resp, nil
}

// An attempt is the delivery of one event to one instance.
type attempt struct {
	inst  *instance
	res   *runtimeapi.Result
	err   error // of the Runtime API: nil, a deadline, or the runtime gone
	start time.Time
}

// deliver runs the event on a warm instance, or on a new one (an *errInit
// error when its init failed). An instance can die between invocations (a
// runtime that exits after reporting an error): the event was then never
// delivered and goes to another instance, up to three times.
func (d *Dispatcher) deliver(ctx context.Context, t *registry.Target, req *Request, reqID string, p *pool) (attempt, error) {
	cfg := t.Config
	for n := 0; ; n++ {
		inst := p.get()
		if inst == nil {
			var err error
			if inst, err = d.spawn(ctx, cfg); err != nil {
				return attempt{}, err
			}
		}
		inst.invoked++
		start := time.Now()
		deadline := start.Add(time.Duration(cfg.Timeout) * time.Second)
		// Output between invocations (init, background work) is stored on its own.
		if stray := inst.out.take(); stray != "" {
			d.store(cfg, inst, "", stray)
		}
		ictx, cancel := context.WithDeadline(ctx, deadline)
		if d.opts.Monitor != nil {
			src := req.Source
			if src == "" {
				src = "invoke"
			}
			d.opts.Monitor.Begin(inst.id, reqID, src)
		}
		res, err := inst.api.Invoke(ictx, &runtimeapi.Invocation{
			RequestID:     reqID,
			Payload:       req.Payload,
			Deadline:      deadline,
			InvokedARN:    t.InvokedARN,
			TraceID:       traceID(start),
			ClientContext: req.ClientContext,
		})
		cancel()
		if d.opts.Monitor != nil && d.opts.Monitor.End(inst.id, reqID) {
			d.Retire(inst.id)
		}
		if errors.Is(err, runtimeapi.ErrNotDelivered) && n < 3 {
			if stray := inst.out.take(); stray != "" {
				d.store(cfg, inst, "", stray)
			}
			go inst.close()
			continue
		}
		return attempt{inst: inst, res: res, err: err, start: start}, nil
	}
}

// outcome fills resp from an attempt and returns whether the instance may
// be reused, the REPORT status ("", "timeout" or "error") and the
// invocation's output for its log, with moat's own lines for a timeout or
// a runtime that exited. An error of any other kind closes the instance
// and is returned.
func (d *Dispatcher) outcome(cfg *registry.Config, reqID string, a attempt, resp *Response) (healthy bool, status, out string, err error) {
	inst := a.inst
	switch {
	case a.err == nil:
		resp.Payload = a.res.Payload
		if a.res.IsError() {
			resp.FunctionError = "Unhandled"
			resp.ErrorType = a.res.ErrorType
			if a.res.Err {
				return false, "", inst.output(), nil
			}
		}
		return true, "", inst.output(), nil
	case errors.Is(a.err, context.DeadlineExceeded):
		inst.sb.Kill()
		msg := fmt.Sprintf("%s %s Task timed out after %.2f seconds", time.Now().UTC().Format("2006-01-02T15:04:05.000Z"), reqID, float64(cfg.Timeout))
		resp.FunctionError, resp.ErrorType = "Unhandled", "Sandbox.Timedout"
		resp.Payload = runtimeapi.ErrorDoc("Sandbox.Timedout", msg)
		return false, "timeout", inst.output() + msg + "\n", nil
	case errors.Is(a.err, runtimeapi.ErrClosed):
		<-inst.sb.Done()
		typ := exitType(inst.sb)
		msg := fmt.Sprintf("RequestId: %s Error: Runtime exited with error: %s", reqID, exitReason(inst.sb))
		resp.FunctionError, resp.ErrorType = "Unhandled", typ
		resp.Payload = runtimeapi.ErrorDoc(typ, msg)
		return false, "error", inst.output() + msg + "\n" + typ + "\n", nil
	default:
		inst.close()
		return false, "", "", fmt.Errorf("invoke instance: %w", a.err)
	}
}

// output is what the instance wrote during the invocation, drained up to
// what the kernel holds now and briefly after.
func (i *instance) output() string {
	i.out.sync(20 * time.Millisecond)
	return i.out.take()
}

// initFailed reports an instance that failed its init phase as the
// invocation's error, as Lambda does.
func (d *Dispatcher) initFailed(t *registry.Target, req *Request, resp *Response, ie *errInit) *Response {
	cfg := t.Config
	resp.FunctionError = "Unhandled"
	resp.ErrorType = ie.typ
	doc := ie.doc
	if len(doc) > 0 && doc[0] != '{' {
		doc = runtimeapi.ErrorDoc(ie.typ, fmt.Sprintf(string(doc), resp.RequestID))
	}
	resp.Payload = doc
	var text strings.Builder
	text.WriteString(ie.logText)
	text.WriteString(logs.StartLine(resp.RequestID, cfg.Version))
	text.WriteString(fmt.Sprintf("RequestId: %s Error: init failed: %s\n", resp.RequestID, ie.typ))
	text.WriteString(logs.EndLine(resp.RequestID))
	text.WriteString(logs.ReportLine(logs.Report{
		RequestID:    resp.RequestID,
		Duration:     ie.initDur,
		MemorySizeMB: cfg.MemorySize,
		InitDuration: ie.initDur,
		Status:       "error",
	}))
	s := text.String()
	d.store(cfg, nil, resp.RequestID, s)
	if req.WantLog {
		resp.LogTail = logs.Tail(s, 4096)
	}
	return resp
}

func (d *Dispatcher) store(cfg *registry.Config, inst *instance, reqID, text string) {
	if d.opts.Logs == nil {
		return
	}
	stream := ""
	if inst != nil {
		stream = inst.logStream
	}
	d.opts.Logs.Write(logs.Record{
		Time:      time.Now().UTC(),
		Function:  cfg.FunctionName,
		Version:   cfg.Version,
		RequestID: reqID,
		Stream:    stream,
		Text:      text,
	})
}

func (d *Dispatcher) reaper() {
	defer close(d.reaperDone)
	tick := time.NewTicker(min(d.opts.IdleTimeout/4, 10*time.Second))
	defer tick.Stop()
	for {
		select {
		case <-d.stopReaper:
			return
		case now := <-tick.C:
			d.reap(now.Add(-d.opts.IdleTimeout))
		}
	}
}

// reap closes instances idle since before cutoff.
func (d *Dispatcher) reap(cutoff time.Time) int {
	var victims []*instance
	d.mu.Lock()
	for k, p := range d.pools {
		p.mu.Lock()
		keep := p.idle[:0]
		for _, i := range p.idle {
			if i.lastUsed.Before(cutoff) {
				victims = append(victims, i)
			} else {
				keep = append(keep, i)
			}
		}
		clear(p.idle[len(keep):])
		p.idle = keep
		empty := len(p.idle) == 0
		p.mu.Unlock()
		if empty {
			delete(d.pools, k)
		}
	}
	d.mu.Unlock()
	for _, i := range victims {
		i.close()
	}
	return len(victims)
}

// Stats is a snapshot of the dispatcher's load.
type Stats struct {
	Active        int `json:"active"`
	IdleInstances int `json:"idleInstances"`
	// InvocationsWithRefusedConnections counts invocations during which
	// the kernel refused a connection to a destination not granted.
	InvocationsWithRefusedConnections uint64 `json:"invocationsWithRefusedConnections"`
	// InstancesRetired counts instances destroyed instead of reused
	// because the sandbox refused them something (Sandbox.OnDenial).
	InstancesRetired uint64 `json:"instancesRetired"`
}

// Stats returns the current load.
func (d *Dispatcher) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := Stats{Active: d.active, InvocationsWithRefusedConnections: d.denied.Load(), InstancesRetired: d.retired.Load()}
	for _, p := range d.pools {
		p.mu.Lock()
		s.IdleInstances += len(p.idle)
		p.mu.Unlock()
	}
	return s
}

// Close stops taking invocations, waits for the running ones until ctx
// ends, and destroys every instance.
func (d *Dispatcher) Close(ctx context.Context) error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.mu.Unlock()
	close(d.stopReaper)
	<-d.reaperDone

	done := make(chan struct{})
	go func() {
		d.inflight.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("close dispatcher: in-flight invocations still running: %w", ctx.Err())
	}
	d.reap(time.Now().Add(time.Hour))
	return err
}
