// Package profiles is the node's profile service: the behaviour profiles
// of the function versions that run here, cached in memory, learned from
// the monitor's events (Judge, Invoked), saved to the KV bucket every
// second and on Close, kept in step with changes other nodes make (a KV
// watch), read, edited and approved through the API, and the approved
// profile's allowances for enforce mode (Enforcement). The profile
// documents themselves (learning, checks, drift, YAML) are package
// profile's.
package profiles

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"moat.dev/moat/internal/detect"
	"moat.dev/moat/internal/profile"
	"moat.dev/moat/internal/store"
)

// ErrNoProfile is returned when a function version has no profile yet
// (it has not run on a monitored node).
var ErrNoProfile = errors.New("no profile for this function version")

// ErrProfileMismatch is returned by Put for a document that names
// another function or version than the one it is stored under.
var ErrProfileMismatch = errors.New("profile names another function or version")

// Options configure a Store.
type Options struct {
	// KV holds the profiles (store.BucketMonitor), under profile.>.
	KV jetstream.KeyValue
	// Learning is the learning window of new profiles (default 100
	// invocations or 7 days).
	Learning profile.Window
	// SaveInterval is how often changed profiles are stored (default 1 s).
	SaveInterval time.Duration
	Logger       *slog.Logger
}

// Store caches the profiles of the function versions that run on this
// node and keeps them in the KV bucket. Its methods are safe for
// concurrent use. Locking: mu guards cache; each entry's mu guards the
// entry. An entry's lock is never held while taking mu.
type Store struct {
	kv   jetstream.KeyValue
	opts Options
	log  *slog.Logger
	errs atomic.Uint64

	mu    sync.Mutex
	cache map[string]*profileEntry

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New starts a Store: its saver and its watch of the bucket.
func New(opts Options) (*Store, error) {
	if opts.KV == nil {
		return nil, errors.New("profiles: a KV bucket is required")
	}
	if opts.Learning.Invocations <= 0 && opts.Learning.Duration <= 0 {
		opts.Learning = profile.Window{Invocations: 100, Duration: 7 * 24 * time.Hour}
	}
	if opts.SaveInterval <= 0 {
		opts.SaveInterval = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Store{kv: opts.KV, opts: opts, log: opts.Logger, cache: map[string]*profileEntry{}, ctx: ctx, cancel: cancel}
	s.wg.Add(2)
	go func() { defer s.wg.Done(); s.watch() }()
	go func() { defer s.wg.Done(); s.saver() }()
	return s, nil
}

// Close stores what changed, at most until ctx ends, and stops the Store.
func (s *Store) Close(ctx context.Context) {
	s.flushAll(ctx)
	s.cancel()
	s.wg.Wait()
}

// Errors counts profile loads and stores that failed.
func (s *Store) Errors() uint64 { return s.errs.Load() }

// Prepare loads (or starts) a function version's profile ahead of its
// events, off the event path.
func (s *Store) Prepare(ctx context.Context, function, version string) error {
	if _, err := s.entry(ctx, function, version); err != nil {
		s.errs.Add(1)
		return err
	}
	return nil
}

type profileEntry struct {
	mu       sync.Mutex
	function string
	version  string
	p        *profile.Profile
	rev      uint64 // KV revision p was read from or written as; 0: not stored
	dirty    bool
	reported map[string]bool // deviation and drift keys already alerted, per request
}

// profileKey is the KV key of a function version's profile. "$LATEST"
// is not a valid key character; it is stored as LATEST.
func profileKey(function, version string) string {
	if version == "$LATEST" {
		version = "LATEST"
	}
	return "profile." + function + "." + version
}

// entry returns the cached entry of a function version, loading it from
// the KV bucket or creating it (inheriting from the latest earlier
// version) on first use.
func (s *Store) entry(ctx context.Context, function, version string) (*profileEntry, error) {
	key := profileKey(function, version)
	s.mu.Lock()
	e := s.cache[key]
	if e == nil {
		e = &profileEntry{function: function, version: version, reported: map[string]bool{}}
		s.cache[key] = e
	}
	s.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.p != nil {
		return e, nil
	}
	p, rev, err := s.load(ctx, function, version)
	switch {
	case err == nil:
		e.p, e.rev = p, rev
	case errors.Is(err, ErrNoProfile):
		now := time.Now()
		if base := s.base(ctx, function, version); base != nil {
			e.p = profile.Inherit(base, version, s.opts.Learning, now)
		} else {
			e.p = profile.New(function, version, s.opts.Learning, now)
		}
		e.dirty = true
	default:
		return nil, err
	}
	return e, nil
}

func (s *Store) load(ctx context.Context, function, version string) (*profile.Profile, uint64, error) {
	kve, err := s.kv.Get(ctx, profileKey(function, version))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, ErrNoProfile
	}
	if err != nil {
		return nil, 0, fmt.Errorf("load profile: %w", err)
	}
	p, err := profile.Parse(kve.Value())
	if err != nil {
		return nil, 0, fmt.Errorf("stored profile of %s:%s: %w", function, version, err)
	}
	return p, kve.Revision(), nil
}

// base finds the profile a new version starts from: the highest earlier
// numbered version's, or none.
func (s *Store) base(ctx context.Context, function, version string) *profile.Profile {
	n, err := strconv.Atoi(version)
	if err != nil || n <= 1 {
		return nil
	}
	for v := n - 1; v >= 1 && v >= n-64; v-- {
		p, _, err := s.load(ctx, function, strconv.Itoa(v))
		if err == nil {
			return p
		}
	}
	return nil
}

// Judge learns from or checks one event against its version's profile,
// and returns the drift or deviation alerts it raises.
func (s *Store) Judge(ev *detect.Event) []detect.Alert {
	if ev.Function == "" {
		return nil
	}
	e, err := s.entry(s.ctx, ev.Function, ev.Version)
	if err != nil {
		s.errs.Add(1)
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.p
	var out []detect.Alert
	if p.State == profile.StateLearning {
		if d, added := p.Observe(ev); added {
			e.dirty = true
			if d, ok := p.Drift(d, added); ok && e.once("drift|"+d.Category+"|"+d.Item) {
				out = append(out, profile.DriftAlert(ev, d, p))
			}
		}
		return out
	}
	if d, ok := p.Check(ev); ok && e.once(ev.RequestID+"|"+d.Category+"|"+d.Item) {
		out = append(out, profile.DeviationAlert(ev, d, p))
	}
	return out
}

// once reports whether key is new, remembering a bounded number of keys.
func (e *profileEntry) once(key string) bool {
	if e.reported[key] {
		return false
	}
	if len(e.reported) >= 4096 {
		clear(e.reported)
	}
	e.reported[key] = true
	return true
}

// Invoked counts an invocation of a version toward its learning window.
func (s *Store) Invoked(function, version string) {
	if function == "" {
		return
	}
	e, err := s.entry(s.ctx, function, version)
	if err != nil {
		s.errs.Add(1)
		return
	}
	e.mu.Lock()
	var ended bool
	if e.p.State == profile.StateLearning {
		ended = e.p.Invoked(time.Now())
		e.dirty = true
	}
	e.mu.Unlock()
	if ended {
		s.log.Info("profile learned", "function", function, "version", version)
		s.flush(s.ctx, e)
	}
}

// flush stores an entry's profile if it changed. A concurrent change in
// the bucket (an edit, another node) wins: the entry is reloaded.
func (s *Store) flush(ctx context.Context, e *profileEntry) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.dirty || e.p == nil {
		return
	}
	e.p.Updated = time.Now().UTC()
	b := e.p.YAML()
	key := profileKey(e.function, e.version)
	var (
		rev uint64
		err error
	)
	if e.rev == 0 {
		rev, err = s.kv.Create(ctx, key, b)
	} else {
		rev, err = s.kv.Update(ctx, key, b, e.rev)
	}
	if err != nil {
		// Someone else wrote it: take theirs.
		if p, r, lerr := s.load(ctx, e.function, e.version); lerr == nil {
			e.p, e.rev, e.dirty = p, r, false
			return
		}
		s.errs.Add(1)
		s.log.Error("store profile", "function", e.function, "version", e.version, "err", err)
		return
	}
	e.rev, e.dirty = rev, false
}

func (s *Store) flushAll(ctx context.Context) {
	s.mu.Lock()
	entries := make([]*profileEntry, 0, len(s.cache))
	for _, e := range s.cache {
		entries = append(entries, e)
	}
	s.mu.Unlock()
	for _, e := range entries {
		s.flush(ctx, e)
	}
}

// saver stores changed profiles every SaveInterval.
func (s *Store) saver() {
	t := time.NewTicker(s.opts.SaveInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.flushAll(s.ctx)
		case <-s.ctx.Done():
			return
		}
	}
}

