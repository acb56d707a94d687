package api

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"moat.dev/moat/internal/logs"
	"moat.dev/moat/internal/names"
)

// LogReader reads stored logs; *logs.Reader implements it.
type LogReader interface {
	Read(ctx context.Context, function string, since time.Time, follow bool, fn func(logs.Record) error) error
}

// DestinationReader reads the records delivered to a queue destination;
// *invoke.Queue implements it.
type DestinationReader interface {
	ReadDestination(ctx context.Context, name string, follow bool, fn func([]byte) error) error
}

// readLogs streams a function's stored log records as NDJSON:
// GET /moat/v1/logs/{name}?since=10m|RFC3339&follow=1
func (s *Server) readLogs(w http.ResponseWriter, r *http.Request, _ []byte) error {
	name := r.PathValue("name")
	if !names.Function(name) {
		return errorf(CodeInvalidParameterValue, "invalid function name")
	}
	if s.opts.Logs == nil {
		return errorf(CodeServiceUnavailable, "logs are not available on this node")
	}
	since, err := parseSince(r.URL.Query().Get("since"))
	if err != nil {
		return err
	}
	follow := r.URL.Query().Get("follow") == "1" || r.URL.Query().Get("follow") == "true"
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	enc := json.NewEncoder(w)
	err = s.opts.Logs.Read(r.Context(), name, since, follow, func(rec logs.Record) error {
		if err := enc.Encode(rec); err != nil {
			return err
		}
		if fl != nil && follow {
			fl.Flush()
		}
		return nil
	})
	if err != nil && r.Context().Err() == nil {
		s.log.Warn("reading logs failed", "function", name, "err", err)
	}
	return nil
}

// readDestination streams the records delivered to a queue destination as
// NDJSON: GET /moat/v1/destinations/{dest}?follow=1
func (s *Server) readDestination(w http.ResponseWriter, r *http.Request, _ []byte) error {
	name := r.PathValue("dest")
	if !names.Function(name) {
		return errorf(CodeInvalidParameterValue, "invalid destination name")
	}
	if s.opts.Destinations == nil {
		return errorf(CodeServiceUnavailable, "destinations are not available on this node")
	}
	follow := r.URL.Query().Get("follow") == "1" || r.URL.Query().Get("follow") == "true"
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	err := s.opts.Destinations.ReadDestination(r.Context(), name, follow, func(b []byte) error {
		if _, err := w.Write(append(b, '\n')); err != nil {
			return err
		}
		if fl != nil && follow {
			fl.Flush()
		}
		return nil
	})
	if err != nil && r.Context().Err() == nil {
		s.log.Warn("reading destination failed", "destination", name, "err", err)
	}
	return nil
}
