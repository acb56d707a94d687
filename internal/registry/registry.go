// Package registry owns functions, their versions, aliases and settings: the
// records, their validation, persistence in the JetStream KV bucket and an
// in-memory cache kept current by watching that bucket. It never runs code
// and never logs environment variable values.
//
// # Records
//
// Each function is one KV record, fn.<name>, holding $LATEST, the list of
// published versions, the aliases, reserved concurrency and event invoke
// configurations. Keeping these in one record lets every change be a single
// compare-and-swap on the record's revision: an alias can never point to a
// version being deleted, and deleting a function removes its aliases and
// settings at once. A concurrent change of one function loses with
// ErrConflict rather than overwriting the other.
//
// The configuration of published version n is an immutable record,
// ver.<name>.<n>, stamped with the incarnation of the function that
// published it. Publishing first reserves n in fn.<name>, then writes
// ver.<name>.<n>, then lists n in fn.<name>; so a version is listed only
// once its configuration is stored, and the KV watch (which delivers in
// write order) never shows a listed version without its configuration.
// Leftovers of a deleted function carry an old incarnation and are ignored.
//
// Code packages live in the object store under the hex sha256 of the zip.
//
// # Cache
//
// Resolve and the read methods are served from memory. Every record is
// cached with its KV revision; an update is applied only if its revision is
// newer, whether it comes from this node's own write (applied before the
// write returns) or from the watch (which also carries other nodes' writes).
// One RWMutex guards the cache; no KV call is made while holding it.
package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"moat.dev/moat/internal/codepkg"
	"moat.dev/moat/internal/secrets"
)

// Options configure Open.
type Options struct {
	KV        jetstream.KeyValue    // store.Functions
	Code      jetstream.ObjectStore // store.Code
	Keys      *secrets.Keyring      // seals environment variables
	Region    string                // default us-east-1
	AccountID string                // default 000000000000
	Logger    *slog.Logger
	// ConcurrencyLimit is the concurrency reservations are carved from
	// (the node's limit; default 1000).
	ConcurrencyLimit int
	// UnreservedMin is what reservations must leave unreserved; default a
	// tenth of ConcurrencyLimit (AWS: 100 of 1000), negative for none.
	UnreservedMin int
	// CodeLimits bound code packages; the zero value means AWS's limits.
	CodeLimits codepkg.Limits
}

// Registry is the live function registry. It is safe for concurrent use.
type Registry struct {
	kv      jetstream.KeyValue
	code    jetstream.ObjectStore
	keys    *secrets.Keyring
	region  string
	account string
	arnPfx  string // "arn:aws:lambda:<region>:<account>:function:"
	log     *slog.Logger
	limit   int
	minFree int
	codeLim codepkg.Limits

	stopWatch context.CancelFunc
	watcher   jetstream.KeyWatcher
	done      chan struct{}

	mu      sync.RWMutex
	changed *sync.Cond // on mu; broadcast after every cache change
	fns     map[string]*fnEntry
	urls    map[string]URLTarget // function URL id → what it invokes
	vers    map[verKey]*verEntry
	names   []string // sorted names of live functions
}

// Log keys.
const (
	logKeyFunction = "function"
	logKeyKey      = "key"
	logKeyErr      = "err"
)

// KV key prefixes.
const (
	fnPrefix  = "fn."
	verPrefix = "ver."
)

func fnKey(name string) string               { return fnPrefix + name }
func verKeyString(name string, n int) string { return verPrefix + name + "." + strconv.Itoa(n) }

// fnRecord is the stored record of a function.
type fnRecord struct {
	Incarnation   string                        `json:"Incarnation"`
	Latest        Config                        `json:"Latest"`
	NextVersion   int                           `json:"NextVersion"`
	Versions      []int                         `json:"Versions,omitempty"` // ascending
	LastPublished *publishMark                  `json:"LastPublished,omitempty"`
	Aliases       map[string]*Alias             `json:"Aliases,omitempty"`
	Reserved      *int                          `json:"Reserved,omitempty"`
	EventInvoke   map[string]*EventInvokeConfig `json:"EventInvoke,omitempty"` // by qualifier
	URLs          map[string]*URLConfig         `json:"URLs,omitempty"`        // function URLs by qualifier
	Tags          map[string]string             `json:"Tags,omitempty"`
}

// publishMark remembers the last version reserved by PublishVersion and
// what of $LATEST it snapshots, so an unchanged $LATEST is not published
// twice.
type publishMark struct {
	Version          int       `json:"Version"`
	LatestRevisionID string    `json:"LatestRevisionId"`
	Fingerprint      string    `json:"Fingerprint"` // see fingerprint
	At               time.Time `json:"At"`
}

