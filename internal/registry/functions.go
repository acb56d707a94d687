package registry

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"moat.dev/moat/internal/codepkg"
)

// Read-modify-write of one function record.

// load reads the current record of function name from the KV bucket (not
// the cache), with its revision for the compare-and-swap in save.
func (r *Registry) load(ctx context.Context, name string) (*fnRecord, uint64, error) {
	e, err := r.kv.Get(ctx, fnKey(name))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, notFound("Function not found: %s", r.FunctionARN(name))
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read function %s: %w", name, err)
	}
	rec := new(fnRecord)
	if err := json.Unmarshal(e.Value(), rec); err != nil {
		return nil, 0, fmt.Errorf("read function %s: %w", name, err)
	}
	return rec, e.Revision(), nil
}

// save writes rec if the stored record is still at revision rev, and
// installs it in the cache. rec is shared with the cache afterwards and
// must not be modified.
func (r *Registry) save(ctx context.Context, name string, rec *fnRecord, rev uint64) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("write function %s: %w", name, err)
	}
	nrev, err := r.kv.Update(ctx, fnKey(name), b, rev)
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return r.conflict(name)
	}
	if err != nil {
		return fmt.Errorf("write function %s: %w", name, err)
	}
	r.applyFn(name, nrev, rec)
	return nil
}

func (r *Registry) conflict(name string) error {
	return newError(ErrConflict, "The operation cannot be performed at this time. An update is in progress for resource: %s", r.FunctionARN(name))
}

func revisionMismatch() error {
	return newError(ErrPreconditionFailed, "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id")
}

// inspectCode validates a zip and stores it in the object store (once per
// content).
func (r *Registry) inspectCode(zip []byte) (codepkg.Info, error) {
	maxZip := r.codeLim.MaxZipBytes
	if maxZip <= 0 {
		maxZip = codepkg.DefaultMaxZipBytes
	}
	if len(zip) == 0 {
		return codepkg.Info{}, newError(ErrInvalidZip, "Could not unzip uploaded file. Please check your file, then try to upload again: the zip file is empty.")
	}
	if int64(len(zip)) > maxZip {
		return codepkg.Info{}, newError(ErrCodeTooLarge, "Zipped file size (%d bytes) exceeds the limit of %d bytes for a direct upload.", len(zip), maxZip)
	}
	// Every runtime moat runs is a custom runtime, started by ./bootstrap.
	info, err := codepkg.Inspect(zip, r.codeLim, true)
	switch {
	case errors.Is(err, codepkg.ErrTooLarge):
		return info, invalid("%s", err.Error())
	case errors.Is(err, codepkg.ErrInvalid):
		return info, newError(ErrInvalidZip, "Could not unzip uploaded file. Please check your file, then try to upload again. (%s)", err.Error())
	case err != nil:
		return info, fmt.Errorf("inspect code: %w", err)
	}
	return info, nil
}

func (r *Registry) storeCode(ctx context.Context, info codepkg.Info, zip []byte) error {
	_, err := r.code.GetInfo(ctx, info.SHA256Hex)
	if err == nil {
		return nil // content-addressed: already stored
	}
	if !errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("store code %s: %w", info.SHA256Hex, err)
	}
	if _, err := r.code.PutBytes(ctx, info.SHA256Hex, zip); err != nil {
		return fmt.Errorf("store code %s: %w", info.SHA256Hex, err)
	}
	return nil
}

