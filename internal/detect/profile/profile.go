package profile

import (
	"errors"
	"fmt"
	"net/netip"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"moat.dev/moat/internal/detect"
)

// Errors callers act on.
var (
	// ErrInvalid: a document or profile that does not validate (the
	// caller's fault when it came from an edit).
	ErrInvalid = errors.New("invalid profile")
	// ErrTransition: a change of state the life of a profile does not
	// allow.
	ErrTransition = errors.New("invalid profile state change")
	// ErrNotBase: a profile given as the base of another is not the one
	// it inherited from.
	ErrNotBase = errors.New("not the profile this one inherited from")
)

// State is where a profile is in its life.
type State string

// States. A profile starts learning; the end of its window makes it
// learned, and a user's approval makes a learning or learned profile
// approved. No other change exists (see transitions).
const (
	StateLearning State = "learning"
	StateLearned  State = "learned"
	StateApproved State = "approved"
)

// transitions lists the allowed changes of state; anything else is an
// error.
var transitions = map[State][]State{
	StateLearning: {StateLearned, StateApproved},
	StateLearned:  {StateApproved},
}

// Categories of what a profile lists.
const (
	CategoryExec    = "exec"
	CategoryRead    = "read"
	CategoryWrite   = "write"
	CategoryConnect = "connect"
)

// Limits on a profile: entries per list, bytes per entry, bytes of all
// entries together, bytes of a document.
const (
	MaxItems      = 4096
	MaxItemLen    = 4096
	MaxTotalBytes = 2 << 20
	MaxDocBytes   = 8 << 20
)

// Window is a learning window. It ends after Invocations invocations or
// once Duration has passed since Started, whichever comes first; a zero
// bound does not apply (with both zero, learning lasts until approval).
type Window struct {
	Invocations int           `json:"invocations"`
	Duration    time.Duration `json:"duration"`
	Seen        int           `json:"seen"` // invocations observed so far
	Started     time.Time     `json:"started"`
}

// Profile is one function version's behaviour profile: the executables
// it runs, the paths it reads and writes beyond the code and system
// files, and the destinations it connects to (see quiet.go for what is
// never listed, generalize.go for how learned paths become patterns).
//
// A Profile is not safe for concurrent use; Check may refresh its
// compiled form. Replace a list (p.Write = ...) rather than changing its
// entries in place, or call Validate afterwards: either makes the next
// lookup use the new entries.
type Profile struct {
	Function      string `yaml:"function" json:"function"`
	Version       string `yaml:"version" json:"version"` // "$LATEST" or a number
	State         State  `yaml:"state" json:"state"`
	Learning      Window `yaml:"learning" json:"learning"`
	InheritedFrom string `yaml:"inherited_from,omitempty" json:"inherited_from,omitempty"` // the version it started from

	Exec    []string `yaml:"exec" json:"exec"`       // executables run (exact paths, or patterns)
	Read    []string `yaml:"read" json:"read"`       // path patterns read outside the code and system paths
	Write   []string `yaml:"write" json:"write"`     // path patterns written, created, truncated, unlinked, renamed or chmod'ed
	Connect []string `yaml:"connect" json:"connect"` // inet:ADDR:PORT, inet6:[ADDR]:PORT, unix:PATH
	// Drifted records what this version did beyond the profile it
	// inherited, as "CATEGORY ITEM" ("exec /bin/sh"), each reported once.
	Drifted []string `yaml:"drift,omitempty" json:"drift,omitempty"`

	Updated time.Time `yaml:"updated" json:"updated"`

	m     *compiled // the lists, compiled; see matcher
	base  *compiled // the inherited profile's lists, for Drift
	drift *compiled // Drifted, compiled
}

// Item is one entry a profile lists, or would list.
type Item struct {
	Category string // exec, read, write or connect
	Value    string // a path pattern or a destination
}

// String gives "CATEGORY VALUE", as Drifted lists it.
func (it Item) String() string { return it.Category + " " + it.Value }

// Deviation is an event's action outside a profile.
type Deviation struct {
	Category string
	// Item is the entry that would cover the action (the generalized
	// path, or the destination): what a user would add, and a stable key
	// to report a deviation once by.
	Item string
	// Actual is the path or destination the event names.
	Actual string
	Event  detect.Event
}