// Profile returns a function version's profile, as stored once what this
// node learned is saved.
func (s *Store) Profile(ctx context.Context, function, version string) (*profile.Profile, error) {
	s.flushAll(ctx)
	p, _, err := s.load(ctx, function, version)
	return p, err
}

// Put replaces a function version's profile with an edited one. The
// document is validated; it must name the same function and version.
func (s *Store) Put(ctx context.Context, function, version string, doc []byte) (*profile.Profile, error) {
	p, err := profile.Parse(doc)
	if err != nil {
		return nil, err
	}
	if p.Function != function || p.Version != version {
		return nil, fmt.Errorf("%w: the document is for %s:%s, not %s:%s", ErrProfileMismatch, p.Function, p.Version, function, version)
	}
	return s.replace(ctx, p)
}

// Approve approves a function version's profile: learning ends and what
// was learned becomes the approved profile.
func (s *Store) Approve(ctx context.Context, function, version string) (*profile.Profile, error) {
	p, err := s.Profile(ctx, function, version)
	if err != nil {
		return nil, err
	}
	if err := p.Approve(time.Now().UTC()); err != nil {
		return nil, err
	}
	return s.replace(ctx, p)
}

func (s *Store) replace(ctx context.Context, p *profile.Profile) (*profile.Profile, error) {
	p.Updated = time.Now().UTC()
	if err := p.Validate(); err != nil {
		return nil, err
	}
	key := profileKey(p.Function, p.Version)
	rev, err := s.kv.Put(ctx, key, p.YAML())
	if err != nil {
		return nil, fmt.Errorf("store profile: %w", err)
	}
	s.mu.Lock()
	e := s.cache[key]
	s.mu.Unlock()
	if e != nil {
		e.mu.Lock()
		e.p, e.rev, e.dirty = p, rev, false
		clear(e.reported)
		e.mu.Unlock()
	}
	return p, nil
}

