package registry

import (
	"context"
	"maps"
	"strings"

	"moat.dev/moat/internal/codepkg"
)

// Tags of functions: TagResource, UntagResource, ListTags and Tags on
// CreateFunction, with AWS's limits. A function's tags belong to the
// function, not to its versions or aliases.

const (
	maxTags        = 50
	maxTagKeyLen   = 128
	maxTagValueLen = 256
)

// checkTags validates tags as AWS does: at most 50 of them, keys of 1 to
// 128 characters that do not start with the reserved prefix aws:,
// values of at most 256. existing are the tags the function has already.
func checkTags(tags, existing map[string]string) error {
	var v validation
	n := len(existing)
	for k, val := range tags {
		if _, ok := existing[k]; !ok {
			n++
		}
		switch {
		case k == "" || len(k) > maxTagKeyLen:
			v.add("Value '%s' at 'tags.key' failed to satisfy constraint: Member must have length between 1 and %d", clip(k), maxTagKeyLen)
		case strings.HasPrefix(strings.ToLower(k), "aws:"):
			v.add("Value '%s' at 'tags.key' failed to satisfy constraint: the prefix aws: is reserved", clip(k))
		}
		if len(val) > maxTagValueLen {
			v.add("Value at 'tags.%s' failed to satisfy constraint: Member must have length less than or equal to %d", clip(k), maxTagValueLen)
		}
	}
	if n > maxTags {
		v.add("A function can have at most %d tags; this would make %d", maxTags, n)
	}
	return v.err()
}

// TagResource adds tags to (or changes tags of) the function ARN names.
// Errors match ErrNotFound, ErrInvalid, ErrValidation or ErrConflict.
func (r *Registry) TagResource(ctx context.Context, arn string, tags map[string]string) error {
	fn, err := r.parseUnqualified(arn)
	if err != nil {
		return err
	}
	if len(tags) == 0 {
		return newError(ErrValidation, "1 validation error detected: Value null at 'tags' failed to satisfy constraint: Member must not be null")
	}
	rec, rev, err := r.load(ctx, fn)
	if err != nil {
		return err
	}
	if err := checkTags(tags, rec.Tags); err != nil {
		return err
	}
	if rec.Tags == nil {
		rec.Tags = make(map[string]string, len(tags))
	}
	maps.Copy(rec.Tags, tags)
	return r.save(ctx, fn, rec, rev)
}

// UntagResource removes tags by key (absent keys are no error, as AWS).
// Errors match ErrNotFound, ErrInvalid, ErrValidation or ErrConflict.
func (r *Registry) UntagResource(ctx context.Context, arn string, keys []string) error {
	fn, err := r.parseUnqualified(arn)
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		return newError(ErrValidation, "1 validation error detected: Value null at 'tagKeys' failed to satisfy constraint: Member must not be null")
	}
	rec, rev, err := r.load(ctx, fn)
	if err != nil {
		return err
	}
	for _, k := range keys {
		delete(rec.Tags, k)
	}
	return r.save(ctx, fn, rec, rev)
}

// ListTags returns the tags of the function ARN names. Errors match
// ErrNotFound or ErrInvalid.
func (r *Registry) ListTags(arn string) (map[string]string, error) {
	fn, err := r.parseUnqualified(arn)
	if err != nil {
		return nil, err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	rec, err := r.liveLocked(fn)
	if err != nil {
		return nil, err
	}
	return maps.Clone(rec.Tags), nil
}

// AccountUsage is GetAccountSettings' account: the limits it runs under
// and what its functions use.
type AccountUsage struct {
	FunctionCount         int
	TotalCodeSize         int64 // of $LATEST and every published version
	ConcurrentExecutions  int   // the node's limit
	UnreservedConcurrency int   // what reservations leave
	CodeSizeZipped        int64
	CodeSizeUnzipped      int64
}

// Account reports the limits and usage GetAccountSettings answers with.
func (r *Registry) Account() AccountUsage {
	r.mu.RLock()
	defer r.mu.RUnlock()
	u := AccountUsage{ConcurrentExecutions: r.limit, CodeSizeZipped: r.codeLim.MaxZipBytes, CodeSizeUnzipped: r.codeLim.MaxUnpackedBytes}
	reserved := 0
	for _, e := range r.fns {
		if e.rec == nil {
			continue
		}
		u.FunctionCount++
		u.TotalCodeSize += e.rec.Latest.CodeSize
		if e.rec.Reserved != nil {
			reserved += *e.rec.Reserved
		}
	}
	for _, v := range r.vers {
		if v.rec != nil {
			u.TotalCodeSize += v.rec.Config.CodeSize
		}
	}
	u.UnreservedConcurrency = r.limit - reserved
	if u.CodeSizeZipped <= 0 {
		u.CodeSizeZipped = codepkg.DefaultMaxZipBytes
	}
	if u.CodeSizeUnzipped <= 0 {
		u.CodeSizeUnzipped = codepkg.DefaultMaxUnpackedBytes
	}
	return u
}
