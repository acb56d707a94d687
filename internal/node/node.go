// Package node assembles one moat node: storage, registry, dispatcher, API
// and their lifecycles. `moat up` is a thin wrapper around Run.
package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"moat.dev/moat/internal/api"
	"moat.dev/moat/internal/codepkg"
	"moat.dev/moat/internal/credentials"
	"moat.dev/moat/internal/egress"
	"moat.dev/moat/internal/events/schedule"
	"moat.dev/moat/internal/funcurl"
	"moat.dev/moat/internal/invoke"
	"moat.dev/moat/internal/logs"
	"moat.dev/moat/internal/monitor"
	"moat.dev/moat/internal/profile"
	"moat.dev/moat/internal/profiles"
	"moat.dev/moat/internal/registry"
	"moat.dev/moat/internal/rules"
	"moat.dev/moat/internal/sandbox"
	"moat.dev/moat/internal/seccomp"
	"moat.dev/moat/internal/secrets"
	"moat.dev/moat/internal/sensor"
	"moat.dev/moat/internal/sigv4"
	"moat.dev/moat/internal/store"
	"moat.dev/moat/internal/webhook"

	"golang.org/x/sys/unix"
)

// Options configure a node. Zero values take the documented defaults.
type Options struct {
	Listen         string        // API address, default 127.0.0.1:9000
	DataDir        string        // required: credentials, keys, JetStream, code cache
	NATSURL        string        // join an external NATS cluster instead of embedding one
	Region         string        // default us-east-1
	AccountID      string        // default 000000000000
	IdleTimeout    time.Duration // reap idle instances after this long, default 5m
	MaxConcurrency int           // node-wide concurrent invocations, default 1000
	// SandboxPool is how many instances the node keeps built ahead of
	// cold starts (namespaces, cgroups and the shared root, waiting for a
	// function); 0 builds every instance on demand.
	SandboxPool   int
	ShutdownGrace time.Duration // drain in-flight invocations for at most this long, default 30s
	MasterKeyFile string        // default DataDir/master.key
	// AsyncRetryDelays are the waits before the retries of a failed Event
	// invocation; default 1 and 2 minutes, as Lambda.
	AsyncRetryDelays []time.Duration
	// AllowWeakerIsolation lets the node start when a sandbox wall is not
	// available on this host (it is logged loudly and shown in status).
	AllowWeakerIsolation bool
	// Sensor configures the runtime sensor and what is made of its events.
	Sensor SensorOptions
	// MetricsListen, when set, serves Prometheus metrics at /metrics on
	// this address (no authentication: bind it to loopback or a scrape
	// network).
	MetricsListen string
	// URLListen, when set, serves the functions' URLs (function URL
	// configs) on this address; URLDomain (default localhost) is the
	// domain of their host names: <url-id>.lambda-url.<region>.<domain>.
	URLListen string
	URLDomain string
	Logger    *slog.Logger
}

// SensorOptions configure monitoring.
type SensorOptions struct {
	// Disabled turns the sensor off on purpose (status says so).
	Disabled bool
	// LearnInvocations and LearnDuration end a new profile's learning
	// window, whichever comes first (default 100 invocations, 7 days).
	LearnInvocations int
	LearnDuration    time.Duration
	// TraceRetention bounds how long records and alerts are kept
	// (default 30 days).
	TraceRetention time.Duration
	// Webhook receives every alert, if set.
	Webhook       string
	WebhookSecret string
}

func (o *Options) defaults() error {
	if o.DataDir == "" {
		return errors.New("data dir is required")
	}
	if o.Listen == "" {
		o.Listen = "127.0.0.1:9000"
	}
	if o.URLDomain == "" {
		o.URLDomain = "localhost"
	}
	if o.Region == "" {
		o.Region = "us-east-1"
	}
	if o.AccountID == "" {
		o.AccountID = "000000000000"
	}
	if o.ShutdownGrace <= 0 {
		o.ShutdownGrace = 30 * time.Second
	}
	if o.MasterKeyFile == "" {
		o.MasterKeyFile = filepath.Join(o.DataDir, "master.key")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Run runs the node until ctx is cancelled, then shuts down gracefully.
// ready, if not nil, is called with the bound API address once /healthz
// answers 200.
func Run(ctx context.Context, opts Options, ready func(addr string)) (err error) {
	if err := opts.defaults(); err != nil {
		return err
	}
	n := &node{opts: opts, log: opts.Logger}
	defer n.close()
	if err := n.openState(ctx); err != nil {
		return err
	}
	if err := n.startInstances(ctx); err != nil {
		return err
	}
	if err := n.startInvocations(); err != nil {
		return err
	}
	n.newAPI()
	return n.serve(ctx, ready)
}

// A node is one running moat: its components in the order they start, and
// what stops them, in reverse.
type node struct {
	opts    Options
	log     *slog.Logger
	closers []func()

	credPath string
	key      credentials.Key
	st       *store.Store
	reg      *registry.Registry

	egress    *egress.Manager // nil: network grants unavailable here
	egressMsg string          // "available", or why not
	profiles  *profiles.Store
	mon       *monitor.Monitor
	mgr       *sandbox.Manager
	iso       sandbox.Isolation
	missing   map[string]string

	lw    *logs.Writer
	disp  *invoke.Dispatcher
	queue *invoke.Queue
	srv   *api.Server
	auth  api.SigV4
	// schedules fires the cluster's schedules from this node.
	schedules *schedule.Ticker
	// urlPort is the port function URLs are served on, once listening.
	urlPort atomic.Int32
}

// onClose adds f to what close runs, before everything added earlier.
func (n *node) onClose(f func()) { n.closers = append(n.closers, f) }

func (n *node) close() {
	for i := len(n.closers) - 1; i >= 0; i-- {
		n.closers[i]()
	}
}

// closeWithin runs f with a context that ends after d.
func closeWithin(d time.Duration, f func(context.Context)) func() {
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		f(ctx)
	}
}

// openState takes the data directory and opens what is kept in it: the
// credentials, the master key, the store and the registry.
func (n *node) openState(ctx context.Context) error {
	opts := n.opts
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	unlock, err := lockDataDir(opts.DataDir)
	if err != nil {
		return err
	}
	n.onClose(unlock)
	n.credPath = filepath.Join(opts.DataDir, "credentials")
	if n.key, err = credentials.Ensure(n.credPath); err != nil {
		return fmt.Errorf("credentials: %w", err)
	}
	keys, err := secrets.LoadOrCreateMasterKey(opts.MasterKeyFile)
	if err != nil {
		return fmt.Errorf("master key: %w", err)
	}
	n.st, err = store.Open(ctx, store.Options{DataDir: opts.DataDir, URL: opts.NATSURL, TraceRetention: opts.Sensor.TraceRetention, Logger: n.log.With("component", "store")})
	if err != nil {
		return err
	}
	n.onClose(n.st.Close)
	n.reg, err = registry.Open(ctx, registry.Options{
		KV: n.st.Functions, Code: n.st.Code, Keys: keys,
		Region: opts.Region, AccountID: opts.AccountID, Logger: n.log.With("component", "registry"),
		ConcurrencyLimit: opts.MaxConcurrency,
	})
	if err != nil {
		return fmt.Errorf("open registry: %w", err)
	}
	n.onClose(n.reg.Close)
	return nil
}

// startInstances starts what instances need and what watches them:
// network grants, the profile service, the monitor and its sensor, and the
// sandbox, whose walls are then checked with a probe instance.
func (n *node) startInstances(ctx context.Context) error {
	opts, log := n.opts, n.log
	// Network grants: veth, NAT and a kernel filter per networked instance.
	n.egressMsg = "available"
	eg, err := egress.NewManager(egress.Options{Logger: log.With("component", "egress")})
	if err != nil {
		n.egressMsg = "unavailable: " + err.Error()
		log.Warn("functions with network grants cannot run on this node", "err", err)
	} else {
		n.egress = eg
		n.onClose(func() { eg.Close() })
	}
	n.profiles, err = profiles.New(profiles.Options{
		KV:       n.st.Monitor,
		Learning: profile.Window{Invocations: opts.Sensor.LearnInvocations, Duration: opts.Sensor.LearnDuration},
		Logger:   log.With("component", "profiles"),
	})
	if err != nil {
		return err
	}
	// Closed after the monitor: its last events are learned from.
	n.onClose(closeWithin(5*time.Second, n.profiles.Close))
	mon, closeSensor, err := startMonitor(ctx, n.st, n.profiles, opts, log)
	if err != nil {
		return err
	}
	n.mon = mon
	n.onClose(closeSensor)
	n.onClose(closeWithin(5*time.Second, func(ctx context.Context) { _ = mon.Close(ctx) }))
	if opts.Sensor.Webhook != "" {
		hook, err := webhook.Start(ctx, n.st.JS, store.StreamAlerts, webhook.Options{
			URL: opts.Sensor.Webhook, Secret: opts.Sensor.WebhookSecret,
			Logger: log.With("component", "webhook"), Metrics: mon.Registry(),
		})
		if err != nil {
			return err
		}
		n.onClose(hook.Stop)
	}
	var observer sandbox.Observer
	if mon.Enabled() {
		observer = mon
	}
	n.mgr, err = sandbox.NewManager(sandbox.Options{
		Observer: observer,
		Egress:   n.egress,
		// Every node sweeps only its own instances' cgroups.
		CgroupParent: "moat/" + nodeID(opts.DataDir),
		Namespaces:   true,
		Landlock:     true,
		Seccomp:      true,
		Pool:         opts.SandboxPool,
		Logger:       log.With("component", "sandbox"),
	})
	if err != nil {
		return fmt.Errorf("sandbox: %w (moat needs root for namespaces and cgroups)", err)
	}
	n.onClose(func() { n.mgr.Close() })
	n.iso, n.missing, err = probeIsolation(ctx, n.mgr, opts, log)
	return err
}

// startInvocations starts the log writer, the code cache, the dispatcher
// and the asynchronous queue (which runs events once serve starts it).
func (n *node) startInvocations() error {
	n.lw = logs.NewWriter(n.st.JS, n.log.With("component", "logs"))
	n.onClose(closeWithin(5*time.Second, func(ctx context.Context) { _ = n.lw.Flush(ctx) }))
	code := &codepkg.Cache{Root: filepath.Join(n.opts.DataDir, "code"), Fetch: n.reg.CodeZip}
	if err := code.Sweep(); err != nil {
		return fmt.Errorf("code cache: %w", err)
	}
	n.disp = invoke.New(invoke.Options{
		Resolver:       n.reg,
		Code:           code,
		Spawner:        n.mgr,
		Logs:           n.lw,
		Monitor:        monitorHooks(n.mon),
		Profiles:       n.profiles,
		Region:         n.opts.Region,
		TaskRoot:       "/var/task",
		MaxConcurrency: n.opts.MaxConcurrency,
		IdleTimeout:    n.opts.IdleTimeout,
		Logger:         n.log.With("component", "invoke"),
	})
	n.mon.SetRetire(n.disp.Retire) // before any instance starts
	n.queue = invoke.NewQueue(n.disp, invoke.QueueOptions{
		JS: n.st.JS, Stream: n.st.Async, RetryDelays: n.opts.AsyncRetryDelays, Logger: n.log.With("component", "queue"),
	})
	n.queue.SetDestinations(n.st.Dest)
	n.schedules = schedule.NewTicker(schedule.TickerOptions{
		Store: schedule.NewStore(n.st.Schedules), Invoker: scheduleInvoker{n.queue},
		Region: n.opts.Region, AccountID: n.opts.AccountID, Logger: n.log.With("component", "schedules"),
	})
	return nil
}

// newAPI builds the API server over the node's components.
func (n *node) newAPI() {
	started := time.Now()
	key := n.key
	n.auth = api.SigV4{Verifier: &sigv4.Verifier{Secret: func(ak string) (string, bool) {
		if ak == key.AccessKeyID {
			return key.SecretAccessKey, true
		}
		return "", false
	}, Region: n.opts.Region, Service: "lambda"}}
	schedAuth := api.SigV4{Verifier: &sigv4.Verifier{Secret: n.auth.Verifier.Secret, Region: n.opts.Region, Service: "scheduler"}}
	n.srv = api.New(api.Options{
		Registry:     n.reg,
		Resolver:     n.reg,
		Invoker:      n.disp,
		Queue:        n.queue,
		Logs:         logs.NewReader(n.st.JS),
		Destinations: n.queue,
		Monitor:      n.mon,
		Profiles:     n.profiles,
		Auth:         n.auth,
		URLBase:      n.urlBase,
		Presign:      n.presign,
		Isolation:    func() any { return map[string]any{"applied": n.iso, "missing": n.missing} },
		Scheduler: &api.SchedulerOptions{
			Store: schedule.NewStore(n.st.Schedules), Auth: schedAuth, Region: n.opts.Region, AccountID: n.opts.AccountID,
		},
		Status: func() any {
			return map[string]any{
				"startedAt":         started.UTC().Format(time.RFC3339),
				"region":            n.opts.Region,
				"dispatcher":        n.disp.Stats(),
				"logRecordsDropped": n.lw.Dropped(),
				"isolation":         n.iso,
				"isolationMissing":  n.missing,
				"egress":            n.egressMsg,
				"functionUrls":      n.urlStatus(),
				"schedules":         n.schedules.Stats(),
				"monitor":           n.mon.Status(),
			}
		},
		Logger: n.log.With("component", "api"),
	})
}

// presign makes url a presigned GET (SigV4 in the query, service lambda)
// valid for expires, signed with the node's key.
func (n *node) presign(rawURL string, expires time.Duration) (string, error) {
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		return "", err
	}
	q := req.URL.Query()
	q.Set("X-Amz-Expires", strconv.Itoa(int(expires.Seconds())))
	req.URL.RawQuery = q.Encode()
	signed, _, err := v4.NewSigner().PresignHTTP(context.Background(),
		aws.Credentials{AccessKeyID: n.key.AccessKeyID, SecretAccessKey: n.key.SecretAccessKey},
		req, "UNSIGNED-PAYLOAD", "lambda", n.opts.Region, time.Now())
	return signed, err
}

