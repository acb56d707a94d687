package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"moat.dev/moat/internal/detect"
	"moat.dev/moat/internal/monitor"
	"moat.dev/moat/internal/names"
	"moat.dev/moat/internal/profile"
	"moat.dev/moat/internal/profiles"
	"moat.dev/moat/internal/rules"
)

// Monitor serves forensic records, alerts and rules; *monitor.Monitor
// implements it.
type Monitor interface {
	Trace(ctx context.Context, requestID string) ([]monitor.Record, error)
	ReadAlerts(ctx context.Context, function string, since time.Time, follow bool, fn func(detect.Alert) error) error
	Rules(ctx context.Context) ([]byte, error)
	PutRules(ctx context.Context, doc []byte) error
}

// Profiles serves behaviour profiles; *profiles.Store implements it.
type Profiles interface {
	Profile(ctx context.Context, function, version string) (*profile.Profile, error)
	Put(ctx context.Context, function, version string, doc []byte) (*profile.Profile, error)
	Approve(ctx context.Context, function, version string) (*profile.Profile, error)
}

// maxPolicyBody bounds a profile or rules document.
const maxPolicyBody = 1 << 20

func (s *Server) monitorRoutes() {
	s.handle("GET /moat/v1/traces/{id}", 0, s.getTrace)
	s.handle("GET /moat/v1/alerts", 0, s.readAlerts)
	s.handle("GET /moat/v1/profiles/{name}", 0, s.getProfile)
	s.handle("PUT /moat/v1/profiles/{name}", maxPolicyBody, s.putProfile)
	s.handle("POST /moat/v1/profiles/{name}/approve", 0, s.approveProfile)
	s.handle("GET /moat/v1/rules", 0, s.getRules)
	s.handle("PUT /moat/v1/rules", maxPolicyBody, s.putRules)
}

func (s *Server) monitorOrUnavailable() (Monitor, error) {
	if s.opts.Monitor == nil {
		return nil, errorf(CodeServiceUnavailable, "the monitor is not available on this node")
	}
	return s.opts.Monitor, nil
}

// getTrace returns the forensic records of a request:
// GET /moat/v1/traces/{request id}
func (s *Server) getTrace(w http.ResponseWriter, r *http.Request, _ []byte) error {
	mon, err := s.monitorOrUnavailable()
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	if !monitor.RequestIDPattern.MatchString(id) {
		return errorf(CodeInvalidParameterValue, "invalid request id: use the id Invoke returned (letters, digits, '-' and '_')")
	}
	recs, err := mon.Trace(r.Context(), id)
	if errors.Is(err, monitor.ErrNoRecord) {
		return errorf(CodeResourceNotFound, "no record of request "+id+": records are written a moment after the invocation ends and kept for the trace retention; an invocation that did nothing the sensor reports is remembered only by the node that ran it")
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"Records": recs})
}

// readAlerts streams alerts as NDJSON:
// GET /moat/v1/alerts?function=F&since=10m|RFC3339&follow=1
func (s *Server) readAlerts(w http.ResponseWriter, r *http.Request, _ []byte) error {
	mon, err := s.monitorOrUnavailable()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	fn := q.Get("function")
	if fn != "" && !names.Function(fn) {
		return errorf(CodeInvalidParameterValue, "invalid function name")
	}
	since, err := parseSince(q.Get("since"))
	if err != nil {
		return err
	}
	follow := q.Get("follow") == "1" || q.Get("follow") == "true"
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	if fl != nil {
		fl.Flush()
	}
	enc := json.NewEncoder(w)
	err = mon.ReadAlerts(r.Context(), fn, since, follow, func(a detect.Alert) error {
		if err := enc.Encode(a); err != nil {
			return err
		}
		if fl != nil && follow {
			fl.Flush()
		}
		return nil
	})
	if err != nil && r.Context().Err() == nil {
		s.log.Warn("reading alerts failed", "function", fn, "err", err)
	}
	return nil
}

// parseSince reads a since parameter: a duration back from now or an
// RFC 3339 time; empty means from the start.
func parseSince(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return time.Now().Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	return time.Time{}, errorf(CodeInvalidParameterValue, "since must be a duration such as 10m or an RFC 3339 time")
}

