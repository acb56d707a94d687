package registry

import (
	"context"
	"crypto/rand"
	"strings"
	"time"
)

// Function URLs: an HTTP endpoint of its own for a function's $LATEST or
// one of its aliases, as Lambda's CreateFunctionUrlConfig makes them.

// Auth types and invoke modes of a function URL.
const (
	URLAuthNone      = "NONE"
	URLAuthIAM       = "AWS_IAM"
	URLModeBuffered  = "BUFFERED"
	URLModeStreaming = "RESPONSE_STREAM"
	// urlIDLen is the length of a URL id: lower-case letters and digits,
	// the host name's first label.
	urlIDLen = 32
	// maxCorsItems and maxCorsMaxAge are Lambda's limits on Cors.
	maxCorsItems  = 100
	maxCorsMaxAge = 86400
)

// URLConfig is the stored configuration of a function URL.
type URLConfig struct {
	ID         string    `json:"Id"`
	AuthType   string    `json:"AuthType"`
	Cors       *Cors     `json:"Cors,omitempty"`
	InvokeMode string    `json:"InvokeMode"`
	Created    time.Time `json:"Created"`
	Modified   time.Time `json:"Modified"`
}

// Cors is a function URL's cross-origin resource sharing settings.
type Cors struct {
	AllowCredentials bool     `json:"AllowCredentials,omitempty"`
	AllowHeaders     []string `json:"AllowHeaders,omitempty"`
	AllowMethods     []string `json:"AllowMethods,omitempty"`
	AllowOrigins     []string `json:"AllowOrigins,omitempty"`
	ExposeHeaders    []string `json:"ExposeHeaders,omitempty"`
	MaxAge           int      `json:"MaxAge,omitempty"`
}

// URLUpdate is a Create or UpdateFunctionUrlConfig: nil fields are left
// as they are (Update) or take their defaults (Create).
type URLUpdate struct {
	AuthType   *string
	Cors       *Cors
	InvokeMode *string
}

// URLTarget is what a URL id leads to.
type URLTarget struct {
	Function, Qualifier string
	Config              *URLConfig
}

// urlQualifier checks a function URL's qualifier: $LATEST (the default)
// or an alias, never a version number, as Lambda.
func (r *Registry) urlQualifier(name, qualifier string) (string, string, error) {
	fn, q, err := r.eventQualifier(name, qualifier)
	if err != nil {
		return "", "", err
	}
	if isVersion(q) {
		return "", "", newError(ErrValidation, "1 validation error detected: Value '%s' at 'qualifier' failed to satisfy constraint: a function URL belongs to $LATEST or an alias, not a version", q)
	}
	return fn, q, nil
}

// validateURL checks the settings of a function URL.
func validateURL(c *URLConfig) error {
	var v validation
	if c.AuthType != URLAuthNone && c.AuthType != URLAuthIAM {
		v.add("Value '%s' at 'authType' failed to satisfy constraint: Member must satisfy enum value set: [NONE, AWS_IAM]", c.AuthType)
	}
	switch c.InvokeMode {
	case URLModeBuffered:
	case URLModeStreaming:
		v.add("Value 'RESPONSE_STREAM' at 'invokeMode' is not supported by this moat: use BUFFERED")
	default:
		v.add("Value '%s' at 'invokeMode' failed to satisfy constraint: Member must satisfy enum value set: [BUFFERED, RESPONSE_STREAM]", c.InvokeMode)
	}
	if co := c.Cors; co != nil {
		for field, list := range map[string][]string{"cors.allowHeaders": co.AllowHeaders, "cors.allowMethods": co.AllowMethods,
			"cors.allowOrigins": co.AllowOrigins, "cors.exposeHeaders": co.ExposeHeaders} {
			if len(list) > maxCorsItems {
				v.add("Value at '%s' failed to satisfy constraint: Member must have length less than or equal to %d", field, maxCorsItems)
			}
			for _, s := range list {
				if s == "" || len(s) > 1024 || strings.ContainsAny(s, "\r\n") {
					v.add("Value '%s' at '%s' failed to satisfy constraint: Member must be 1 to 1024 characters without line breaks", s, field)
				}
			}
		}
		for _, m := range co.AllowMethods {
			if m != "*" && strings.ToUpper(m) != m || len(m) > 6 {
				v.add("Value '%s' at 'cors.allowMethods' failed to satisfy constraint: Member must be an HTTP method in capitals, or *", m)
			}
		}
		for _, o := range co.AllowOrigins {
			if o != "*" && !strings.HasPrefix(o, "http://") && !strings.HasPrefix(o, "https://") {
				v.add("Value '%s' at 'cors.allowOrigins' failed to satisfy constraint: Member must be * or an origin (http://host or https://host)", o)
			}
		}
		if co.MaxAge < 0 || co.MaxAge > maxCorsMaxAge {
			v.add("Value '%d' at 'cors.maxAge' failed to satisfy constraint: Member must be between 0 and %d", co.MaxAge, maxCorsMaxAge)
		}
	}
	return v.err()
}