// Enforcement returns what the approved profile of a function version
// allows, for enforce mode; ok is false when there is no approved profile.
func (s *Store) Enforcement(ctx context.Context, function, version string) (exec, connect []string, ok bool, err error) {
	p, _, err := s.load(ctx, function, version)
	if errors.Is(err, ErrNoProfile) {
		return nil, nil, false, nil
	}
	if err != nil {
		return nil, nil, false, err
	}
	if p.State != profile.StateApproved {
		return nil, nil, false, nil
	}
	return p.Exec, p.Connect, true, nil
}

// watch keeps the cache in step with profile changes made on other
// nodes (an approve, an edit, another node's learning): a newer revision in
// the bucket replaces the cached profile unless the cache holds unsaved
// learning of its own, which its next save reconciles.
func (s *Store) watch() {
	err := store.WatchUpdates(s.ctx, s.kv, "profile.>", func(kve jetstream.KeyValueEntry) {
		if kve.Operation() != jetstream.KeyValuePut {
			return
		}
		s.mu.Lock()
		e := s.cache[kve.Key()]
		s.mu.Unlock()
		if e == nil {
			return
		}
		p, err := profile.Parse(kve.Value())
		if err != nil {
			s.errs.Add(1)
			return
		}
		e.mu.Lock()
		if kve.Revision() > e.rev && !e.dirty {
			e.p, e.rev = p, kve.Revision()
			clear(e.reported)
		}
		e.mu.Unlock()
	})
	if err != nil {
		s.log.Error("profile changes made on other nodes will not be followed", "err", err)
	}
}
