// Package rules judges attributed events: built-in detection rules that
// need no learning (shell spawned, reverse shell, credential reads,
// metadata access, denied syscalls, ...) and user rules written in YAML
// with CEL conditions over the event's fields. It holds no I/O.
//
// What it must never do: block, panic on any input, or let a user rule
// run unbounded (CEL programs carry a cost limit; an evaluation error is
// counted and the rule does not match).
package rules

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"strings"
	"sync/atomic"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/ext"
	"go.yaml.in/yaml/v3"

	"moat.dev/moat/internal/detect"
)

// ErrInvalid is wrapped by every error about a rules file.
var ErrInvalid = errors.New("invalid rules")

// MaxFileBytes bounds a rules file; MaxRules the rules in it.
const (
	MaxFileBytes = 1 << 20
	MaxRules     = 256
)

// Rule is one user rule as written in YAML.
type Rule struct {
	Name        string          `yaml:"name" json:"name"`
	Description string          `yaml:"description,omitempty" json:"description,omitempty"`
	Severity    detect.Severity `yaml:"severity" json:"severity"`
	// Condition is a CEL expression over the event's fields that must be
	// a bool.
	Condition string `yaml:"condition" json:"condition"`
	// Functions limits the rule to functions whose name matches one of
	// these path.Match patterns; empty: every function.
	Functions []string `yaml:"functions,omitempty" json:"functions,omitempty"`
}

// File is a rules file.
type File struct {
	Rules []Rule `yaml:"rules"`
	// Disable names built-in rules to turn off.
	Disable []string `yaml:"disable,omitempty"`
}

var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Parse reads a rules file strictly: unknown fields, bad names,
// severities and patterns are errors naming the rule (and the YAML line
// where the decoder knows it). It does not compile conditions; New does.
func Parse(data []byte) (*File, error) {
	if len(data) > MaxFileBytes {
		return nil, invalidf("the file is %d bytes; at most %d are allowed", len(data), MaxFileBytes)
	}
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return &File{}, nil
		}
		return nil, invalidf("%s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if len(f.Rules) > MaxRules {
		return nil, invalidf("%d rules; at most %d are allowed", len(f.Rules), MaxRules)
	}
	seen := map[string]bool{}
	for i, r := range f.Rules {
		where := fmt.Sprintf("rule %d", i+1)
		if r.Name != "" {
			where = fmt.Sprintf("rule %q", r.Name)
		}
		switch {
		case !namePattern.MatchString(r.Name):
			return nil, invalidf("%s: name must match %s", where, namePattern)
		case isBuiltin(r.Name):
			return nil, invalidf("%s: the name is a built-in rule's", where)
		case seen[r.Name]:
			return nil, invalidf("%s: the name is used twice", where)
		case !r.Severity.Valid():
			return nil, invalidf("%s: severity must be info, low, medium, high or critical, not %q", where, r.Severity)
		case strings.TrimSpace(r.Condition) == "":
			return nil, invalidf("%s: condition is required", where)
		case len(r.Condition) > 4096:
			return nil, invalidf("%s: condition is longer than 4096 bytes", where)
		}
		seen[r.Name] = true
		for _, g := range r.Functions {
			if _, err := path.Match(g, ""); err != nil || g == "" {
				return nil, invalidf("%s: functions pattern %q is not a valid pattern", where, g)
			}
		}
	}
	for _, d := range f.Disable {
		if !isBuiltin(d) {
			return nil, invalidf("disable: %q is not a built-in rule", d)
		}
	}
	return &f, nil
}

// Engine evaluates the built-in rules and compiled user rules. It is safe
// for concurrent use; per-instance state lives in a State.
type Engine struct {
	builtins []*builtin
	user     []*userRule
	errs     atomic.Uint64
}

type userRule struct {
	Rule
	prg cel.Program
}

// State is one instance's memory for stateful rules and alert
// de-duplication. It is used by one goroutine at a time.
type State struct {
	written     map[string]bool // paths this instance wrote, created, renamed to or chmod'ed
	writtenOrd  []string
	fetched     bool          // curl or wget ran in the instance
	connects    map[int]int64 // pid → time (ns) of its last inet connect
	denied      []int64       // times (ns) of recent denied events
	burstUntil  int64
	live        int             // processes forked and not yet exited (process-storm)
	stormRaised bool            // process-storm raised, once per instance
	sweeps      map[int]*sweep  // directories each process listed lately (directory-sweep)
	seen        map[string]bool // alert keys already raised
	suppressed  uint64
}

const maxRemembered = 1024

// NewState returns a fresh per-instance state.
func (e *Engine) NewState() *State {
	return &State{written: map[string]bool{}, connects: map[int]int64{}, seen: map[string]bool{}, sweeps: map[int]*sweep{}}
}

// Suppressed counts the alerts de-duplicated away.
func (s *State) Suppressed() uint64 { return s.suppressed }