// newURLID draws a URL id: 32 lower-case letters and digits.
func newURLID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, urlIDLen)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// CreateFunctionURL gives a function's $LATEST or alias a URL. Errors
// match ErrNotFound, ErrInvalid, ErrValidation, ErrExists or ErrConflict.
func (r *Registry) CreateFunctionURL(ctx context.Context, name, qualifier string, in URLUpdate) (*URLConfig, string, error) {
	fn, q, err := r.urlQualifier(name, qualifier)
	if err != nil {
		return nil, "", err
	}
	c := &URLConfig{ID: newURLID(), AuthType: deref(in.AuthType, ""), Cors: in.Cors, InvokeMode: deref(in.InvokeMode, URLModeBuffered)}
	if in.AuthType == nil {
		return nil, "", newError(ErrValidation, "1 validation error detected: Value null at 'authType' failed to satisfy constraint: Member must not be null")
	}
	if err := validateURL(c); err != nil {
		return nil, "", err
	}
	rec, rev, err := r.load(ctx, fn)
	if err != nil {
		return nil, "", err
	}
	if err := r.checkQualifierExists(fn, q, rec); err != nil {
		return nil, "", err
	}
	if _, ok := rec.URLs[q]; ok {
		return nil, "", newError(ErrExists, "Failed to create function url config for [functionArn = %s]. Error message:  FunctionUrlConfig exists for this Lambda function", r.QualifiedARN(fn, q))
	}
	c.Created = now()
	c.Modified = c.Created
	if rec.URLs == nil {
		rec.URLs = make(map[string]*URLConfig, 1)
	}
	rec.URLs[q] = c
	if err := r.save(ctx, fn, rec, rev); err != nil {
		return nil, "", err
	}
	return c, r.QualifiedARN(fn, q), nil
}

// UpdateFunctionURL changes the settings of a function URL; its id, and
// so its address, stay. Errors match ErrNotFound, ErrInvalid,
// ErrValidation or ErrConflict.
func (r *Registry) UpdateFunctionURL(ctx context.Context, name, qualifier string, in URLUpdate) (*URLConfig, string, error) {
	fn, q, err := r.urlQualifier(name, qualifier)
	if err != nil {
		return nil, "", err
	}
	rec, rev, err := r.load(ctx, fn)
	if err != nil {
		return nil, "", err
	}
	old, ok := rec.URLs[q]
	if !ok {
		return nil, "", notFound("The resource you requested does not exist.")
	}
	c := *old
	if in.AuthType != nil {
		c.AuthType = *in.AuthType
	}
	if in.Cors != nil {
		c.Cors = in.Cors
	}
	if in.InvokeMode != nil {
		c.InvokeMode = *in.InvokeMode
	}
	if err := validateURL(&c); err != nil {
		return nil, "", err
	}
	c.Modified = now()
	rec.URLs[q] = &c // rec is this call's own copy, read from the bucket
	if err := r.save(ctx, fn, rec, rev); err != nil {
		return nil, "", err
	}
	return &c, r.QualifiedARN(fn, q), nil
}

// GetFunctionURL returns the URL of a function's $LATEST or alias and
// the ARN it belongs to. Errors match ErrNotFound.
func (r *Registry) GetFunctionURL(name, qualifier string) (*URLConfig, string, error) {
	fn, q, err := r.urlQualifier(name, qualifier)
	if err != nil {
		return nil, "", err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	rec, err := r.liveLocked(fn)
	if err != nil {
		return nil, "", err
	}
	c, ok := rec.URLs[q]
	if !ok {
		return nil, "", notFound("The resource you requested does not exist.")
	}
	return c, r.QualifiedARN(fn, q), nil
}

// ListFunctionURLs returns every URL of a function with the ARN of what
// it belongs to, $LATEST first, then aliases by name. Errors match
// ErrNotFound.
func (r *Registry) ListFunctionURLs(name string) ([]*URLConfig, []string, error) {
	fn, _, err := r.eventQualifier(name, "")
	if err != nil {
		return nil, nil, err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	rec, err := r.liveLocked(fn)
	if err != nil {
		return nil, nil, err
	}
	cfgs, arns := byQualifier(r, fn, rec.URLs)
	return cfgs, arns, nil
}

// DeleteFunctionURL removes a function URL: its address stops answering
// at once. Errors match ErrNotFound or ErrConflict.
func (r *Registry) DeleteFunctionURL(ctx context.Context, name, qualifier string) error {
	fn, q, err := r.urlQualifier(name, qualifier)
	if err != nil {
		return err
	}
	rec, rev, err := r.load(ctx, fn)
	if err != nil {
		return err
	}
	if _, ok := rec.URLs[q]; !ok {
		return notFound("The resource you requested does not exist.")
	}
	delete(rec.URLs, q)
	return r.save(ctx, fn, rec, rev)
}

// LookupURL returns what a URL id leads to, from the cache (the hot path
// of every URL request).
func (r *Registry) LookupURL(id string) (URLTarget, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	t, ok := r.urls[id]
	return t, ok
}

// indexURLs replaces the URL ids of function name in the index: those of
// old go, those of rec (nil: deleted) come. Called with r.mu held.
func (r *Registry) indexURLs(name string, old, rec *fnRecord) {
	if old != nil {
		for _, c := range old.URLs {
			if t, ok := r.urls[c.ID]; ok && t.Function == name {
				delete(r.urls, c.ID)
			}
		}
	}
	if rec == nil {
		return
	}
	if r.urls == nil {
		r.urls = map[string]URLTarget{}
	}
	for q, c := range rec.URLs {
		r.urls[c.ID] = URLTarget{Function: name, Qualifier: q, Config: c}
	}
}