// profileTarget resolves the function version a profile request names:
// the Qualifier parameter (a version or alias), default $LATEST.
func (s *Server) profileTarget(r *http.Request) (Profiles, string, string, error) {
	if s.opts.Profiles == nil {
		return nil, "", "", errorf(CodeServiceUnavailable, "profiles are not available on this node")
	}
	name := r.PathValue("name")
	if !names.Function(name) {
		return nil, "", "", errorf(CodeInvalidParameterValue, "invalid function name")
	}
	if s.opts.Resolver == nil {
		return nil, "", "", errorf(CodeServiceUnavailable, "functions are not available on this node")
	}
	t, err := s.opts.Resolver.Resolve(name, r.URL.Query().Get("Qualifier"))
	if err != nil {
		return nil, "", "", registryError(err)
	}
	return s.opts.Profiles, t.Config.FunctionName, t.Config.Version, nil
}

func profileError(err error) error {
	switch {
	case errors.Is(err, profiles.ErrNoProfile):
		return errorf(CodeResourceNotFound, "no profile yet: the function version has not run on a monitored node")
	case errors.Is(err, profiles.ErrProfileMismatch), errors.Is(err, profile.ErrInvalid):
		return errorf(CodeInvalidParameterValue, err.Error())
	case errors.Is(err, profile.ErrTransition):
		return errorf(CodeResourceConflict, err.Error())
	}
	return err
}

func writeYAML(w http.ResponseWriter, b []byte) error {
	w.Header().Set("Content-Type", "application/yaml")
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(b)
	return err
}

// getProfile returns a function version's profile as YAML:
// GET /moat/v1/profiles/{name}?Qualifier=VERSION|ALIAS
func (s *Server) getProfile(w http.ResponseWriter, r *http.Request, _ []byte) error {
	ps, fn, ver, err := s.profileTarget(r)
	if err != nil {
		return err
	}
	p, err := ps.Profile(r.Context(), fn, ver)
	if err != nil {
		return profileError(err)
	}
	return writeYAML(w, p.YAML())
}

// putProfile replaces a profile with an edited YAML document:
// PUT /moat/v1/profiles/{name}?Qualifier=VERSION|ALIAS
func (s *Server) putProfile(w http.ResponseWriter, r *http.Request, body []byte) error {
	ps, fn, ver, err := s.profileTarget(r)
	if err != nil {
		return err
	}
	p, err := ps.Put(r.Context(), fn, ver, body)
	if err != nil {
		return profileError(err)
	}
	return writeYAML(w, p.YAML())
}

// approveProfile approves a profile:
// POST /moat/v1/profiles/{name}/approve?Qualifier=VERSION|ALIAS
func (s *Server) approveProfile(w http.ResponseWriter, r *http.Request, _ []byte) error {
	ps, fn, ver, err := s.profileTarget(r)
	if err != nil {
		return err
	}
	p, err := ps.Approve(r.Context(), fn, ver)
	if err != nil {
		return profileError(err)
	}
	return writeYAML(w, p.YAML())
}

// getRules returns the built-in rules and the user rules file:
// GET /moat/v1/rules
func (s *Server) getRules(w http.ResponseWriter, r *http.Request, _ []byte) error {
	mon, err := s.monitorOrUnavailable()
	if err != nil {
		return err
	}
	doc, err := mon.Rules(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"Builtins": rules.Builtins(), "UserRules": string(doc)})
}

// putRules validates and stores the user rules file (YAML with CEL
// conditions); an empty body removes it: PUT /moat/v1/rules
func (s *Server) putRules(w http.ResponseWriter, r *http.Request, body []byte) error {
	mon, err := s.monitorOrUnavailable()
	if err != nil {
		return err
	}
	if err := mon.PutRules(r.Context(), body); err != nil {
		if errors.Is(err, rules.ErrInvalid) {
			return errorf(CodeInvalidParameterValue, err.Error())
		}
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"Builtins": rules.Builtins(), "UserRules": string(body)})
}