// New compiles a rules file (nil: built-ins only).
func New(f *File) (*Engine, error) {
	e := &Engine{}
	disabled := map[string]bool{}
	if f != nil {
		for _, d := range f.Disable {
			disabled[d] = true
		}
	}
	for _, b := range builtinRules {
		if !disabled[b.Name] {
			e.builtins = append(e.builtins, b)
		}
	}
	if f == nil || len(f.Rules) == 0 {
		return e, nil
	}
	env, err := celEnv()
	if err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	for _, r := range f.Rules {
		ast, iss := env.Compile(r.Condition)
		if iss != nil && iss.Err() != nil {
			return nil, invalidf("rule %q: condition: %s", r.Name, strings.ReplaceAll(iss.Err().Error(), "\n", " "))
		}
		if ast.OutputType() != cel.BoolType {
			return nil, invalidf("rule %q: condition must be a bool, not %s", r.Name, ast.OutputType())
		}
		prg, err := env.Program(ast, cel.CostLimit(10000), cel.InterruptCheckFrequency(100))
		if err != nil {
			return nil, invalidf("rule %q: %v", r.Name, err)
		}
		e.user = append(e.user, &userRule{Rule: r, prg: prg})
	}
	return e, nil
}

// EvalErrors counts user rule evaluations that failed.
func (e *Engine) EvalErrors() uint64 { return e.errs.Load() }

// variables are the CEL variables of a user rule: the event's fields,
// named as in its JSON.
var variables = []struct {
	name string
	typ  *cel.Type
}{
	{"kind", cel.StringType}, {"function", cel.StringType}, {"version", cel.StringType},
	{"instance", cel.StringType}, {"request_id", cel.StringType}, {"phase", cel.StringType},
	{"runtime", cel.StringType}, {"pid", cel.IntType}, {"ppid", cel.IntType}, {"uid", cel.IntType},
	{"comm", cel.StringType}, {"exe", cel.StringType}, {"syscall", cel.StringType},
	{"result", cel.IntType}, {"errno", cel.StringType}, {"signal", cel.IntType},
	{"path", cel.StringType}, {"new_path", cel.StringType}, {"argv", cel.ListType(cel.StringType)},
	{"flags", cel.IntType}, {"mode", cel.IntType}, {"intent", cel.ListType(cel.StringType)},
	{"family", cel.StringType}, {"addr", cel.StringType}, {"port", cel.IntType},
	{"ids", cel.ListType(cel.IntType)}, {"truncated", cel.BoolType},
	{"target", cel.StringType}, {"fd", cel.IntType}, {"length", cel.IntType}, {"times_set", cel.BoolType},
	{"exe_name", cel.StringType}, {"fileless", cel.BoolType}, {"asked", cel.StringType}, {"name", cel.StringType},
	{"opened", cel.StringType}, {"env", cel.ListType(cel.StringType)},
}

// Variables names the CEL variables rules can use.
func Variables() []string {
	out := make([]string, len(variables))
	for i, v := range variables {
		out[i] = v.name
	}
	return out
}

func celEnv() (*cel.Env, error) {
	opts := []cel.EnvOption{ext.Strings()}
	for _, v := range variables {
		opts = append(opts, cel.Variable(v.name, v.typ))
	}
	return cel.NewEnv(opts...)
}

// activation is an event as CEL variables, without building a map.
type activation struct{ ev *detect.Event }

func (a activation) ResolveName(name string) (any, bool) {
	e := a.ev
	switch name {
	case "kind":
		return e.Kind, true
	case "function":
		return e.Function, true
	case "version":
		return e.Version, true
	case "instance":
		return e.Instance, true
	case "request_id":
		return e.RequestID, true
	case "phase":
		return e.Phase, true
	case "runtime":
		return e.Runtime, true
	case "pid":
		return int64(e.PID), true
	case "ppid":
		return int64(e.PPID), true
	case "uid":
		return int64(e.UID), true
	case "comm":
		return e.Comm, true
	case "exe":
		return e.Exe, true
	case "syscall":
		return e.Syscall, true
	case "result":
		return int64(e.Result), true
	case "errno":
		return e.Errno, true
	case "signal":
		return int64(e.Signal), true
	case "path":
		return e.Path, true
	case "new_path":
		return e.NewPath, true
	case "argv":
		if e.Argv == nil {
			return []string{}, true
		}
		return e.Argv, true
	case "flags":
		return int64(e.Flags), true
	case "mode":
		return int64(e.Mode), true
	case "intent":
		if e.Intent == nil {
			return []string{}, true
		}
		return e.Intent, true
	case "family":
		return e.Family, true
	case "addr":
		return e.Addr, true
	case "port":
		return int64(e.Port), true
	case "ids":
		if e.IDs == nil {
			return []int64{}, true
		}
		return e.IDs, true
	case "truncated":
		return e.Truncated, true
	case "target":
		return e.Target, true
	case "fd":
		return int64(e.FD), true
	case "length":
		return e.Length, true
	case "times_set":
		return e.TimesSet, true
	case "exe_name":
		return e.ExeName, true
	case "fileless":
		return e.Fileless, true
	case "asked":
		return e.Asked, true
	case "opened":
		return e.Opened, true
	case "env":
		if e.Env == nil {
			return []string{}, true
		}
		return e.Env, true
	case "name":
		return e.Name, true
	}
	return nil, false
}