// verRecord is the stored record of a published version.
type verRecord struct {
	Incarnation string `json:"Incarnation"`
	Config      Config `json:"Config"`
}

func (rec *fnRecord) hasVersion(n int) bool {
	_, ok := slices.BinarySearch(rec.Versions, n)
	return ok
}

// fnEntry is the cached state of fn.<name> at revision rev; rec is nil once
// the function is deleted (a tombstone that keeps older updates out).
type fnEntry struct {
	rev    uint64
	rec    *fnRecord
	arn    string
	routes map[string]route
}

// route is an alias's routing, parsed for the hot path.
type route struct {
	primary string // "$LATEST" or a version number
	extra   string // additional version, "" when none
	weight  float64
}

type verKey struct {
	name string
	n    int
}

type verEntry struct {
	rev uint64
	rec *verRecord // nil once deleted
}

// Open loads every record from the KV bucket, then keeps the cache current
// by watching it until Close.
func Open(ctx context.Context, opts Options) (*Registry, error) {
	if opts.KV == nil || opts.Code == nil || opts.Keys == nil {
		return nil, errors.New("open registry: KV, Code and Keys are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	if opts.AccountID == "" {
		opts.AccountID = "000000000000"
	}
	if opts.ConcurrencyLimit <= 0 {
		opts.ConcurrencyLimit = 1000
	}
	switch {
	case opts.UnreservedMin == 0:
		opts.UnreservedMin = opts.ConcurrencyLimit / 10
	case opts.UnreservedMin < 0:
		opts.UnreservedMin = 0
	}
	opts.UnreservedMin = min(opts.UnreservedMin, opts.ConcurrencyLimit)
	r := &Registry{
		kv:      opts.KV,
		code:    opts.Code,
		keys:    opts.Keys,
		region:  opts.Region,
		account: opts.AccountID,
		arnPfx:  "arn:aws:lambda:" + opts.Region + ":" + opts.AccountID + ":function:",
		log:     opts.Logger,
		limit:   opts.ConcurrencyLimit,
		minFree: opts.UnreservedMin,
		codeLim: opts.CodeLimits,
		fns:     make(map[string]*fnEntry),
		vers:    make(map[verKey]*verEntry),
		done:    make(chan struct{}),
	}
	r.changed = sync.NewCond(&r.mu)
	wctx, cancel := context.WithCancel(context.Background())
	w, err := r.kv.WatchAll(wctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("open registry: watch: %w", err)
	}
	r.stopWatch, r.watcher = cancel, w
	// Initial values, up to the nil marker.
	for loaded := false; !loaded; {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				cancel()
				return nil, errors.New("open registry: watch closed while loading")
			}
			if e == nil {
				loaded = true
				break
			}
			r.applyEntry(e)
		case <-ctx.Done():
			_ = w.Stop()
			cancel()
			return nil, fmt.Errorf("open registry: load: %w", ctx.Err())
		}
	}
	go r.watch()
	return r, nil
}

func (r *Registry) watch() {
	defer close(r.done)
	for e := range r.watcher.Updates() {
		if e != nil {
			r.applyEntry(e)
		}
	}
}

// Close stops watching the bucket. The cache stays readable.
func (r *Registry) Close() {
	_ = r.watcher.Stop()
	r.stopWatch()
	<-r.done
}

// applyEntry applies one watched KV entry to the cache.
func (r *Registry) applyEntry(e jetstream.KeyValueEntry) {
	key := e.Key()
	deleted := e.Operation() != jetstream.KeyValuePut
	switch {
	case strings.HasPrefix(key, fnPrefix):
		name := key[len(fnPrefix):]
		if deleted {
			r.applyFn(name, e.Revision(), nil)
			return
		}
		rec := new(fnRecord)
		if err := json.Unmarshal(e.Value(), rec); err != nil {
			r.log.Error("undecodable function record", logKeyKey, key, logKeyErr, err)
			return
		}
		r.applyFn(name, e.Revision(), rec)
	case strings.HasPrefix(key, verPrefix):
		rest := key[len(verPrefix):]
		i := strings.LastIndexByte(rest, '.')
		n, err := strconv.Atoi(rest[i+1:])
		if i <= 0 || err != nil {
			return
		}
		k := verKey{rest[:i], n}
		if deleted {
			r.applyVer(k, e.Revision(), nil)
			return
		}
		rec := new(verRecord)
		if err := json.Unmarshal(e.Value(), rec); err != nil {
			r.log.Error("undecodable version record", logKeyKey, key, logKeyErr, err)
			return
		}
		r.applyVer(k, e.Revision(), rec)
	}
}