// New starts a learning profile.
func New(function, version string, w Window, now time.Time) *Profile {
	now = now.UTC()
	w.Seen, w.Started = 0, now
	return &Profile{
		Function: function, Version: version, State: StateLearning, Learning: w,
		Exec: []string{}, Read: []string{}, Write: []string{}, Connect: []string{},
		Updated: now,
	}
}

// Inherit starts a new version's profile from base (which must not be
// nil): a copy of its entries, learning anew. What the new version does
// beyond base is drift (see Drift).
func Inherit(base *Profile, version string, w Window, now time.Time) *Profile {
	p := New(base.Function, version, w, now)
	p.InheritedFrom = base.Version
	p.Exec = slices.Clone(base.Exec)
	p.Read = slices.Clone(base.Read)
	p.Write = slices.Clone(base.Write)
	p.Connect = slices.Clone(base.Connect)
	for _, l := range []*[]string{&p.Exec, &p.Read, &p.Write, &p.Connect} {
		if *l == nil {
			*l = []string{}
		}
	}
	p.base = compile(base)
	return p
}

// LinkBase gives a profile read back from storage the profile it
// inherited from, so that Drift works again. It returns ErrNotBase when
// base is not of the same function and version InheritedFrom.
func (p *Profile) LinkBase(base *Profile) error {
	if base == nil || p.InheritedFrom == "" || base.Function != p.Function || base.Version != p.InheritedFrom {
		return fmt.Errorf("link the base of %s:%s: %w", p.Function, p.Version, ErrNotBase)
	}
	p.base = compile(base)
	return nil
}

// transition changes the state if the change is allowed.
func (p *Profile) transition(to State, now time.Time) error {
	if !slices.Contains(transitions[p.State], to) {
		return fmt.Errorf("%w: the profile of %s:%s is %s and cannot become %s", ErrTransition, p.Function, p.Version, p.State, to)
	}
	p.State = to
	p.Updated = now.UTC()
	return nil
}

// Invoked counts an invocation while learning. It returns true when this
// invocation ends the window; the profile is then learned.
func (p *Profile) Invoked(now time.Time) bool {
	if p.State != StateLearning {
		return false
	}
	p.Learning.Seen++
	p.Updated = now.UTC()
	w := p.Learning
	if w.Invocations > 0 && w.Seen >= w.Invocations || w.Duration > 0 && !now.Before(w.Started.Add(w.Duration)) {
		return p.transition(StateLearned, now) == nil
	}
	return false
}

// Approve makes a learning (ending its window early) or learned profile
// approved. It returns ErrTransition in any other state.
func (p *Profile) Approve(now time.Time) error {
	return p.transition(StateApproved, now)
}

// subject is one thing an event does that a profile may list: its
// category and the clean absolute path, or the destination.
type subject struct {
	cat  string
	path string         // exec, read, write; unix connect: the socket path
	ap   netip.AddrPort // inet and inet6 connect
}

func (s *subject) isUnix() bool { return s.cat == CategoryConnect && !s.ap.IsValid() }

// actual is the subject as a profile entry would name it exactly.
func (s *subject) actual() string {
	switch {
	case s.cat != CategoryConnect:
		return s.path
	case s.isUnix():
		return "unix:" + s.path
	case s.ap.Addr().Is4():
		return "inet:" + s.ap.String()
	default:
		return "inet6:" + s.ap.String()
	}
}

// item is the entry that would cover the subject.
func (s *subject) item() string {
	if s.cat == CategoryConnect {
		return s.actual()
	}
	return generalize(s.path)
}

