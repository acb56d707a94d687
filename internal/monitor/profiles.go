package monitor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"moat.dev/moat/internal/detect"
	"moat.dev/moat/internal/profile"
)

// ErrNoProfile is returned when a function version has no profile yet
// (it has not run on a monitored node).
var ErrNoProfile = errors.New("no profile for this function version")

// ErrProfileMismatch is returned by PutProfile for a document that names
// another function or version than the one it is stored under.
var ErrProfileMismatch = errors.New("profile names another function or version")

// profileStore caches the profiles of the function versions that run on
// this node and keeps them in the KV bucket. Locking: mu guards cache;
// each entry's mu guards the entry. An entry's lock is never held while
// taking mu.
type profileStore struct {
	kv  jetstream.KeyValue
	log *slog.Logger

	mu    sync.Mutex
	cache map[string]*profileEntry
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
func (s *profileStore) entry(ctx context.Context, m *Monitor, function, version string) (*profileEntry, error) {
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
			e.p = profile.Inherit(base, version, m.opts.Learning, now)
		} else {
			e.p = profile.New(function, version, m.opts.Learning, now)
		}
		e.dirty = true
	default:
		return nil, err
	}
	return e, nil
}

func (s *profileStore) load(ctx context.Context, function, version string) (*profile.Profile, uint64, error) {
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
func (s *profileStore) base(ctx context.Context, function, version string) *profile.Profile {
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

// judge learns from or checks one event against its version's profile.
func (s *profileStore) judge(m *Monitor, ev *detect.Event) []detect.Alert {
	if ev.Function == "" {
		return nil
	}
	e, err := s.entry(m.ctx, m, ev.Function, ev.Version)
	if err != nil {
		m.profileErrs.Add(1)
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

// invoked counts an invocation of a version toward its learning window.
func (s *profileStore) invoked(m *Monitor, function, version string) {
	if function == "" {
		return
	}
	e, err := s.entry(m.ctx, m, function, version)
	if err != nil {
		m.profileErrs.Add(1)
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
		m.log.Info("profile learned", "function", function, "version", version)
		s.flush(m.ctx, m, e)
	}
}

// flush stores an entry's profile if it changed. A concurrent change in
// the bucket (an edit, another node) wins: the entry is reloaded.
func (s *profileStore) flush(ctx context.Context, m *Monitor, e *profileEntry) {
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
		m.profileErrs.Add(1)
		s.log.Error("store profile", "function", e.function, "version", e.version, "err", err)
		return
	}
	e.rev, e.dirty = rev, false
}

func (s *profileStore) flushAll(ctx context.Context, m *Monitor) {
	s.mu.Lock()
	entries := make([]*profileEntry, 0, len(s.cache))
	for _, e := range s.cache {
		entries = append(entries, e)
	}
	s.mu.Unlock()
	for _, e := range entries {
		s.flush(ctx, m, e)
	}
}

// saver stores changed profiles every interval.
func (m *Monitor) saver(interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			m.profiles.flushAll(m.ctx, m)
		case <-m.ctx.Done():
			return
		}
	}
}

// Profile returns a function version's profile.
func (m *Monitor) Profile(ctx context.Context, function, version string) (*profile.Profile, error) {
	m.profiles.flushAll(ctx, m)
	p, _, err := m.profiles.load(ctx, function, version)
	return p, err
}

// PutProfile replaces a function version's profile with an edited one.
// The document is validated; it must name the same function and version.
func (m *Monitor) PutProfile(ctx context.Context, function, version string, doc []byte) (*profile.Profile, error) {
	p, err := profile.Parse(doc)
	if err != nil {
		return nil, err
	}
	if p.Function != function || p.Version != version {
		return nil, fmt.Errorf("%w: the document is for %s:%s, not %s:%s", ErrProfileMismatch, p.Function, p.Version, function, version)
	}
	return m.replaceProfile(ctx, p)
}

// ApproveProfile approves a function version's profile: learning ends and
// what was learned becomes the approved profile.
func (m *Monitor) ApproveProfile(ctx context.Context, function, version string) (*profile.Profile, error) {
	p, err := m.Profile(ctx, function, version)
	if err != nil {
		return nil, err
	}
	if err := p.Approve(time.Now().UTC()); err != nil {
		return nil, err
	}
	return m.replaceProfile(ctx, p)
}

func (m *Monitor) replaceProfile(ctx context.Context, p *profile.Profile) (*profile.Profile, error) {
	p.Updated = time.Now().UTC()
	if err := p.Validate(); err != nil {
		return nil, err
	}
	s := m.profiles
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

// ListProfiles names the stored profiles of a function ("fn:version"),
// sorted.
func (m *Monitor) ListProfiles(ctx context.Context, function string) ([]string, error) {
	lister, err := m.opts.KV.ListKeysFiltered(ctx, "profile."+function+".*")
	if err != nil {
		return nil, fmt.Errorf("list profiles: %w", err)
	}
	var out []string
	for k := range lister.Keys() {
		v := strings.TrimPrefix(k, "profile."+function+".")
		if v == "LATEST" {
			v = "$LATEST"
		}
		out = append(out, v)
	}
	sort.Strings(out)
	return out, nil
}

// Enforcement returns what the approved profile of a function version
// allows, for enforce mode; ok is false when there is no approved profile.
func (m *Monitor) Enforcement(ctx context.Context, function, version string) (exec, connect []string, ok bool, err error) {
	p, _, err := m.profiles.load(ctx, function, version)
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

// watchProfiles keeps the cache in step with profile changes made on other
// nodes (an approve, an edit, another node's learning): a newer revision in
// the bucket replaces the cached profile unless the cache holds unsaved
// learning of its own, which its next save reconciles.
func (m *Monitor) watchProfiles() {
	w, err := m.opts.KV.Watch(m.ctx, "profile.>", jetstream.UpdatesOnly())
	if err != nil {
		m.log.Error("watch profiles", "err", err)
		return
	}
	defer w.Stop()
	s := m.profiles
	for {
		select {
		case kve, ok := <-w.Updates():
			if !ok {
				return
			}
			if kve == nil || kve.Operation() != jetstream.KeyValuePut {
				continue
			}
			s.mu.Lock()
			e := s.cache[kve.Key()]
			s.mu.Unlock()
			if e == nil {
				continue
			}
			p, err := profile.Parse(kve.Value())
			if err != nil {
				m.profileErrs.Add(1)
				continue
			}
			e.mu.Lock()
			if kve.Revision() > e.rev && !e.dirty {
				e.p, e.rev = p, kve.Revision()
				clear(e.reported)
			}
			e.mu.Unlock()
		case <-m.ctx.Done():
			return
		}
	}
}