// applyFn installs rec (nil: deleted) as the state of function name at rev,
// unless the cache already holds that revision or a newer one.
func (r *Registry) applyFn(name string, rev uint64, rec *fnRecord) {
	var ne *fnEntry
	if rec != nil {
		ne = &fnEntry{rev: rev, rec: rec, arn: r.arnPfx + name}
		if len(rec.Aliases) > 0 {
			ne.routes = make(map[string]route, len(rec.Aliases))
			for an, a := range rec.Aliases {
				rt := route{primary: a.FunctionVersion}
				for v, w := range a.AdditionalVersionWeights {
					rt.extra, rt.weight = v, w
				}
				ne.routes[an] = rt
			}
		}
	} else {
		ne = &fnEntry{rev: rev}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	defer r.changed.Broadcast()
	old := r.fns[name]
	if old != nil && old.rev >= rev {
		return
	}
	var oldRec *fnRecord
	if old != nil {
		oldRec = old.rec
	}
	r.indexURLs(name, oldRec, rec)
	r.fns[name] = ne
	wasLive, isLive := old != nil && old.rec != nil, rec != nil
	switch {
	case isLive && !wasLive:
		i, _ := slices.BinarySearch(r.names, name)
		r.names = slices.Insert(r.names, i, name)
	case wasLive && !isLive:
		if i, ok := slices.BinarySearch(r.names, name); ok {
			r.names = slices.Delete(r.names, i, i+1)
		}
	}
}

func (r *Registry) applyVer(k verKey, rev uint64, rec *verRecord) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if old := r.vers[k]; old != nil && old.rev >= rev {
		return
	}
	r.vers[k] = &verEntry{rev: rev, rec: rec}
	r.changed.Broadcast()
}

// FunctionARN returns the unqualified ARN of function name.
func (r *Registry) FunctionARN(name string) string { return r.arnPfx + name }

// QualifiedARN returns the ARN of a version or alias of function name, or
// the unqualified ARN when qualifier is empty.
func (r *Registry) QualifiedARN(name, qualifier string) string {
	if qualifier == "" {
		return r.arnPfx + name
	}
	return r.arnPfx + name + ":" + qualifier
}

// Resolve finds what an invocation of name (a function name, partial ARN or
// ARN, possibly qualified) with qualifier runs. An empty qualifier or
// "$LATEST" is $LATEST, digits a published version, anything else an alias;
// an alias with an additional version picks it with its weight. It reads
// only memory. Errors match ErrNotFound or ErrInvalid.
func (r *Registry) Resolve(name, qualifier string) (*Target, error) {
	fn, q, err := r.parseQualified(name, qualifier)
	if err != nil {
		return nil, err
	}
	t, missing, err := r.resolveCached(fn, q)
	if missing == 0 {
		return t, err
	}
	// The function lists a version whose configuration the watch has not
	// delivered yet (another node published it just now): fetch it once.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.refreshVersion(ctx, fn, missing); err != nil {
		return nil, err
	}
	t, missing, err = r.resolveCached(fn, q)
	if missing != 0 {
		return nil, notFound("Function not found: %s", r.QualifiedARN(fn, q))
	}
	return t, err
}

// resolveCached resolves from the cache. When a listed version's
// configuration is not cached it returns that version number as missing.
func (r *Registry) resolveCached(fn, q string) (t *Target, missing int, err error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e := r.fns[fn]
	if e == nil || e.rec == nil {
		return nil, 0, notFound("Function not found: %s", r.QualifiedARN(fn, q))
	}
	t = &Target{Reserved: -1, Qualifier: q, InvokedARN: e.arn}
	if e.rec.Reserved != nil {
		t.Reserved = *e.rec.Reserved
	}
	if q == "" {
		t.Qualifier = Latest
	} else {
		t.InvokedARN = e.arn + ":" + q
	}
	version := t.Qualifier
	if rt, ok := e.routes[q]; ok {
		version = rt.primary
		if rt.extra != "" && mrand.Float64() < rt.weight {
			version = rt.extra
		}
	} else if q != "" && q != Latest && !isVersion(q) {
		return nil, 0, notFound("Function not found: %s", t.InvokedARN)
	}
	if version == Latest {
		t.Config = &e.rec.Latest
	} else {
		n, _ := strconv.Atoi(version)
		if !e.rec.hasVersion(n) {
			return nil, 0, notFound("Function not found: %s", r.QualifiedARN(fn, version))
		}
		cfg := r.versionLocked(fn, n, e.rec.Incarnation)
		if cfg == nil {
			return nil, n, nil
		}
		t.Config = cfg
	}
	t.Async = e.rec.EventInvoke[t.Qualifier].Async()
	return t, 0, nil
}