// subjects fills buf with what an event does that profiles consider
// (rename names two paths) and returns it; it returns none for events
// and paths profiles ignore.
func subjects(ev *detect.Event, buf *[2]subject) []subject {
	n := 0
	addPath := func(cat, p string) {
		if p == "" {
			return
		}
		p = absolute(p)
		switch {
		case cat == CategoryRead && quietRead(p), cat == CategoryWrite && quietWrite(p):
			return
		}
		buf[n] = subject{cat: cat, path: p}
		n++
	}
	switch ev.Kind {
	case "exec":
		p := ev.Path
		if p == "" {
			p = ev.Exe
		}
		addPath(CategoryExec, p)
	case "open":
		write := false
		for _, in := range ev.Intent {
			if in == "write" || in == "create" || in == "trunc" {
				write = true
			}
		}
		switch {
		case quietOpen(ev, write):
		case write:
			addPath(CategoryWrite, ev.Path)
		default:
			addPath(CategoryRead, ev.Path)
		}
	case "unlink", "chmod":
		addPath(CategoryWrite, ev.Path)
	case "rename":
		addPath(CategoryWrite, ev.Path)
		addPath(CategoryWrite, ev.NewPath)
	case "connect", "sendto":
		switch ev.Family {
		case "inet", "inet6":
			a, err := netip.ParseAddr(ev.Addr)
			if err != nil || ev.Port < 0 || ev.Port > 65535 {
				break
			}
			ap := netip.AddrPortFrom(a.Unmap().WithZone(""), uint16(ev.Port))
			if ap == runtimeAPI {
				break
			}
			buf[n] = subject{cat: CategoryConnect, ap: ap}
			n++
		case "unix":
			if ev.Addr == "" {
				break
			}
			p := ev.Addr
			if p[0] != '@' {
				p = absolute(p)
			}
			buf[n] = subject{cat: CategoryConnect, path: printable(p)}
			n++
		}
	}
	return buf[:n]
}

// workDir is where every instance runs, and what relative paths are
// relative to. (Events do not say which directory descriptor a
// relative path was resolved from; the working directory is by far the
// most common.)
const workDir = "/var/task"

// absolute makes a path clean and absolute.
func absolute(p string) string {
	if p[0] != '/' {
		return path.Join(workDir, p)
	}
	return path.Clean(p)
}

