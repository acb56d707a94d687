package api

import (
	"context"
	"net/http"
)

// Invoker runs invocations; invoke.Dispatcher implements it. (Placeholder
// until invoke.go lands.)
type Invoker interface {
	Ping(ctx context.Context) error
}

// LogReader reads stored logs; logs.Reader implements it. (Placeholder.)
type LogReader interface{}

func (s *Server) invoke(w http.ResponseWriter, r *http.Request, b []byte) error {
	return notYet(w, r, b)
}
func (s *Server) readLogs(w http.ResponseWriter, r *http.Request, b []byte) error {
	return notYet(w, r, b)
}
func (s *Server) readDestination(w http.ResponseWriter, r *http.Request, b []byte) error {
	return notYet(w, r, b)
}
