package registry

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// PutConcurrency reserves n concurrent executions for function name. The
// reservations of all functions together must leave the configured
// unreserved minimum. Errors match ErrNotFound, ErrInvalid, ErrValidation or
// ErrConflict.
func (r *Registry) PutConcurrency(ctx context.Context, name string, n int) (int, error) {
	fn, err := r.parseUnqualified(name)
	if err != nil {
		return 0, err
	}
	var v validation
	v.min("reservedConcurrentExecutions", n, 0)
	if err := v.err(); err != nil {
		return 0, err
	}
	if others := r.reservedByOthers(fn); others+n > r.limit-r.minFree {
		return 0, invalid("Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [%d].", r.minFree)
	}
	rec, rev, err := r.load(ctx, fn)
	if err != nil {
		return 0, err
	}
	rec.Reserved = &n
	if err := r.save(ctx, fn, rec, rev); err != nil {
		return 0, err
	}
	return n, nil
}

// reservedByOthers sums the reservations of the functions other than fn,
// as cached. (Two nodes reserving for different functions at the same
// moment can together pass the limit; the dispatcher's node-wide limit
// still holds.)
func (r *Registry) reservedByOthers(fn string) int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	sum := 0
	for name, e := range r.fns {
		if name != fn && e.rec != nil && e.rec.Reserved != nil {
			sum += *e.rec.Reserved
		}
	}
	return sum
}