// printable replaces what is not printable UTF-8 in a socket path by
// '?', so that the entry reads the same in YAML.
func printable(s string) string {
	ok := true
	for _, r := range s {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			r = '?'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// compiled is a profile's lists made ready for lookups.
type compiled struct {
	exec, read, write trie
	connect           dests
	// What the lists were compiled from, to notice a replaced list.
	src [4]listID
}

type listID struct {
	n     int
	first *string
}

func idOf(l []string) listID {
	if len(l) == 0 {
		return listID{}
	}
	return listID{n: len(l), first: &l[0]}
}

func (p *Profile) lists() [4][]string { return [4][]string{p.Exec, p.Read, p.Write, p.Connect} }

func compile(p *Profile) *compiled {
	c := &compiled{}
	for i, l := range p.lists() {
		c.src[i] = idOf(l)
	}
	compileInto(c, p.Exec, p.Read, p.Write, p.Connect)
	return c
}

func compileInto(c *compiled, exec, read, write, connect []string) {
	for _, it := range exec {
		c.exec.add(it)
	}
	for _, it := range read {
		c.read.add(it)
	}
	for _, it := range write {
		c.write.add(it)
	}
	for _, it := range connect {
		c.connect.add(it)
	}
}

// matcher returns the compiled lists, compiling them again if a list was
// replaced or changed length.
func (p *Profile) matcher() *compiled {
	if p.m != nil {
		fresh := true
		for i, l := range p.lists() {
			if p.m.src[i] != idOf(l) {
				fresh = false
				break
			}
		}
		if fresh {
			return p.m
		}
	}
	p.m = compile(p)
	return p.m
}

// covers reports whether the compiled lists cover a subject. A path the
// profile lets the function write it may also read.
func (c *compiled) covers(s *subject) bool {
	switch s.cat {
	case CategoryExec:
		return c.exec.match(s.path)
	case CategoryRead:
		return c.read.match(s.path) || c.write.match(s.path)
	case CategoryWrite:
		return c.write.match(s.path)
	case CategoryConnect:
		if s.isUnix() {
			return c.connect.matchUnix(s.path)
		}
		return c.connect.matchAddr(s.ap)
	}
	return false
}

func (p *Profile) list(cat string) *[]string {
	switch cat {
	case CategoryExec:
		return &p.Exec
	case CategoryRead:
		return &p.Read
	case CategoryWrite:
		return &p.Write
	}
	return &p.Connect
}

// Observe learns from an event while the profile is learning: each
// thing it does that the profile does not cover yet is added, as the
// entry generalization makes of it. It reports the first entry added
// and whether one was. An entry is not added when its list holds
// MaxItems entries, it is longer than MaxItemLen, or all entries would
// exceed MaxTotalBytes; the action then stays outside the profile.
func (p *Profile) Observe(ev *detect.Event) (Item, bool) {
	if p.State != StateLearning {
		return Item{}, false
	}
	var buf [2]subject
	var first Item
	added := false
	for _, s := range subjects(ev, &buf) {
		if p.matcher().covers(&s) {
			continue
		}
		it := s.item()
		l := p.list(s.cat)
		if len(*l) >= MaxItems || len(it) > MaxItemLen || p.totalBytes()+len(it) > MaxTotalBytes {
			continue
		}
		*l = add(*l, it, s.cat)
		p.m = nil
		if !added {
			first, added = Item{Category: s.cat, Value: it}, true
		}
	}
	return first, added
}

// add returns a new list: l with entry it, without the entries it
// covers, collapsed (rule 4 of generalize.go) and sorted.
func add(l []string, it, cat string) []string {
	out := make([]string, 0, len(l)+1)
	if cat == CategoryConnect {
		out = append(out, l...)
	} else {
		pt := compilePattern(it)
		for _, x := range l {
			if px := compilePattern(x); !pt.covers(&px) {
				out = append(out, x)
			}
		}
	}
	out = append(out, it)
	slices.Sort(out)
	if cat == CategoryConnect {
		return out
	}
	return collapse(out, it, cat == CategoryExec)
}

func (p *Profile) totalBytes() int {
	n := 0
	for _, l := range p.lists() {
		for _, it := range l {
			n += len(it)
		}
	}
	for _, it := range p.Drifted {
		n += len(it)
	}
	return n
}

// Check compares an event with a learned or approved profile: the first
// thing it does outside the profile is a deviation. Attempts count like
// successes. A learning profile reports nothing.
func (p *Profile) Check(ev *detect.Event) (Deviation, bool) {
	if p.State == StateLearning {
		return Deviation{}, false
	}
	var buf [2]subject
	ss := subjects(ev, &buf)
	if len(ss) == 0 {
		return Deviation{}, false
	}
	m := p.matcher()
	for i := range ss {
		if !m.covers(&ss[i]) {
			return Deviation{Category: ss[i].cat, Item: ss[i].item(), Actual: ss[i].actual(), Event: *ev}, true
		}
	}
	return Deviation{}, false
}

// Drift reports the first thing an event does that the profile this one
// inherited did not cover, once per entry: it records the entry in
// Drifted and reports nothing for what Drifted already covers. It
// reports nothing for a profile that inherited nothing, or whose base is
// not known (after Parse, until LinkBase), or once Drifted is full.
func (p *Profile) Drift(ev *detect.Event) (Deviation, bool) {
	if p.base == nil {
		return Deviation{}, false
	}
	var buf [2]subject
	for _, s := range subjects(ev, &buf) {
		if p.base.covers(&s) || p.driftMatcher().covers(&s) {
			continue
		}
		it := Item{Category: s.cat, Value: s.item()}
		key := it.String()
		if len(p.Drifted) >= MaxItems || len(key) > MaxItemLen || p.totalBytes()+len(key) > MaxTotalBytes {
			return Deviation{}, false
		}
		i, found := slices.BinarySearch(p.Drifted, key)
		if found {
			continue
		}
		p.Drifted = slices.Insert(slices.Clip(p.Drifted), i, key)
		p.drift = nil
		return Deviation{Category: s.cat, Item: it.Value, Actual: s.actual(), Event: *ev}, true
	}
	return Deviation{}, false
}

// driftMatcher compiles Drifted.
func (p *Profile) driftMatcher() *compiled {
	if p.drift == nil {
		var l [4][]string
		for _, d := range p.Drifted {
			cat, it, _ := strings.Cut(d, " ")
			if i := slices.Index([]string{CategoryExec, CategoryRead, CategoryWrite, CategoryConnect}, cat); i >= 0 {
				l[i] = append(l[i], it)
			}
		}
		p.drift = &compiled{}
		compileInto(p.drift, l[0], l[1], l[2], l[3])
	}
	return p.drift
}

// displayed is how a summary names an actual path or destination.
func displayed(d Deviation) string {
	if d.Actual == "" {
		d.Actual = d.Item
	}
	for _, fam := range []string{"inet:", "inet6:"} {
		if a, ok := strings.CutPrefix(d.Actual, fam); ok && d.Category == CategoryConnect {
			return a
		}
	}
	return d.Actual
}

// failure says how an attempt failed, for summaries.
func failure(ev *detect.Event) string {
	if !ev.Failed() {
		return ""
	}
	e := ev.Errno
	if e == "" {
		e = "error " + strconv.Itoa(-ev.Result)
	}
	return " (the attempt failed: " + e + ")"
}