// versionLocked returns the cached configuration of version n of the
// current incarnation of fn, or nil. r.mu must be held.
func (r *Registry) versionLocked(fn string, n int, incarnation string) *Config {
	ve := r.vers[verKey{fn, n}]
	if ve == nil || ve.rec == nil || ve.rec.Incarnation != incarnation {
		return nil
	}
	return &ve.rec.Config
}

// refreshVersion reads ver.<fn>.<n> from the KV bucket into the cache.
func (r *Registry) refreshVersion(ctx context.Context, fn string, n int) error {
	e, err := r.kv.Get(ctx, verKeyString(fn, n))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return notFound("Function not found: %s", r.QualifiedARN(fn, strconv.Itoa(n)))
	}
	if err != nil {
		return fmt.Errorf("read version %s:%d: %w", fn, n, err)
	}
	rec := new(verRecord)
	if err := json.Unmarshal(e.Value(), rec); err != nil {
		return fmt.Errorf("read version %s:%d: %w", fn, n, err)
	}
	r.applyVer(verKey{fn, n}, e.Revision(), rec)
	return nil
}

// envAAD binds a function's sealed environment to its name.
func envAAD(fn string) []byte { return []byte("moat/function-env/" + fn) }

// Environment decrypts c's environment variables. It returns an empty map
// when c has none.
func (r *Registry) Environment(c *Config) (map[string]string, error) {
	env := map[string]string{}
	if c == nil || c.Env == nil {
		return env, nil
	}
	b, err := r.keys.Open(c.Env, envAAD(c.FunctionName))
	if err != nil {
		return nil, fmt.Errorf("environment of %s: %w", c.FunctionName, err)
	}
	defer clear(b)
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, fmt.Errorf("environment of %s: %w", c.FunctionName, err)
	}
	return env, nil
}

// EnvironmentJSON decrypts c's environment variables as the JSON object
// they were sealed as ("{}" when c has none), for callers that only pass
// them on. The caller should clear the returned slice when done.
func (r *Registry) EnvironmentJSON(c *Config) ([]byte, error) {
	if c == nil || c.Env == nil {
		return []byte("{}"), nil
	}
	b, err := r.keys.Open(c.Env, envAAD(c.FunctionName))
	if err != nil {
		return nil, fmt.Errorf("environment of %s: %w", c.FunctionName, err)
	}
	return b, nil
}

func (r *Registry) sealEnv(fn string, env map[string]string) (*Sealed, error) {
	if len(env) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("seal environment: %w", err)
	}
	defer clear(b)
	s, err := r.keys.Seal(b, envAAD(fn))
	if err != nil {
		return nil, fmt.Errorf("seal environment: %w", err)
	}
	return s, nil
}

// CodeZip returns the code package with the given hex sha256 from the
// object store. It returns an error matching ErrNotFound if there is none.
//
// The zip is read into one buffer of its stored size (GetBytes would grow a
// buffer by doubling: about three times the zip in garbage per cold start).
// The object store checks the stored digest when the read reaches the end.
func (r *Registry) CodeZip(ctx context.Context, sha256hex string) ([]byte, error) {
	res, err := r.code.Get(ctx, sha256hex)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, notFound("Code package not found: %s", sha256hex)
	}
	if err != nil {
		return nil, fmt.Errorf("read code %s: %w", sha256hex, err)
	}
	defer res.Close()
	info, err := res.Info()
	if err != nil {
		return nil, fmt.Errorf("read code %s: %w", sha256hex, err)
	}
	// The stored size only sizes the buffer: it is bounded, and a package
	// longer than recorded still reads to its end.
	maxZip := r.codeLim.MaxZipBytes
	if maxZip <= 0 {
		maxZip = codepkg.DefaultMaxZipBytes
	}
	size := int(min(info.Size, uint64(maxZip)))
	buf := bytes.NewBuffer(make([]byte, 0, size+bytes.MinRead))
	if _, err := buf.ReadFrom(res); err != nil {
		return nil, fmt.Errorf("read code %s: %w", sha256hex, err)
	}
	return buf.Bytes(), nil
}

// newRevisionID returns a random UUID (version 4) string.
func newRevisionID() string { return uuid.NewString() }

func now() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }
