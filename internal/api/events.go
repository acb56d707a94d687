package api

import (
	"net/http"
	"strings"
)

// EventSource is an item of GET /moat/v1/events: one way events reach a
// function, whatever its kind, with its state and what it delivered.
type EventSource struct {
	Type     string `json:"Type"` // url | schedule
	Name     string `json:"Name"` // the URL id, the schedule's group/name
	Function string `json:"Function"`
	State    string `json:"State"`
	Detail   string `json:"Detail"` // the URL, the expression
	Next     string `json:"Next,omitempty"`
	// Counts of what the source delivered, where the source keeps them
	// cluster-wide (schedules: fired, missed, failed).
	Counts    map[string]int64 `json:"Counts,omitempty"`
	LastError string           `json:"LastError,omitempty"`
}

// events lists every event source of the node's cluster, optionally of one
// function (?function=NAME).
func (s *Server) events(w http.ResponseWriter, r *http.Request, _ []byte) error {
	only := r.URL.Query().Get("function")
	out := []EventSource{}
	if reg := s.opts.Registry; reg != nil {
		for marker := ""; ; {
			fns, next, err := reg.List(marker, 10000)
			if err != nil {
				return registryError(err)
			}
			for _, fn := range fns {
				if only != "" && fn.FunctionName != only {
					continue
				}
				cfgs, arns, err := reg.ListFunctionURLs(fn.FunctionName)
				if err != nil {
					return registryError(err)
				}
				for i, c := range cfgs {
					target := fn.FunctionName
					if parts := strings.Split(arns[i], ":"); len(parts) == 8 && parts[7] != "$LATEST" {
						target += ":" + parts[7]
					}
					detail := c.AuthType
					if s.opts.URLBase != nil {
						if u := s.opts.URLBase(c.ID); u != "" {
							detail = u + " (" + c.AuthType + ")"
						}
					}
					out = append(out, EventSource{Type: "url", Name: c.ID, Function: target, State: "ENABLED", Detail: detail})
				}
			}
			if next == "" {
				break
			}
			marker = next
		}
	}
	if o := s.opts.Scheduler; o != nil && o.Store != nil {
		scheds, err := s.scheduleStatuses(r)
		if err != nil {
			return err
		}
		for _, sc := range scheds {
			fn := sc.Target
			if i := strings.Index(fn, ":function:"); i >= 0 {
				fn = fn[i+len(":function:"):]
			}
			if only != "" && strings.SplitN(fn, ":", 2)[0] != only {
				continue
			}
			detail := sc.Expression
			if sc.Timezone != "" {
				detail += " " + sc.Timezone
			}
			out = append(out, EventSource{Type: "schedule", Name: sc.GroupName + "/" + sc.Name, Function: fn, State: sc.State,
				Detail: detail, Next: sc.NextTick, LastError: sc.Cursor.LastError,
				Counts: map[string]int64{"fired": sc.Cursor.Fired, "missed": sc.Cursor.Missed, "failed": sc.Cursor.Failed}})
		}
	}
	return writeJSON(w, http.StatusOK, out)
}