// urlStatus says where function URLs are served, for moat status.
func (n *node) urlStatus() string {
	if n.urlPort.Load() == 0 {
		return "off (moat up --url-listen)"
	}
	host, _, err := net.SplitHostPort(n.opts.URLListen)
	if err != nil || host == "" {
		host = "127.0.0.1"
	}
	return n.urlBase("<url-id>") + " or http://" + net.JoinHostPort(host, strconv.Itoa(int(n.urlPort.Load()))) + "/lambda-url/<url-id>/"
}

// urlBase is the address of function URL id: its host name, on the port
// URLs are served on (empty while they are not).
func (n *node) urlBase(id string) string {
	port := n.urlPort.Load()
	if port == 0 {
		return ""
	}
	return fmt.Sprintf("http://%s.lambda-url.%s.%s:%d/", id, n.opts.Region, n.opts.URLDomain, port)
}

// serve listens, starts the queue, says ready, and runs until ctx ends or
// the API server fails; then it stops taking requests and drains what is
// in flight for at most the shutdown grace.
func (n *node) serve(ctx context.Context, ready func(addr string)) error {
	opts, log := n.opts, n.log
	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	hs := &http.Server{Handler: n.srv, ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(ln) }()

	if opts.MetricsListen != "" {
		mln, err := net.Listen("tcp", opts.MetricsListen)
		if err != nil {
			hs.Close()
			return fmt.Errorf("metrics listen: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", n.mon.MetricsHandler())
		ms := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = ms.Serve(mln) }()
		n.onClose(func() { ms.Close() })
		log.Info("serving metrics", "listen", mln.Addr().String())
	}
	var us *http.Server
	if opts.URLListen != "" {
		uln, err := net.Listen("tcp", opts.URLListen)
		if err != nil {
			hs.Close()
			return fmt.Errorf("function URL listen: %w", err)
		}
		us = &http.Server{Handler: funcurl.New(funcurl.Options{
			URLs: n.reg, Resolver: n.reg, Invoker: n.disp, Auth: n.auth, AccountID: opts.AccountID,
			Logger: n.log.With("component", "funcurl"),
		}), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = us.Serve(uln) }()
		n.urlPort.Store(int32(uln.Addr().(*net.TCPAddr).Port))
		log.Info("serving function URLs", "url_listen", uln.Addr().String(), "domain", opts.URLDomain)
	}
	if err := n.queue.Start(ctx); err != nil {
		hs.Close()
		if us != nil {
			us.Close()
		}
		return err
	}
	tctx, stopTicker := context.WithCancel(context.Background())
	tickerDone := make(chan struct{})
	go func() {
		defer close(tickerDone)
		if err := n.schedules.Run(tctx); err != nil {
			log.Error("schedules stopped", "err", err)
		}
	}()
	n.srv.SetReady(true)
	addr := ln.Addr().String()
	log.Info("moat is ready", "listen", addr, "data_dir", opts.DataDir, "credentials", n.credPath)
	if ready != nil {
		ready(addr)
	}

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		log.Error("api server failed", "err", err)
	}
	log.Info("shutting down", "grace", opts.ShutdownGrace)
	n.srv.SetReady(false)
	sctx, cancel := context.WithTimeout(context.Background(), opts.ShutdownGrace)
	defer cancel()
	// Stop taking requests; wait for in-flight ones (sync invocations
	// included) up to the grace period.
	var errs []error
	if err := hs.Shutdown(sctx); err != nil {
		errs = append(errs, fmt.Errorf("api shutdown: %w", err))
	}
	if us != nil {
		if err := us.Shutdown(sctx); err != nil {
			errs = append(errs, fmt.Errorf("function URL shutdown: %w", err))
		}
	}
	// No new ticks once the queue stops; a tick cut short keeps its
	// cursor and is fired by another node or the next start.
	stopTicker()
	<-tickerDone
	if err := n.queue.Stop(sctx); err != nil {
		errs = append(errs, err)
	}
	if err := n.disp.Close(sctx); err != nil {
		errs = append(errs, err)
	}
	log.Info("moat stopped")
	return errors.Join(errs...)
}

