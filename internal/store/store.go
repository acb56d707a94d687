// Package store owns moat's single storage engine: NATS JetStream, embedded in
// process by default or reached over the network when moat joins a cluster.
//
// It creates the buckets and streams the other packages use and hands out
// typed handles to them. It never interprets the records it stores: the
// registry, invoke and logs packages own their schemas.
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Names of the buckets and streams moat keeps. They are part of the on-disk
// format: renaming one loses data.
const (
	BucketFunctions = "moat_functions" // KV: function, version, alias records
	BucketCode      = "moat_code"      // object store: code packages by sha256
	StreamAsync     = "MOAT_ASYNC"     // work queue of accepted Event invocations
	StreamLogs      = "MOAT_LOGS"      // invocation logs
	StreamDest      = "MOAT_DESTINATIONS"
	StreamTraces    = "MOAT_TRACES"    // per-invocation forensic records
	StreamAlerts    = "MOAT_ALERTS"    // detection alerts
	BucketMonitor   = "moat_monitor"   // KV: behaviour profiles and the user rules file
	BucketSchedules = "moat_schedules" // KV: schedule definitions and their cursors

	SubjectAsync  = "moat.async"        // moat.async.<function>
	SubjectLogs   = "moat.logs"         // moat.logs.<function>
	SubjectDest   = "moat.destinations" // moat.destinations.<name>
	SubjectTraces = "moat.traces"       // moat.traces.<function>.<request id>
	SubjectAlerts = "moat.alerts"       // moat.alerts.<function>
)

// Options configure Open.
type Options struct {
	// DataDir holds the embedded server's JetStream files. Required unless URL is set.
	DataDir string
	// URL, when set, connects to an external NATS cluster instead of
	// embedding a server.
	URL string
	// LogRetention bounds how long invocation logs are kept (default 7 days).
	LogRetention time.Duration
	// LogMaxBytes bounds the log stream's size (default 1 GiB).
	LogMaxBytes int64
	// TraceRetention bounds how long forensic records and alerts are kept
	// (default 30 days); TraceMaxBytes bounds the trace stream's size
	// (default 4 GiB; the oldest records go first).
	TraceRetention time.Duration
	TraceMaxBytes  int64
	// Replicas for streams and buckets when clustered (default 1).
	Replicas int
	// IdleCollect is how long the process must go without a garbage
	// collection before the store runs one, so that memory freed after a
	// burst of work returns to the OS (see idleCollector; default 5s,
	// negative: never).
	IdleCollect time.Duration
	Logger      *slog.Logger
}

// Store is an open connection to JetStream with moat's buckets and streams.
type Store struct {
	srv  *server.Server // nil when external
	Conn *nats.Conn
	JS   jetstream.JetStream

	Functions jetstream.KeyValue
	Code      jetstream.ObjectStore
	Async     jetstream.Stream
	Logs      jetstream.Stream
	Dest      jetstream.Stream
	Traces    jetstream.Stream
	Alerts    jetstream.Stream
	Monitor   jetstream.KeyValue
	Schedules jetstream.KeyValue

	stopIdle func() // stops the idleCollector and waits for it; nil if not started
}

// Open starts (or connects to) JetStream and ensures every bucket and stream
// exists with moat's configuration.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.LogRetention == 0 {
		opts.LogRetention = 7 * 24 * time.Hour
	}
	if opts.LogMaxBytes == 0 {
		opts.LogMaxBytes = 1 << 30
	}
	if opts.TraceRetention == 0 {
		opts.TraceRetention = 30 * 24 * time.Hour
	}
	if opts.TraceMaxBytes == 0 {
		opts.TraceMaxBytes = 4 << 30
	}
	if opts.Replicas == 0 {
		opts.Replicas = 1
	}
	s := &Store{}
	var err error
	if opts.URL == "" {
		if opts.DataDir == "" {
			return nil, errors.New("open store: data dir is required")
		}
		dir := filepath.Join(opts.DataDir, "jetstream")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		s.srv, err = server.NewServer(&server.Options{
			ServerName:         "moat",
			JetStream:          true,
			StoreDir:           dir,
			DontListen:         true, // reachable only in process: no port to protect
			NoSigs:             true,
			NoLog:              true,
			JetStreamMaxMemory: 64 << 20,
			SyncInterval:       0,
		})
		if err != nil {
			return nil, fmt.Errorf("open store: new server: %w", err)
		}
		s.srv.Start()
		if !s.srv.ReadyForConnections(30 * time.Second) {
			s.srv.Shutdown()
			return nil, errors.New("open store: embedded server not ready after 30s")
		}
		s.Conn, err = nats.Connect("", nats.InProcessServer(s.srv), nats.Name("moat"))
	} else {
		s.Conn, err = nats.Connect(opts.URL, nats.Name("moat"), nats.MaxReconnects(-1))
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("open store: connect: %w", err)
	}
	if s.JS, err = jetstream.New(s.Conn); err != nil {
		s.Close()
		return nil, fmt.Errorf("open store: jetstream: %w", err)
	}
	if err := s.ensure(ctx, opts); err != nil {
		s.Close()
		return nil, err
	}
	if opts.IdleCollect == 0 {
		opts.IdleCollect = defaultIdleCollect
	}
	if opts.IdleCollect > 0 {
		ictx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		c := newIdleCollector()
		go func() {
			defer close(done)
			c.run(ictx, opts.IdleCollect)
		}()
		s.stopIdle = func() { cancel(); <-done }
	}
	return s, nil
}

