package profile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// header opens every profile document: what the fields mean and how
// patterns are written.
const header = `# moat behaviour profile of one function version.
#
# state           learning: the profile grows from what the version does;
#                 learned: the window ended, anything outside is an alert;
#                 approved: reviewed (required for enforce mode).
# learning        the window: it ends after "invocations" invocations or
#                 once "duration" (such as 90m or 168h) has passed since
#                 "started", whichever comes first; 0 means no bound.
#                 "seen" counts the invocations so far.
# inherited_from  the version whose profile this one started from.
# exec            executables run.
# read            paths read. The code, system files, the usual /etc files
#                 and the process's own /proc/self entries (but environ and
#                 mem) are never listed.
# write           paths written, created, truncated, removed, renamed or
#                 chmod'ed. A path listed here may also be read.
# connect         destinations connected or sent to: inet:ADDR:PORT,
#                 inet6:[ADDR]:PORT or unix:PATH (unix:@NAME for an
#                 abstract socket). ADDR may be a CIDR block
#                 (inet:10.0.0.0/8:5432) and PORT may be *.
# drift           what this version did that inherited_from never did,
#                 each reported once.
#
# Paths are absolute patterns: in a segment, * stands for any characters
# but / (/tmp/job-*/out.txt, /tmp/*.json); a last segment ** stands for
# everything beneath (/tmp/**). No empty, . or .. segments.
`

// document is the YAML form of a profile.
type document struct {
	Function      string         `yaml:"function"`
	Version       string         `yaml:"version"`
	State         State          `yaml:"state"`
	Learning      windowDocument `yaml:"learning"`
	InheritedFrom string         `yaml:"inherited_from,omitempty"`
	Exec          []string       `yaml:"exec"`
	Read          []string       `yaml:"read"`
	Write         []string       `yaml:"write"`
	Connect       []string       `yaml:"connect"`
	Drift         []string       `yaml:"drift,omitempty"`
	Updated       time.Time      `yaml:"updated"`
}

type windowDocument struct {
	Invocations int       `yaml:"invocations"`
	Duration    string    `yaml:"duration"`
	Seen        int       `yaml:"seen"`
	Started     time.Time `yaml:"started"`
}

// YAML encodes the profile: a header explaining the fields, then the
// fields in a fixed order, every list sorted and without duplicates,
// times in UTC. The same profile always gives the same bytes.
func (p *Profile) YAML() []byte {
	d := document{
		Function: p.Function, Version: p.Version, State: p.State, InheritedFrom: p.InheritedFrom,
		Learning: windowDocument{
			Invocations: p.Learning.Invocations, Duration: formatDuration(p.Learning.Duration),
			Seen: p.Learning.Seen, Started: p.Learning.Started.UTC(),
		},
		Exec: normalized(p.Exec), Read: normalized(p.Read), Write: normalized(p.Write), Connect: normalized(p.Connect),
		Drift:   normalized(p.Drifted),
		Updated: p.Updated.UTC(),
	}
	if len(d.Drift) == 0 {
		d.Drift = nil
	}
	var buf bytes.Buffer
	buf.WriteString(header)
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	// Encoding strings, numbers and times cannot fail.
	_ = enc.Encode(d)
	_ = enc.Close()
	return buf.Bytes()
}