// CreateFunction validates and stores a new function and, with in.Publish,
// publishes version 1. It returns the configuration of $LATEST (or of the
// new version). Errors match ErrInvalid, ErrValidation, ErrInvalidZip,
// ErrCodeTooLarge or ErrExists.
func (r *Registry) CreateFunction(ctx context.Context, in CreateInput) (*Config, error) {
	name, err := r.parseUnqualified(in.FunctionName)
	if err != nil {
		return nil, err
	}
	var v validation
	var handler *string
	if in.Handler != "" {
		handler = &in.Handler
	}
	checkSettings(&v, handler, &in.Role, &in.Description, in.MemorySize, in.Timeout, in.EphemeralStorage, in.Architectures)
	if err := v.err(); err != nil {
		return nil, err
	}
	if err := checkHostArch(in.Architectures); err != nil {
		return nil, err
	}
	if err := checkTags(in.Tags, nil); err != nil {
		return nil, err
	}
	if in.Runtime == "" {
		return nil, invalid("Runtime is required for a function with a .zip file deployment package. moat runs %s.", strings.Join(Runtimes, ", "))
	}
	if err := checkRuntime(in.Runtime); err != nil {
		return nil, err
	}
	if in.Handler == "" {
		return nil, invalid("Handler is required for a function with a .zip file deployment package (custom runtimes read it from _HANDLER; any value, for example \"bootstrap\", will do).")
	}
	if err := checkEnv(in.Environment); err != nil {
		return nil, err
	}
	sb, err := r.checkSandbox(ctx, in.Sandbox)
	if err != nil {
		return nil, err
	}
	info, err := r.inspectCode(in.ZipFile)
	if err != nil {
		return nil, err
	}
	cfg := Config{
		FunctionName:     name,
		Version:          Latest,
		Runtime:          in.Runtime,
		Handler:          in.Handler,
		Description:      in.Description,
		Role:             in.Role,
		MemorySize:       deref(in.MemorySize, DefaultMemorySize),
		Timeout:          deref(in.Timeout, DefaultTimeout),
		EphemeralStorage: deref(in.EphemeralStorage, DefaultEphemeralStorage),
		Architectures:    in.Architectures,
		CodeSha256Hex:    info.SHA256Hex,
		CodeSize:         info.Size,
		RevisionID:       newRevisionID(),
		LastModified:     now(),
		Sandbox:          sb,
	}
	if cfg.Architectures == nil {
		cfg.Architectures = []string{HostArchitecture()}
	}
	if cfg.Env, err = r.sealEnv(name, in.Environment); err != nil {
		return nil, err
	}
	if err := r.storeCode(ctx, info, in.ZipFile); err != nil {
		return nil, err
	}
	rec := &fnRecord{Incarnation: newRevisionID(), Latest: cfg, NextVersion: 1, Tags: in.Tags}
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("create function %s: %w", name, err)
	}
	rev, err := r.kv.Create(ctx, fnKey(name), b)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return nil, newError(ErrExists, "Function already exist: %s", name)
	}
	if err != nil {
		return nil, fmt.Errorf("create function %s: %w", name, err)
	}
	r.applyFn(name, rev, rec)
	if in.Publish {
		return r.publishAfterWrite(ctx, name, rec.Latest.RevisionID)
	}
	return &rec.Latest, nil
}

// publishAfterWrite publishes the $LATEST revision this call just wrote.
// Someone changing $LATEST in between makes it a conflict.
func (r *Registry) publishAfterWrite(ctx context.Context, name, revisionID string) (*Config, error) {
	cfg, err := r.PublishVersion(ctx, PublishInput{FunctionName: name, RevisionID: revisionID})
	if errors.Is(err, ErrPreconditionFailed) {
		return nil, r.conflict(name)
	}
	return cfg, err
}