func (a activation) Parent() cel.Activation { return nil }

// Eval judges one event of the instance whose state is st and returns
// the alerts it raises (nil when none).
func (e *Engine) Eval(st *State, ev *detect.Event) []detect.Alert {
	var out []detect.Alert
	// The file the kernel opened, when the path named another (a
	// symlink, /proc/self): a rule on paths matches either.
	var opened *detect.Event
	if ev.Opened != "" {
		o := *ev
		o.Path, o.Opened = ev.Opened, ""
		opened = &o
	}
	for _, b := range e.builtins {
		if !b.kinds[ev.Kind] {
			continue
		}
		m := b.match(st, ev)
		if m == nil && opened != nil {
			m = b.match(st, opened)
		}
		if m != nil {
			out = st.add(out, b.Name, b.Severity, m, ev)
		}
	}
	for _, r := range e.user {
		if !r.applies(ev.Function) {
			continue
		}
		v, _, err := r.prg.Eval(activation{ev})
		if err != nil {
			e.errs.Add(1)
			continue
		}
		if b, ok := v.Value().(bool); ok && b {
			m := &match{key: ev.Kind + "|" + ev.Path + "|" + ev.Addr, summary: r.Name + ": " + describe(ev)}
			if r.Description != "" {
				m.summary = r.Description + ": " + describe(ev)
			}
			out = st.add(out, r.Name, r.Severity, m, ev)
		}
	}
	st.remember(ev)
	return out
}

func (r *userRule) applies(function string) bool {
	if len(r.Functions) == 0 {
		return true
	}
	for _, g := range r.Functions {
		if ok, _ := path.Match(g, function); ok {
			return true
		}
	}
	return false
}

// match is what a rule found: a de-duplication key, a summary, and
// earlier evidence besides the event itself.
type match struct {
	key      string
	summary  string
	evidence []detect.Event
}

func (st *State) add(out []detect.Alert, rule string, sev detect.Severity, m *match, ev *detect.Event) []detect.Alert {
	scope := ev.RequestID
	if scope == "" {
		scope = ev.Phase
	}
	key := rule + "\x00" + scope + "\x00" + m.key
	if st.seen[key] {
		st.suppressed++
		return out
	}
	if len(st.seen) >= 4096 {
		clear(st.seen)
	}
	st.seen[key] = true
	evidence := append(append([]detect.Event{}, m.evidence...), *ev)
	if len(evidence) > 8 {
		evidence = evidence[len(evidence)-8:]
	}
	return append(out, detect.Alert{
		Time:      ev.Time,
		Source:    detect.SourceRule,
		Rule:      rule,
		Severity:  sev,
		Summary:   m.summary,
		Function:  ev.Function,
		Version:   ev.Version,
		Instance:  ev.Instance,
		RequestID: ev.RequestID,
		Evidence:  evidence,
	})
}

// remember keeps what stateful rules need of an event. A file write,
// rename, chmod or exec the kernel refused changed nothing and is not
// remembered (a refused connect is: the attempt is what a reverse shell
// shows).
func (st *State) remember(ev *detect.Event) {
	if ev.Failed() && ev.Kind != "connect" {
		return
	}
	switch ev.Kind {
	case "open":
		for _, in := range ev.Intent {
			if in == "write" || in == "create" || in == "trunc" {
				st.wrote(ev.Path)
				st.wrote(ev.Opened)
				break
			}
		}
	case "rename", "link", "symlink":
		st.wrote(ev.NewPath) // a new name for something: it can be run by it
	case "chmod", "truncate", "mknod":
		st.wrote(ev.Path)
	case "exec":
		switch base(ev.Path) {
		case "curl", "wget", "fetch":
			st.fetched = true
		}
	case "connect":
		if ev.Family == "inet" || ev.Family == "inet6" {
			if len(st.connects) >= maxRemembered {
				clear(st.connects)
			}
			st.connects[ev.PID] = ev.Time.UnixNano()
		}
	}
}

func (st *State) wrote(p string) {
	if p == "" || st.written[p] {
		return
	}
	if len(st.writtenOrd) >= maxRemembered {
		delete(st.written, st.writtenOrd[0])
		st.writtenOrd = st.writtenOrd[1:]
	}
	st.written[p] = true
	st.writtenOrd = append(st.writtenOrd, p)
}

// describe is a short account of an event for summaries.
func describe(ev *detect.Event) string {
	switch ev.Kind {
	case "exec":
		s := ev.Path
		if len(ev.Argv) > 1 {
			s += " " + strings.Join(ev.Argv[1:], " ")
		}
		if len(s) > 200 {
			s = s[:200] + "…"
		}
		return "exec " + s
	case "connect", "sendto":
		return ev.Kind + " to " + ev.Where()
	case "denied":
		return ev.Syscall + " refused by the sandbox"
	case "setid":
		return fmt.Sprintf("%s%v", ev.Syscall, ev.IDs)
	case "capset":
		return "capset"
	case "rename":
		return "rename " + ev.Path + " to " + ev.NewPath
	}
	return ev.Kind + " " + ev.Path
}

func base(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}