// normalized returns a sorted copy of l without duplicates, never nil.
func normalized(l []string) []string {
	out := slices.Clone(l)
	if out == nil {
		out = []string{}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// formatDuration writes a duration the shortest way ParseDuration reads
// back: 168h, 1h30m, 90s, 0s.
func formatDuration(d time.Duration) string {
	if d <= 0 || d%time.Second != 0 {
		if d == 0 {
			return "0s"
		}
		return d.String()
	}
	var b strings.Builder
	for _, u := range []struct {
		unit time.Duration
		name string
	}{{time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if n := d / u.unit; n > 0 {
			b.WriteString(strconv.FormatInt(int64(n), 10) + u.name)
			d -= n * u.unit
		}
	}
	return b.String()
}

// Parse reads a profile document strictly, as from `moat profile edit`
// (untrusted input): one YAML document, a mapping of the known fields
// only, each once, no aliases or custom tags, every value of its type;
// then everything Validate checks. Errors wrap ErrInvalid and name the
// line. Lists come back sorted and without duplicates.
func Parse(data []byte) (*Profile, error) {
	if len(data) > MaxDocBytes {
		return nil, fmt.Errorf("%w: the document has %d bytes; at most %d are allowed", ErrInvalid, len(data), MaxDocBytes)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: the document is empty", ErrInvalid)
		}
		return nil, fmt.Errorf("%w: %s", ErrInvalid, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		line := extra.Line
		if err != nil {
			return nil, fmt.Errorf("%w: %s", ErrInvalid, strings.TrimPrefix(err.Error(), "yaml: "))
		}
		return nil, fmt.Errorf("%w: line %d: a second YAML document; a profile is one document", ErrInvalid, line)
	}
	r := reader{}
	p := r.profile(&root)
	if r.err != nil {
		return nil, r.err
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

// reader walks a document's nodes, keeping the first error.
type reader struct{ err error }

func (r *reader) fail(n *yaml.Node, format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: line %d: %s", ErrInvalid, n.Line, fmt.Sprintf(format, args...))
	}
}

// fields maps a mapping node's keys to their values, refusing keys not
// in known, repeated keys and keys that are not plain strings.
func (r *reader) fields(n *yaml.Node, where string, known []string) map[string]*yaml.Node {
	if n.Kind != yaml.MappingNode {
		r.fail(n, "%s must be a mapping of %s", where, strings.Join(known, ", "))
		return nil
	}
	out := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" || k.Style&yaml.TaggedStyle != 0 {
			r.fail(k, "%s: a key must be a field name", where)
			return nil
		}
		if !slices.Contains(known, k.Value) {
			r.fail(k, "%s: unknown field %q (known: %s)", where, k.Value, strings.Join(known, ", "))
			return nil
		}
		if _, dup := out[k.Value]; dup {
			r.fail(k, "%s: field %q appears twice", where, k.Value)
			return nil
		}
		if v.Kind == yaml.AliasNode {
			r.fail(v, "%s: aliases (*name) are not allowed", k.Value)
			return nil
		}
		out[k.Value] = v
	}
	return out
}

func (r *reader) profile(root *yaml.Node) *Profile {
	doc := root
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) != 1 {
			r.fail(doc, "the document is empty")
			return nil
		}
		doc = doc.Content[0]
	}
	f := r.fields(doc, "the profile", []string{"function", "version", "state", "learning", "inherited_from", "exec", "read", "write", "connect", "drift", "updated"})
	if r.err != nil {
		return nil
	}
	p := &Profile{
		Function:      r.str(f["function"], "function"),
		Version:       r.str(f["version"], "version"),
		State:         State(r.str(f["state"], "state")),
		InheritedFrom: r.str(f["inherited_from"], "inherited_from"),
		Exec:          r.list(f["exec"], CategoryExec),
		Read:          r.list(f["read"], CategoryRead),
		Write:         r.list(f["write"], CategoryWrite),
		Connect:       r.list(f["connect"], CategoryConnect),
		Drifted:       r.list(f["drift"], "drift"),
		Updated:       r.time(f["updated"], "updated"),
	}
	if len(p.Drifted) == 0 {
		p.Drifted = nil
	}
	if n := f["learning"]; n != nil {
		w := r.fields(n, "learning", []string{"invocations", "duration", "seen", "started"})
		p.Learning = Window{
			Invocations: r.int(w["invocations"], "learning.invocations"),
			Duration:    r.duration(w["duration"], "learning.duration"),
			Seen:        r.int(w["seen"], "learning.seen"),
			Started:     r.time(w["started"], "learning.started"),
		}
	}
	// Line-numbered checks of what Validate also checks.
	for _, c := range []struct {
		name string
		msg  func() string
	}{
		{"function", func() string { return checkFunction(p.Function) }},
		{"version", func() string { return checkVersion(p.Version) }},
		{"state", func() string { return checkState(p.State) }},
		{"inherited_from", func() string { return checkInherited(p.InheritedFrom, p.Version) }},
		{"updated", func() string { return checkTime(p.Updated) }},
	} {
		if msg := c.msg(); msg != "" && r.err == nil {
			n := f[c.name]
			if n == nil {
				n = doc
			}
			r.fail(n, "%s: %s", c.name, msg)
		}
	}
	if n := f["learning"]; n != nil && r.err == nil {
		if msg := checkWindow(p.Learning); msg != "" {
			r.fail(n, "learning: %s", msg)
		} else if msg := checkTime(p.Learning.Started); msg != "" {
			r.fail(n, "learning.started: %s", msg)
		}
	}
	return p
}

// scalar returns a scalar's text, refusing other nodes and explicit
// tags; a null is "".
func (r *reader) scalar(n *yaml.Node, name string) (string, bool) {
	if n == nil || r.err != nil {
		return "", false
	}
	if n.Kind != yaml.ScalarNode {
		r.fail(n, "%s must be a single value", name)
		return "", false
	}
	if n.Style&yaml.TaggedStyle != 0 {
		r.fail(n, "%s: explicit tags (%s) are not allowed", name, n.Tag)
		return "", false
	}
	if n.ShortTag() == "!!null" {
		return "", true
	}
	return n.Value, true
}

func (r *reader) str(n *yaml.Node, name string) string {
	s, _ := r.scalar(n, name)
	return s
}

func (r *reader) int(n *yaml.Node, name string) int {
	s, ok := r.scalar(n, name)
	if !ok || s == "" {
		return 0
	}
	v, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		r.fail(n, "%s: %q is not a whole number (0 to %d)", name, s, int32(^uint32(0)>>1))
		return 0
	}
	return int(v)
}

func (r *reader) duration(n *yaml.Node, name string) time.Duration {
	s, ok := r.scalar(n, name)
	if !ok || s == "" {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		r.fail(n, "%s: %q is not a duration such as 90m or 168h", name, s)
		return 0
	}
	return d
}

func (r *reader) time(n *yaml.Node, name string) time.Time {
	s, ok := r.scalar(n, name)
	if !ok || s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		r.fail(n, "%s: %q is not a time such as 2026-01-02T15:04:05Z", name, s)
		return time.Time{}
	}
	return t.UTC()
}

// list reads a list of entries, checking each with its line.
func (r *reader) list(n *yaml.Node, cat string) []string {
	out := []string{}
	if n == nil || r.err != nil {
		return out
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return out
	}
	if n.Kind != yaml.SequenceNode {
		r.fail(n, "%s must be a list", cat)
		return out
	}
	if len(n.Content) > MaxItems {
		r.fail(n, "%s: %d entries; at most %d are allowed", cat, len(n.Content), MaxItems)
		return out
	}
	for _, c := range n.Content {
		if c.Kind == yaml.AliasNode {
			r.fail(c, "%s: aliases (*name) are not allowed", cat)
			return out
		}
		s, ok := r.scalar(c, cat+" entry")
		if !ok {
			return out
		}
		var msg string
		if cat == "drift" {
			msg = checkDrift(s)
		} else {
			msg = checkItem(cat, s)
		}
		if msg != "" {
			r.fail(c, "%s: %s", cat, msg)
			return out
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return slices.Compact(out)
}