// GetConcurrency returns function name's reserved concurrency, or -1 when
// none is set. Errors match ErrNotFound.
func (r *Registry) GetConcurrency(name string) (int, error) {
	fn, err := r.parseUnqualified(name)
	if err != nil {
		return 0, err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	e := r.fns[fn]
	if e == nil || e.rec == nil {
		return 0, notFound("Function not found: %s", r.FunctionARN(fn))
	}
	if e.rec.Reserved == nil {
		return -1, nil
	}
	return *e.rec.Reserved, nil
}

// DeleteConcurrency removes function name's reservation. Errors match
// ErrNotFound or ErrConflict.
func (r *Registry) DeleteConcurrency(ctx context.Context, name string) error {
	fn, err := r.parseUnqualified(name)
	if err != nil {
		return err
	}
	rec, rev, err := r.load(ctx, fn)
	if err != nil {
		return err
	}
	if rec.Reserved == nil {
		return nil
	}
	rec.Reserved = nil
	return r.save(ctx, fn, rec, rev)
}

// eventQualifier resolves the function and qualifier of an event invoke
// configuration; no qualifier means $LATEST.
func (r *Registry) eventQualifier(name, qualifier string) (string, string, error) {
	fn, q, err := r.parseQualified(name, qualifier)
	if q == "" {
		q = Latest
	}
	return fn, q, err
}

// checkQualifierExists checks that q names $LATEST, a published version or
// an alias of rec.
func (r *Registry) checkQualifierExists(fn, q string, rec *fnRecord) error {
	if q == Latest {
		return nil
	}
	if isVersion(q) {
		if n, _ := strconv.Atoi(q); rec.hasVersion(n) {
			return nil
		}
	} else if _, ok := rec.Aliases[q]; ok {
		return nil
	}
	return notFound("Function not found: %s", r.QualifiedARN(fn, q))
}

// PutEventInvokeConfig sets the event invoke configuration of a function,
// version or alias. With merge (UpdateFunctionEventInvokeConfig) nil fields
// of in keep their current value; otherwise they are unset. Errors match
// ErrNotFound, ErrInvalid, ErrValidation or ErrConflict.
func (r *Registry) PutEventInvokeConfig(ctx context.Context, name, qualifier string, in EventInvokeUpdate, merge bool) (*EventInvokeConfig, string, error) {
	fn, q, err := r.eventQualifier(name, qualifier)
	if err != nil {
		return nil, "", err
	}
	var v validation
	v.between("maximumRetryAttempts", in.MaximumRetryAttempts, 0, MaxRetryAttempts)
	v.between("maximumEventAgeInSeconds", in.MaximumEventAgeInSeconds, MinEventAge, MaxEventAge)
	if err := v.err(); err != nil {
		return nil, "", err
	}
	if in.OnSuccess != nil {
		if err := checkDestination("DestinationConfig.OnSuccess", *in.OnSuccess); err != nil {
			return nil, "", err
		}
	}
	if in.OnFailure != nil {
		if err := checkDestination("DestinationConfig.OnFailure", *in.OnFailure); err != nil {
			return nil, "", err
		}
	}
	rec, rev, err := r.load(ctx, fn)
	if err != nil {
		return nil, "", err
	}
	if err := r.checkQualifierExists(fn, q, rec); err != nil {
		return nil, "", err
	}
	c := &EventInvokeConfig{}
	if old := rec.EventInvoke[q]; merge && old != nil {
		*c = *old
	}
	if in.MaximumRetryAttempts != nil || !merge {
		c.MaximumRetryAttempts = in.MaximumRetryAttempts
	}
	if in.MaximumEventAgeInSeconds != nil || !merge {
		c.MaximumEventAgeInSeconds = in.MaximumEventAgeInSeconds
	}
	if in.OnSuccess != nil || !merge {
		c.OnSuccess = deref(in.OnSuccess, "")
	}
	if in.OnFailure != nil || !merge {
		c.OnFailure = deref(in.OnFailure, "")
	}
	c.LastModified = now()
	if rec.EventInvoke == nil {
		rec.EventInvoke = make(map[string]*EventInvokeConfig, 1)
	}
	rec.EventInvoke[q] = c
	if err := r.save(ctx, fn, rec, rev); err != nil {
		return nil, "", err
	}
	return c, r.QualifiedARN(fn, q), nil
}

// GetEventInvokeConfig returns the event invoke configuration of a
// function, version or alias and the ARN it belongs to. Errors match
// ErrNotFound.
func (r *Registry) GetEventInvokeConfig(name, qualifier string) (*EventInvokeConfig, string, error) {
	fn, q, err := r.eventQualifier(name, qualifier)
	if err != nil {
		return nil, "", err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	e := r.fns[fn]
	if e == nil || e.rec == nil {
		return nil, "", notFound("Function not found: %s", r.FunctionARN(fn))
	}
	arn := r.QualifiedARN(fn, q)
	c, ok := e.rec.EventInvoke[q]
	if !ok {
		return nil, "", notFound("The function %s doesn't have an EventInvokeConfig", arn)
	}
	return c, arn, nil
}

// DeleteEventInvokeConfig removes the event invoke configuration of a
// function, version or alias. Errors match ErrNotFound or ErrConflict.
func (r *Registry) DeleteEventInvokeConfig(ctx context.Context, name, qualifier string) error {
	fn, q, err := r.eventQualifier(name, qualifier)
	if err != nil {
		return err
	}
	rec, rev, err := r.load(ctx, fn)
	if err != nil {
		return err
	}
	if _, ok := rec.EventInvoke[q]; !ok {
		return notFound("The function %s doesn't have an EventInvokeConfig", r.QualifiedARN(fn, q))
	}
	delete(rec.EventInvoke, q)
	return r.save(ctx, fn, rec, rev)
}

// ListEventInvokeConfigs returns every event invoke configuration of a
// function with the ARN each belongs to, $LATEST first, then versions and
// aliases by name. Errors match ErrNotFound or ErrInvalid.
func (r *Registry) ListEventInvokeConfigs(name string) ([]*EventInvokeConfig, []string, error) {
	fn, err := r.parseUnqualified(name)
	if err != nil {
		return nil, nil, err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	rec, err := r.liveLocked(fn)
	if err != nil {
		return nil, nil, err
	}
	cfgs, arns := byQualifier(r, fn, rec.EventInvoke)
	return cfgs, arns, nil
}

// byQualifier lists the values of a per-qualifier map of function fn
// with the ARN each belongs to: $LATEST first, then the versions and
// aliases by name.
func byQualifier[T any](r *Registry, fn string, m map[string]T) ([]T, []string) {
	qs := slices.SortedFunc(maps.Keys(m), func(a, b string) int {
		switch {
		case a == b:
			return 0
		case a == Latest:
			return -1
		case b == Latest:
			return 1
		}
		return strings.Compare(a, b)
	})
	vals := make([]T, len(qs))
	arns := make([]string, len(qs))
	for i, q := range qs {
		vals[i], arns[i] = m[q], r.QualifiedARN(fn, q)
	}
	return vals, arns
}

// liveLocked is the record of function fn, or ErrNotFound when it does
// not exist (or no longer). Called with r.mu held.
func (r *Registry) liveLocked(fn string) (*fnRecord, error) {
	e := r.fns[fn]
	if e == nil || e.rec == nil {
		return nil, notFound("Function not found: %s", r.FunctionARN(fn))
	}
	return e.rec, nil
}