// probeIsolation builds one empty instance to learn which walls instances
// get on this host, and refuses to run with fewer than all of them unless
// the operator allowed it.
func probeIsolation(ctx context.Context, mgr *sandbox.Manager, opts Options, log *slog.Logger) (sandbox.Isolation, map[string]string, error) {
	iso, err := mgr.Probe(ctx)
	if err != nil {
		return iso, nil, fmt.Errorf("sandbox probe: %w", err)
	}
	missing := iso.Missing()
	if len(missing) == 0 {
		log.Info("instance isolation verified", "isolation", iso)
		return iso, missing, nil
	}
	if !opts.AllowWeakerIsolation {
		return iso, missing, fmt.Errorf("instances would run with weaker isolation than required (missing: %v); fix the host or start with --insecure-allow-weaker-isolation", missing)
	}
	log.Error("INSECURE: instances run with weaker isolation than required, as the operator allowed", "missing", missing)
	return iso, missing, nil
}

// nodeID names a node's own cgroup parent: a hash of its data directory.
func nodeID(dataDir string) string {
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		abs = dataDir
	}
	sum := sha256.Sum256([]byte(abs))
	return hex.EncodeToString(sum[:6])
}

// lockDataDir makes sure one node at a time uses a data directory.
func lockDataDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, "moat.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data dir: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("data dir %s is in use by another moat", dir)
		}
		return nil, fmt.Errorf("lock data dir: %w", err)
	}
	return func() { f.Close() }, nil
}