// A streamSpec is one of the node's streams: where its handle goes and how
// it differs from the defaults every stream shares (file storage, the
// node's replica count, limits retention, discarding the oldest messages,
// subjects <prefix>.>).
type streamSpec struct {
	dst *jetstream.Stream
	cfg jetstream.StreamConfig
}

func (s *Store) streams(opts Options) []streamSpec {
	return []streamSpec{
		{&s.Async, jetstream.StreamConfig{
			Name:        StreamAsync,
			Description: "accepted asynchronous invocations, removed once handled for good",
			Retention:   jetstream.WorkQueuePolicy,
			MaxAge:      7 * 24 * time.Hour,
			Discard:     jetstream.DiscardNew, // refuse new events rather than drop accepted ones
		}},
		{&s.Logs, jetstream.StreamConfig{
			Name:        StreamLogs,
			Description: "function invocation logs",
			MaxAge:      opts.LogRetention,
			MaxBytes:    opts.LogMaxBytes,
		}},
		{&s.Dest, jetstream.StreamConfig{
			Name:        StreamDest,
			Description: "records sent to stream destinations of asynchronous invocations",
			MaxAge:      14 * 24 * time.Hour,
		}},
		{&s.Traces, jetstream.StreamConfig{
			Name:        StreamTraces,
			Description: "per-invocation forensic records of what functions executed, opened and connected to",
			MaxAge:      opts.TraceRetention,
			MaxBytes:    opts.TraceMaxBytes,
			AllowDirect: true,
		}},
		{&s.Alerts, jetstream.StreamConfig{
			Name:        StreamAlerts,
			Description: "detection alerts",
			MaxAge:      opts.TraceRetention,
			MaxBytes:    1 << 30,
		}},
	}
}

// streamSubjects is the subject space of each stream: its prefix and
// everything below it.
var streamSubjects = map[string]string{
	StreamAsync:  SubjectAsync,
	StreamLogs:   SubjectLogs,
	StreamDest:   SubjectDest,
	StreamTraces: SubjectTraces,
	StreamAlerts: SubjectAlerts,
}

func (s *Store) ensure(ctx context.Context, opts Options) error {
	var err error
	s.Functions, err = s.JS.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      BucketFunctions,
		Description: "moat functions, versions and aliases",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    opts.Replicas,
	})
	if err != nil {
		return fmt.Errorf("ensure bucket %s: %w", BucketFunctions, err)
	}
	s.Monitor, err = s.JS.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:       BucketMonitor,
		Description:  "moat behaviour profiles and user detection rules",
		History:      5,
		Storage:      jetstream.FileStorage,
		Replicas:     opts.Replicas,
		MaxValueSize: 4 << 20,
	})
	if err != nil {
		return fmt.Errorf("ensure bucket %s: %w", BucketMonitor, err)
	}
	s.Schedules, err = s.JS.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      BucketSchedules,
		Description: "moat schedules and the last tick each handled",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    opts.Replicas,
	})
	if err != nil {
		return fmt.Errorf("ensure bucket %s: %w", BucketSchedules, err)
	}
	s.Code, err = s.JS.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      BucketCode,
		Description: "moat code packages, content-addressed by sha256",
		Storage:     jetstream.FileStorage,
		Replicas:    opts.Replicas,
		// No S2 on top of zips: their entries are deflated already, so it
		// saves a few percent of disk, and it costs, for every sealed
		// 8 MiB block, reading it back, compressing it into a growing
		// buffer and rewriting it (about five times the zip's size in
		// garbage per upload), then a whole-block decompression on every
		// cold read. Blocks written compressed before stay readable.
		Compression: false,
	})
	if err != nil {
		return fmt.Errorf("ensure object store %s: %w", BucketCode, err)
	}
	for _, st := range s.streams(opts) {
		cfg := st.cfg
		cfg.Subjects = []string{streamSubjects[cfg.Name] + ".>"}
		cfg.Storage = jetstream.FileStorage
		cfg.Replicas = opts.Replicas
		if *st.dst, err = s.JS.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("ensure stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}

// Close drains the connection and stops the embedded server, if any.
func (s *Store) Close() {
	if s.stopIdle != nil {
		s.stopIdle()
	}
	if s.Conn != nil {
		s.Conn.Close()
	}
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
	}
}
