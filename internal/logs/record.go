package logs

import (
	"errors"
	"time"

	"moat.dev/moat/internal/names"
	"moat.dev/moat/internal/store"
)

// Record is one stored chunk of a function's log. Usually it is everything
// one invocation printed, framed by its START and REPORT lines; output an
// instance prints outside any invocation (its init phase) is stored with an
// empty RequestID. Records are stored as JSON; the field names are part of
// the on-disk format.
type Record struct {
	Time      time.Time `json:"time"`
	Function  string    `json:"function"`
	Version   string    `json:"version"`
	RequestID string    `json:"requestId,omitempty"`
	// Stream names the instance's log stream, as Lambda does:
	// "2026/11/24/[$LATEST]0f3a...".
	Stream string `json:"logStream"`
	// Text is one or more '\n'-terminated lines.
	Text string `json:"message"`
}

// ErrInvalidFunctionName is returned by Reader.Read, and counted as a drop by
// Writer.Write, for a function name outside [A-Za-z0-9_-]{1,64}: such a name
// cannot be a subject token.
var ErrInvalidFunctionName = errors.New("invalid function name")

// validFunctionName reports whether name is a function name moat accepts,
// each of them safe as one subject token.
func validFunctionName(name string) bool { return names.Function(name) }

// subject is where a function's records are published in store.StreamLogs.
func subject(function string) string {
	return store.SubjectLogs + "." + function
}
