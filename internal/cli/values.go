package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// maxPayload is the largest synchronous invoke payload Lambda accepts.
const maxPayload = 6 * 1024 * 1024

// readPayload turns an --payload value into the bytes to send: inline JSON,
// @FILE for a file's contents, or - for standard input. Anything that is not
// one JSON value is refused before a request is made.
func readPayload(arg string, stdin io.Reader) ([]byte, error) {
	var b []byte
	switch {
	case arg == "-":
		var err error
		if b, err = io.ReadAll(io.LimitReader(stdin, maxPayload+1)); err != nil {
			return nil, fmt.Errorf("read payload from stdin: %w", err)
		}
	case strings.HasPrefix(arg, "@"):
		f, err := os.Open(arg[1:])
		if err != nil {
			return nil, usagef("--payload: %v", err)
		}
		defer f.Close()
		if b, err = io.ReadAll(io.LimitReader(f, maxPayload+1)); err != nil {
			return nil, fmt.Errorf("read payload: %w", err)
		}
	default:
		b = []byte(arg)
	}
	if len(b) > maxPayload {
		return nil, usagef("--payload: larger than %d bytes", maxPayload)
	}
	if err := checkJSON(b); err != nil {
		return nil, usagef("--payload: %v", err)
	}
	return b, nil
}

// checkJSON reports why b is not exactly one JSON value.
func checkJSON(b []byte) error {
	if len(strings.TrimSpace(string(b))) == 0 {
		return fmt.Errorf("empty, want JSON")
	}
	if !json.Valid(b) {
		var v any
		err := json.Unmarshal(b, &v)
		if err == nil {
			err = fmt.Errorf("not one JSON value")
		}
		return fmt.Errorf("invalid JSON: %v", err)
	}
	return nil
}

// envFlag collects repeated --env K=V flags.
type envFlag struct{ vars map[string]string }

func (e *envFlag) String() string { return "" }

func (e *envFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok {
		return fmt.Errorf("%q is not KEY=VALUE", s)
	}
	if !validEnvKey(k) {
		return fmt.Errorf("%q is not a valid variable name (letters, digits and _, starting with a letter)", k)
	}
	if e.vars == nil {
		e.vars = map[string]string{}
	}
	if _, dup := e.vars[k]; dup {
		return fmt.Errorf("%s given twice", k)
	}
	e.vars[k] = v
	return nil
}

func validEnvKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		letter := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
		if !letter && (i == 0 || !('0' <= c && c <= '9' || c == '_')) {
			return false
		}
	}
	return true
}

// weightFlag collects repeated --weight VERSION=FRACTION flags, an alias's
// additional version weights.
type weightFlag struct{ weights map[string]float64 }

func (w *weightFlag) String() string { return "" }

func (w *weightFlag) Set(s string) error {
	v, f, ok := strings.Cut(s, "=")
	if !ok || v == "" {
		return fmt.Errorf("%q is not VERSION=WEIGHT", s)
	}
	x, err := strconv.ParseFloat(f, 64)
	if err != nil || x < 0 || x > 1 {
		return fmt.Errorf("weight %q is not a number from 0 to 1", f)
	}
	if w.weights == nil {
		w.weights = map[string]float64{}
	}
	w.weights[v] = x
	return nil
}

// egressFlag collects repeated --egress GRANT flags. The grants themselves
// are moat's to check; the flag only refuses an empty one and "none" beside
// grants. set reports whether the flag was given; grants is then the list
// to send, empty for "none".
type egressFlag struct {
	set    bool
	none   bool
	grants []string
}

func (e *egressFlag) String() string { return "" }

func (e *egressFlag) Set(s string) error {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return fmt.Errorf("empty grant; want DESTINATION:PORTS[/PROTO], or none")
	case s == "none" && len(e.grants) > 0, s != "none" && e.none:
		return fmt.Errorf("none cannot be combined with grants")
	case s == "none":
		e.none = true
	default:
		e.grants = append(e.grants, s)
	}
	e.set = true
	return nil
}