func deref[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

// UpdateConfiguration changes settings of $LATEST and gives it a new
// RevisionId. Errors match ErrNotFound, ErrInvalid, ErrValidation,
// ErrPreconditionFailed or ErrConflict.
func (r *Registry) UpdateConfiguration(ctx context.Context, in UpdateConfigInput) (*Config, error) {
	name, err := r.parseUnqualified(in.FunctionName)
	if err != nil {
		return nil, err
	}
	var v validation
	checkSettings(&v, nil, in.Role, in.Description, in.MemorySize, in.Timeout, in.EphemeralStorage, nil)
	if in.Handler != nil && (*in.Handler == "" || len(*in.Handler) > MaxHandlerLen || strings.ContainsAny(*in.Handler, " \t\r\n\v\f")) {
		v.maxLen("handler", *in.Handler, MaxHandlerLen)
		if len(*in.Handler) <= MaxHandlerLen {
			v.pattern("handler", *in.Handler, handlerPattern)
		}
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	if in.Runtime != nil {
		if err := checkRuntime(*in.Runtime); err != nil {
			return nil, err
		}
	}
	var sb *SandboxConfig
	if in.Sandbox != nil {
		if sb, err = r.checkSandbox(ctx, in.Sandbox); err != nil {
			return nil, err
		}
	}
	var env *Sealed
	if in.Environment != nil {
		if err := checkEnv(*in.Environment); err != nil {
			return nil, err
		}
		if env, err = r.sealEnv(name, *in.Environment); err != nil {
			return nil, err
		}
	}
	rec, rev, err := r.load(ctx, name)
	if err != nil {
		return nil, err
	}
	if in.RevisionID != "" && in.RevisionID != rec.Latest.RevisionID {
		return nil, revisionMismatch()
	}
	c := &rec.Latest
	setIf(&c.Runtime, in.Runtime)
	setIf(&c.Role, in.Role)
	setIf(&c.Handler, in.Handler)
	setIf(&c.Description, in.Description)
	setIf(&c.MemorySize, in.MemorySize)
	setIf(&c.Timeout, in.Timeout)
	setIf(&c.EphemeralStorage, in.EphemeralStorage)
	if in.Environment != nil {
		c.Env = env
	}
	if in.Sandbox != nil {
		c.Sandbox = sb
	}
	c.RevisionID = newRevisionID()
	c.LastModified = now()
	if err := r.save(ctx, name, rec, rev); err != nil {
		return nil, err
	}
	return c, nil
}

func setIf[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// UpdateCode replaces the code of $LATEST and, with in.Publish, publishes
// it. With in.DryRun it validates the package and reports the result
// without storing anything. Errors match ErrNotFound, ErrInvalid,
// ErrInvalidZip, ErrCodeTooLarge, ErrPreconditionFailed or ErrConflict.
func (r *Registry) UpdateCode(ctx context.Context, in UpdateCodeInput) (*Config, error) {
	name, err := r.parseUnqualified(in.FunctionName)
	if err != nil {
		return nil, err
	}
	var v validation
	checkSettings(&v, nil, nil, nil, nil, nil, nil, in.Architectures)
	if err := v.err(); err != nil {
		return nil, err
	}
	if err := checkHostArch(in.Architectures); err != nil {
		return nil, err
	}
	info, err := r.inspectCode(in.ZipFile)
	if err != nil {
		return nil, err
	}
	rec, rev, err := r.load(ctx, name)
	if err != nil {
		return nil, err
	}
	if in.RevisionID != "" && in.RevisionID != rec.Latest.RevisionID {
		return nil, revisionMismatch()
	}
	c := &rec.Latest
	c.CodeSha256Hex, c.CodeSize = info.SHA256Hex, info.Size
	if in.Architectures != nil {
		c.Architectures = in.Architectures
	}
	c.RevisionID = newRevisionID()
	c.LastModified = now()
	if in.DryRun {
		return c, nil
	}
	if err := r.storeCode(ctx, info, in.ZipFile); err != nil {
		return nil, err
	}
	if err := r.save(ctx, name, rec, rev); err != nil {
		return nil, err
	}
	if in.Publish {
		return r.publishAfterWrite(ctx, name, c.RevisionID)
	}
	return c, nil
}

// abandonedAfter is how long a reserved but unlisted version blocks
// republishing the same $LATEST before it counts as abandoned (its
// publisher died between the steps).
const abandonedAfter = time.Minute

// PublishVersion snapshots $LATEST as a new immutable version. If $LATEST is
// unchanged since the last published version, which still exists, that
// version is returned instead. Errors match ErrNotFound, ErrInvalid,
// ErrPreconditionFailed or ErrConflict.
func (r *Registry) PublishVersion(ctx context.Context, in PublishInput) (*Config, error) {
	name, err := r.parseUnqualified(in.FunctionName)
	if err != nil {
		return nil, err
	}
	var v validation
	v.maxLen("description", in.Description, MaxDescriptionLen)
	if err := v.err(); err != nil {
		return nil, err
	}
	rec, rev, err := r.load(ctx, name)
	if err != nil {
		return nil, err
	}
	latest := rec.Latest
	if in.RevisionID != "" && in.RevisionID != latest.RevisionID {
		return nil, revisionMismatch()
	}
	if in.CodeSha256 != "" {
		if cur := sha256Base64(latest.CodeSha256Hex); in.CodeSha256 != cur {
			return nil, invalid("CodeSHA256 (%s) is different from current CodeSHA256 in $LATEST (%s). Please try again", clip(in.CodeSha256), cur)
		}
	}
	fp := fingerprint(latest)
	if lp := rec.LastPublished; lp != nil && (lp.LatestRevisionID == latest.RevisionID || lp.Fingerprint == fp) {
		if rec.hasVersion(lp.Version) {
			return r.versionConfig(ctx, name, lp.Version, rec.Incarnation)
		}
		if lp.Version == rec.NextVersion-1 && time.Since(lp.At) < abandonedAfter {
			return nil, r.conflict(name) // being published right now
		}
	}
	// 1. Reserve the number.
	n := rec.NextVersion
	rec.NextVersion++
	rec.LastPublished = &publishMark{Version: n, LatestRevisionID: latest.RevisionID, Fingerprint: fp, At: now()}
	if err := r.save(ctx, name, rec, rev); err != nil {
		return nil, err
	}
	// 2. Store the configuration.
	cfg := latest
	cfg.Version = strconv.Itoa(n)
	if in.Description != "" {
		cfg.Description = in.Description
	}
	cfg.RevisionID = newRevisionID()
	cfg.LastModified = now()
	vrec := &verRecord{Incarnation: rec.Incarnation, Config: cfg}
	b, err := json.Marshal(vrec)
	if err != nil {
		return nil, fmt.Errorf("publish %s: %w", name, err)
	}
	vrev, err := r.kv.Put(ctx, verKeyString(name, n), b)
	if err != nil {
		return nil, fmt.Errorf("publish %s: %w", name, err)
	}
	r.applyVer(verKey{name, n}, vrev, vrec)
	// 3. List it. The number is ours, so retry on concurrent changes of
	// other parts of the record.
	for attempt := 0; ; attempt++ {
		rec, rev, err := r.load(ctx, name)
		if err != nil {
			return nil, err
		}
		if rec.Incarnation != vrec.Incarnation {
			return nil, notFound("Function not found: %s", r.FunctionARN(name))
		}
		i, _ := slices.BinarySearch(rec.Versions, n)
		rec.Versions = slices.Insert(rec.Versions, i, n)
		err = r.save(ctx, name, rec, rev)
		if err == nil {
			return &vrec.Config, nil
		}
		if !errors.Is(err, ErrConflict) || attempt == 10 {
			return nil, err
		}
	}
}

// fingerprint identifies what a version of c would run and report: all of
// it but its revision and timestamp. Updating $LATEST with the same code or
// settings changes its RevisionId but not its fingerprint.
func fingerprint(c Config) string {
	c.RevisionID, c.LastModified = "", time.Time{}
	b, err := json.Marshal(c)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// versionConfig returns the configuration of a listed version from the
// cache, or from the KV bucket if the watch has not delivered it yet.
func (r *Registry) versionConfig(ctx context.Context, name string, n int, incarnation string) (*Config, error) {
	r.mu.RLock()
	cfg := r.versionLocked(name, n, incarnation)
	r.mu.RUnlock()
	if cfg != nil {
		return cfg, nil
	}
	if err := r.refreshVersion(ctx, name, n); err != nil {
		return nil, err
	}
	r.mu.RLock()
	cfg = r.versionLocked(name, n, incarnation)
	r.mu.RUnlock()
	if cfg == nil {
		return nil, notFound("Function not found: %s", r.QualifiedARN(name, strconv.Itoa(n)))
	}
	return cfg, nil
}

func sha256Base64(hexSum string) string {
	b, err := hex.DecodeString(hexSum)
	if err != nil {
		return ""
	}
	return base64.StdEncoding.EncodeToString(b)
}

// CodeSha256 returns c's code hash as AWS reports it (base64).
func (c *Config) CodeSha256() string { return sha256Base64(c.CodeSha256Hex) }

// Get returns the configuration of the version or alias qualifier names (the
// alias's primary version) with the function-wide settings. Errors match
// ErrNotFound or ErrInvalid.
func (r *Registry) Get(name, qualifier string) (*FunctionInfo, error) {
	fn, q, err := r.parseQualified(name, qualifier)
	if err != nil {
		return nil, err
	}
	for range 2 {
		info, missing, err := r.getCached(fn, q)
		if missing == 0 {
			return info, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = r.refreshVersion(ctx, fn, missing)
		cancel()
		if err != nil {
			return nil, err
		}
	}
	return nil, notFound("Function not found: %s", r.QualifiedARN(fn, q))
}

func (r *Registry) getCached(fn, q string) (*FunctionInfo, int, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e := r.fns[fn]
	if e == nil || e.rec == nil {
		return nil, 0, notFound("Function not found: %s", r.QualifiedARN(fn, q))
	}
	info := &FunctionInfo{ARN: r.QualifiedARN(fn, q), Reserved: -1, Tags: maps.Clone(e.rec.Tags)}
	if e.rec.Reserved != nil {
		info.Reserved = *e.rec.Reserved
	}
	version := q
	if a, ok := e.rec.Aliases[q]; ok {
		version = a.FunctionVersion
	} else if q != "" && q != Latest && !isVersion(q) {
		return nil, 0, notFound("Function not found: %s", info.ARN)
	}
	if version == "" || version == Latest {
		info.Config = &e.rec.Latest
		return info, 0, nil
	}
	n, _ := strconv.Atoi(version)
	if !e.rec.hasVersion(n) {
		return nil, 0, notFound("Function not found: %s", r.QualifiedARN(fn, version))
	}
	if info.Config = r.versionLocked(fn, n, e.rec.Incarnation); info.Config == nil {
		return nil, n, nil
	}
	return info, 0, nil
}

// Delete deletes a function with all its versions, aliases and settings
// (empty qualifier) or one published version. A version an alias routes to
// cannot be deleted (ErrConflict). Errors match ErrNotFound, ErrInvalid or
// ErrConflict.
func (r *Registry) Delete(ctx context.Context, name, qualifier string) error {
	fn, q, err := r.parseQualified(name, qualifier)
	if err != nil {
		return err
	}
	switch {
	case q == "":
		return r.deleteFunction(ctx, fn)
	case q == Latest:
		return invalid("$LATEST version cannot be deleted without deleting the function.")
	case !isVersion(q):
		return invalid("Deletion of aliases is not supported by DeleteFunction: use DeleteAlias for %s.", r.QualifiedARN(fn, q))
	}
	n, _ := strconv.Atoi(q)
	rec, rev, err := r.load(ctx, fn)
	if err != nil {
		return err
	}
	if !rec.hasVersion(n) {
		return notFound("Function not found: %s", r.QualifiedARN(fn, q))
	}
	var users []string
	for an, a := range rec.Aliases {
		if _, extra := a.AdditionalVersionWeights[q]; a.FunctionVersion == q || extra {
			users = append(users, an)
		}
	}
	if len(users) > 0 {
		slices.Sort(users)
		return newError(ErrConflict, "Unable to delete version because the following aliases reference it: [%s]", strings.Join(users, ", "))
	}
	i, _ := slices.BinarySearch(rec.Versions, n)
	rec.Versions = slices.Delete(rec.Versions, i, i+1)
	delete(rec.EventInvoke, q)
	if err := r.save(ctx, fn, rec, rev); err != nil {
		return err
	}
	r.purgeVersion(ctx, fn, verKeyString(fn, n), rec.Incarnation)
	return nil
}

func (r *Registry) deleteFunction(ctx context.Context, name string) error {
	rec, rev, err := r.load(ctx, name)
	if err != nil {
		return err
	}
	err = r.kv.Delete(ctx, fnKey(name), jetstream.LastRevision(rev))
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return r.conflict(name)
	}
	if err != nil {
		return fmt.Errorf("delete function %s: %w", name, err)
	}
	// The delete marker's revision is above rev, and no other write of
	// the key came between: any update newer than rev is a re-creation.
	r.applyFn(name, rev+1, nil)
	keys, err := r.kv.ListKeysFiltered(ctx, verPrefix+name+".*")
	if err != nil {
		r.log.Warn("list versions of deleted function", logKeyFunction, name, logKeyErr, err)
		return nil
	}
	for k := range keys.Keys() {
		r.purgeVersion(ctx, name, k, rec.Incarnation)
	}
	return nil
}

// purgeVersion removes a version record of the given incarnation. Failure
// leaves an unlisted record behind, which is harmless; it is logged.
func (r *Registry) purgeVersion(ctx context.Context, name, key, incarnation string) {
	e, err := r.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return
	}
	if err == nil {
		var vr verRecord
		if json.Unmarshal(e.Value(), &vr) == nil && vr.Incarnation != incarnation {
			return // a newer function of the same name owns it now
		}
		err = r.kv.Purge(ctx, key, jetstream.LastRevision(e.Revision()))
	}
	if err != nil {
		r.log.Warn("purge version record", logKeyFunction, name, logKeyKey, key, logKeyErr, err)
		return
	}
	if i := strings.LastIndexByte(key, '.'); i > 0 {
		if n, err := strconv.Atoi(key[i+1:]); err == nil {
			r.applyVer(verKey{name, n}, e.Revision()+1, nil)
		}
	}
}

// List returns up to maxItems $LATEST configurations (default 50, at most
// 10000) in name order, starting after marker, and the marker of the next
// page ("" at the end).
func (r *Registry) List(marker string, maxItems int) ([]*Config, string, error) {
	maxItems, err := checkMaxItems(maxItems)
	if err != nil {
		return nil, "", err
	}
	after, err := decodeMarker(marker)
	if err != nil {
		return nil, "", err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	i := 0
	if marker != "" {
		i, _ = slices.BinarySearch(r.names, after)
		if i < len(r.names) && r.names[i] == after {
			i++
		}
	}
	end := min(i+maxItems, len(r.names))
	out := make([]*Config, 0, end-i)
	for _, name := range r.names[i:end] {
		out = append(out, &r.fns[name].rec.Latest)
	}
	next := ""
	if end < len(r.names) {
		next = encodeMarker(r.names[end-1])
	}
	return out, next, nil
}

// ListVersions returns $LATEST and then the published versions in order,
// paginated like List.
func (r *Registry) ListVersions(ctx context.Context, name, marker string, maxItems int) ([]*Config, string, error) {
	fn, err := r.parseUnqualified(name)
	if err != nil {
		return nil, "", err
	}
	maxItems, err = checkMaxItems(maxItems)
	if err != nil {
		return nil, "", err
	}
	after, err := decodeMarker(marker)
	if err != nil {
		return nil, "", err
	}
	start := 0 // index into [$LATEST, versions...]
	if after != "" {
		if after == Latest {
			start = 1
		} else if isVersion(after) {
			n, _ := strconv.Atoi(after)
			start = -n // resolved below against the list
		} else {
			return nil, "", invalid("Invalid marker: %s", clip(marker))
		}
	}
	for range 2 {
		out, next, missing, err := r.listVersionsCached(fn, start, maxItems)
		if missing == 0 {
			return out, next, err
		}
		if err := r.refreshVersion(ctx, fn, missing); err != nil {
			return nil, "", err
		}
	}
	return nil, "", r.conflict(fn)
}

func (r *Registry) listVersionsCached(fn string, start, limit int) ([]*Config, string, int, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e := r.fns[fn]
	if e == nil || e.rec == nil {
		return nil, "", 0, notFound("Function not found: %s", r.FunctionARN(fn))
	}
	vs := e.rec.Versions
	if start < 0 { // after version -start
		i, found := slices.BinarySearch(vs, -start)
		if found {
			i++
		}
		start = 1 + i
	}
	total := 1 + len(vs)
	end := min(start+limit, total)
	out := make([]*Config, 0, max(end-start, 0))
	last := ""
	for i := start; i < end; i++ {
		if i == 0 {
			out = append(out, &e.rec.Latest)
			last = Latest
			continue
		}
		n := vs[i-1]
		cfg := r.versionLocked(fn, n, e.rec.Incarnation)
		if cfg == nil {
			return nil, "", n, nil
		}
		out = append(out, cfg)
		last = strconv.Itoa(n)
	}
	next := ""
	if end < total {
		next = encodeMarker(last)
	}
	return out, next, 0, nil
}

func encodeMarker(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func decodeMarker(m string) (string, error) {
	if m == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(m)
	if err != nil || len(b) == 0 {
		return "", invalid("Invalid marker: %s", clip(m))
	}
	return string(b), nil
}

// ListAll is ListFunctions with FunctionVersion=ALL: every function's
// $LATEST and then its published versions in order, functions in name
// order, paginated like List (the marker names the last item given).
func (r *Registry) ListAll(ctx context.Context, marker string, maxItems int) ([]*Config, string, error) {
	maxItems, err := checkMaxItems(maxItems)
	if err != nil {
		return nil, "", err
	}
	after, err := decodeMarker(marker)
	if err != nil {
		return nil, "", err
	}
	afterName, afterQ, _ := strings.Cut(after, "\x00")
	if marker != "" && afterQ != Latest && !isVersion(afterQ) {
		return nil, "", invalid("Invalid marker: %s", clip(marker))
	}
	for range 3 {
		out, next, fn, missing := r.listAllCached(afterName, afterQ, maxItems)
		if missing == 0 {
			return out, next, nil
		}
		if err := r.refreshVersion(ctx, fn, missing); err != nil && !errors.Is(err, ErrNotFound) {
			return nil, "", err
		}
	}
	return nil, "", newError(ErrConflict, "The function list changed while it was read: try again")
}

// listAllCached serves ListAll from the cache, or names a version it
// lacks (fn, n) for the caller to fetch.
func (r *Registry) listAllCached(afterName, afterQ string, limit int) ([]*Config, string, string, int) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	i := 0
	if afterName != "" {
		i, _ = slices.BinarySearch(r.names, afterName)
	}
	var out []*Config
	lastName, lastQ := "", ""
	for ; i < len(r.names) && len(out) < limit; i++ {
		name := r.names[i]
		rec := r.fns[name].rec
		items := append([]string{Latest}, func() []string {
			vs := make([]string, len(rec.Versions))
			for k, n := range rec.Versions {
				vs[k] = strconv.Itoa(n)
			}
			return vs
		}()...)
		start := 0
		if name == afterName {
			start = len(items) // past everything unless the marker's item is found
			for k, q := range items {
				if q == afterQ {
					start = k + 1
				}
			}
		}
		for _, q := range items[start:] {
			if len(out) == limit {
				break
			}
			if q == Latest {
				out = append(out, &rec.Latest)
			} else {
				n, _ := strconv.Atoi(q)
				cfg := r.versionLocked(name, n, rec.Incarnation)
				if cfg == nil {
					return nil, "", name, n
				}
				out = append(out, cfg)
			}
			lastName, lastQ = name, q
		}
	}
	next := ""
	if len(out) == limit && lastName != "" {
		// more may follow: the next page starts after the last item
		if i < len(r.names) || lastQ != r.lastItem(lastName) {
			next = encodeMarker(lastName + "\x00" + lastQ)
		}
	}
	return out, next, "", 0
}

// lastItem is the last of a function's $LATEST and versions. Called with
// r.mu held.
func (r *Registry) lastItem(name string) string {
	vs := r.fns[name].rec.Versions
	if len(vs) == 0 {
		return Latest
	}
	return strconv.Itoa(vs[len(vs)-1])
}