// startMonitor loads the runtime sensor and starts the monitor. A host
// that cannot run the sensor still runs functions: the node says so
// loudly, and status shows monitoring off.
func startMonitor(ctx context.Context, st *store.Store, ps *profiles.Store, opts Options, log *slog.Logger) (*monitor.Monitor, func(), error) {
	var (
		src    monitor.Source
		srcErr error
		closer = func() {}
	)
	const poll = 10 * time.Millisecond
	if opts.Sensor.Disabled {
		srcErr = errors.New("disabled by the operator")
		log.Warn("MONITORING OFF: the runtime sensor is disabled; function behaviour is not recorded")
	} else {
		s, err := sensor.Load(sensor.Options{PollInterval: poll, SeccompAllowed: seccomp.Default().Allow, Escapes: rules.EscapeSyscalls(), Logger: log.With("component", "sensor")})
		if err != nil {
			srcErr = err
			log.Error("MONITORING OFF: the runtime sensor cannot run on this host; functions run, but their behaviour is not recorded, judged or alerted on", "err", err)
		} else {
			src, closer = s, func() { _ = s.Close() }
		}
	}
	var lsmErr error
	if src != nil {
		// BPF LSM would be an extra wall where a host allows it; moat's
		// walls (seccomp, Landlock, cgroup hooks) do not depend on it.
		if lsmErr = sensor.ProbeLSM(); lsmErr != nil {
			log.Info("BPF LSM unavailable on this host; enforcement uses seccomp, Landlock and cgroup hooks", "reason", lsmErr)
		} else {
			log.Info("BPF LSM available on this host (not used: moat's walls do not depend on it)")
		}
	}
	mon, err := monitor.New(ctx, monitor.Options{
		Sensor:       src,
		SensorError:  srcErr,
		LSMError:     lsmErr,
		PollInterval: poll,
		JS:           st.JS,
		KV:           st.Monitor,
		TraceSubject: store.SubjectTraces,
		TraceStream:  store.StreamTraces,
		AlertSubject: store.SubjectAlerts,
		AlertStream:  store.StreamAlerts,
		Profiles:     ps,
		Logger:       log.With("component", "monitor"),
	})
	if err != nil {
		closer()
		return nil, nil, fmt.Errorf("monitor: %w", err)
	}
	return mon, closer, nil
}

// monitorHooks gives the dispatcher the monitor only when it is on, so
// that an idle monitor costs invocations nothing.
func monitorHooks(mon *monitor.Monitor) invoke.Monitor {
	if !mon.Enabled() {
		return nil
	}
	return mon
}
