// Package profile owns behaviour profiles: per function version, the
// executables it runs, the paths it reads and writes outside its code and
// the system's files, and the destinations it connects to. A profile
// learns from events during its learning window; afterwards an event
// outside it is a deviation. Profiles are YAML documents users read and
// edit, so parsing is strict and every pattern is validated.
//
// What it must never do: do I/O, panic on any document, or accept a
// profile whose patterns it cannot match.
package profile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"moat.dev/moat/internal/detect"
	"moat.dev/moat/internal/names"
)

// Errors callers act on.
var (
	ErrInvalid    = errors.New("invalid profile")
	ErrTransition = errors.New("invalid profile state change")
)

// State is where a profile is in its life.
type State string

// States. A profile starts learning; its window ends it (learned) or a
// user approves it (approved). Only those transitions exist.
const (
	StateLearning State = "learning"
	StateLearned  State = "learned"
	StateApproved State = "approved"
)

// Window is a learning window: it ends after Invocations invocations or
// Duration, whichever comes first (a zero bound does not apply).
type Window struct {
	Invocations int
	Duration    time.Duration
	Seen        int       // invocations observed so far
	Started     time.Time // when learning began
}

// Limits on a profile document.
const (
	MaxItems    = 4096
	MaxItemLen  = 4096
	MaxDocBytes = 4 << 20
	// collapseAfter distinct learned children of one directory in one
	// list become dir/**.
	collapseAfter = 8
)

// Profile is one function version's behaviour profile.
type Profile struct {
	Function      string
	Version       string
	State         State
	Learning      Window
	InheritedFrom string
	Exec          []string
	Read          []string
	Write         []string
	Connect       []string
	Updated       time.Time
}

// Deviation is an event's item outside a profile.
type Deviation struct {
	Category string // exec, read, write or connect
	Item     string
}

// New starts a learning profile.
func New(function, version string, w Window, now time.Time) *Profile {
	w.Seen, w.Started = 0, now.UTC()
	return &Profile{Function: function, Version: version, State: StateLearning, Learning: w, Updated: now.UTC()}
}

// Inherit starts a new version's profile from base: its items, learning
// anew, and what the new version adds is drift.
func Inherit(base *Profile, version string, w Window, now time.Time) *Profile {
	p := New(base.Function, version, w, now)
	p.InheritedFrom = base.Version
	p.Exec = slices.Clone(base.Exec)
	p.Read = slices.Clone(base.Read)
	p.Write = slices.Clone(base.Write)
	p.Connect = slices.Clone(base.Connect)
	return p
}

// item turns an event into the (category, item) a profile lists, or ""
// when profiles do not consider it.
func item(ev *detect.Event) (string, string) {
	switch ev.Kind {
	case "exec":
		if ev.Path == "" {
			return "", ""
		}
		return "exec", absolute(ev.Path)
	case "open":
		p := absolute(ev.Path)
		write := false
		for _, in := range ev.Intent {
			if in == "write" || in == "create" || in == "trunc" {
				write = true
			}
		}
		// A library probing for a file that is not there reads nothing.
		if !write && ev.Errno == "ENOENT" {
			return "", ""
		}
		if write {
			if ignoredWrite(p) {
				return "", ""
			}
			return "write", generalize(p)
		}
		if ignored(p) {
			return "", ""
		}
		return "read", generalize(p)
	case "unlink", "chmod", "mkdir", "truncate", "utimes", "mknod", "chown":
		if ev.Path == "" {
			return "", "" // a change through a descriptor: its open was the write
		}
		if p := absolute(ev.Path); !ignoredWrite(p) {
			return "write", generalize(p)
		}
	case "link", "symlink":
		if p := absolute(ev.NewPath); ev.NewPath != "" && !ignoredWrite(p) {
			return "write", generalize(p)
		}
	case "rename":
		if p := absolute(ev.NewPath); !ignoredWrite(p) {
			return "write", generalize(p)
		}
	case "connect", "sendto":
		d := destination(ev)
		if d == "" || d == runtimeAPI {
			return "", ""
		}
		return "connect", d
	}
	return "", ""
}

// runtimeAPI is where every instance connects for its invocations.
const runtimeAPI = "inet:127.0.0.1:9001"

func destination(ev *detect.Event) string {
	switch ev.Family {
	case "inet":
		return "inet:" + ev.Addr + ":" + strconv.Itoa(ev.Port)
	case "inet6":
		return "inet6:[" + ev.Addr + "]:" + strconv.Itoa(ev.Port)
	case "unix":
		if ev.Addr == "" {
			return ""
		}
		return "unix:" + ev.Addr
	}
	return ""
}

// absolute makes a path absolute: functions run in /var/task.
func absolute(p string) string {
	if !strings.HasPrefix(p, "/") {
		p = "/var/task/" + p
	}
	return path.Clean(p)
}

// Paths that are always allowed and carry no signal: the code, system
// libraries and data every runtime reads, harmless devices, the process's
// own /proc files (but not its environment or memory, which rules watch).
var (
	ignoredPrefixes = []string{"/var/task/", "/opt/", "/usr/", "/lib/", "/lib64/", "/etc/ssl/", "/etc/pki/",
		"/sys/kernel/mm/transparent_hugepage/", "/sys/devices/system/cpu/", "/sys/fs/cgroup/"}
	ignoredFiles = map[string]bool{"/etc/ld.so.cache": true, "/etc/localtime": true, "/etc/hosts": true,
		"/etc/resolv.conf": true, "/etc/nsswitch.conf": true, "/etc/passwd": true, "/etc/group": true,
		"/etc/host.conf": true, "/etc/gai.conf": true, "/etc/mime.types": true, "/dev/null": true, "/dev/zero": true,
		"/dev/urandom": true, "/dev/random": true, "/dev/full": true, "/var/task": true, "/": true, "/tmp": true}
)

// ignoredWrite: writes that carry no signal, to the harmless devices.
// Every other write counts: the code and system paths are read-only, so a
// write there is an attempt worth a profile entry.
func ignoredWrite(p string) bool {
	switch p {
	case "/dev/null", "/dev/zero", "/dev/full", "/dev/urandom", "/dev/random":
		return true
	}
	return false
}

// ignored: reads that carry no signal.
func ignored(p string) bool {
	if ignoredFiles[p] {
		return true
	}
	for _, pre := range ignoredPrefixes {
		if strings.HasPrefix(p, pre) {
			return true
		}
	}
	if strings.HasPrefix(p, "/proc/self/") || strings.HasPrefix(p, "/proc/thread-self/") {
		return !strings.HasSuffix(p, "/environ") && !strings.HasSuffix(p, "/mem")
	}
	return false
}

var uuidLike = regexp.MustCompile(`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`)

// generalize replaces the segments of a path that look generated (temp
// names, ids, hashes, numbers) by "*", keeping a short extension:
// /tmp/scratch-123456.json becomes /tmp/*.json, /tmp/job-42/out.txt
// becomes /tmp/*/out.txt.
func generalize(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if s != "" && looksGenerated(s) {
			segs[i] = "*" + extension(s)
		}
	}
	return strings.Join(segs, "/")
}

func extension(s string) string {
	i := strings.LastIndexByte(s, '.')
	if i <= 0 || len(s)-i > 6 {
		return ""
	}
	ext := s[i:]
	for _, r := range ext[1:] {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return ""
		}
	}
	return ext
}

// looksGenerated reports whether a path segment was probably made up at
// run time: it holds a uuid, two or more digits, or is a long mix of
// letters and digits.
func looksGenerated(s string) bool {
	if s == "*" || s == "**" {
		return false
	}
	if uuidLike.MatchString(s) {
		return true
	}
	digits, letters := 0, 0
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z':
			letters++
		}
	}
	if digits >= 2 {
		return true
	}
	// tmp.XyZ123 style: mixed case random suffixes.
	if i := strings.LastIndexByte(s, '.'); i >= 0 && len(s)-i-1 >= 6 {
		suf := s[i+1:]
		if strings.ToLower(suf) != suf && strings.ToUpper(suf) != suf {
			return true
		}
	}
	return digits > 0 && letters > 0 && len(s) >= 12
}

// list returns the profile's list for a category.
func (p *Profile) list(cat string) *[]string {
	switch cat {
	case "exec":
		return &p.Exec
	case "read":
		return &p.Read
	case "write":
		return &p.Write
	case "connect":
		return &p.Connect
	}
	return nil
}

// Observe adds an event's item while learning. It reports the item and
// whether it was new to the profile.
func (p *Profile) Observe(ev *detect.Event) (Deviation, bool) {
	cat, it := item(ev)
	if cat == "" || p.State != StateLearning {
		return Deviation{}, false
	}
	l := p.list(cat)
	if matches(*l, cat, it) || len(*l) >= MaxItems {
		return Deviation{}, false
	}
	*l = append(*l, it)
	if cat != "exec" && cat != "connect" {
		*l = collapse(*l, it)
	}
	slices.Sort(*l)
	return Deviation{Category: cat, Item: it}, true
}

// collapse replaces the children of it's directory by dir/** once more
// than collapseAfter distinct ones were learned.
func collapse(l []string, it string) []string {
	dir := path.Dir(it)
	if dir == "/" || dir == "." {
		return l
	}
	n := 0
	for _, x := range l {
		if path.Dir(x) == dir || strings.HasPrefix(x, dir+"/") {
			n++
		}
	}
	if n <= collapseAfter {
		return l
	}
	out := l[:0]
	for _, x := range l {
		if !(path.Dir(x) == dir || strings.HasPrefix(x, dir+"/")) {
			out = append(out, x)
		}
	}
	return append(out, dir+"/**")
}

// Check compares an event with a learned or approved profile: an item
// outside it is a deviation.
func (p *Profile) Check(ev *detect.Event) (Deviation, bool) {
	if p.State == StateLearning {
		return Deviation{}, false
	}
	cat, it := item(ev)
	if cat == "" {
		return Deviation{}, false
	}
	raw := it
	if cat == "read" || cat == "write" {
		raw = absolute(ev.Path)
		if ev.Kind == "rename" {
			raw = absolute(ev.NewPath)
		}
	}
	if matches(*p.list(cat), cat, it) || matches(*p.list(cat), cat, raw) {
		return Deviation{}, false
	}
	return Deviation{Category: cat, Item: it}, true
}

// Drift reports an item a profile inherited from another version did not
// have: call it with what Observe found new.
func (p *Profile) Drift(d Deviation, added bool) (Deviation, bool) {
	if p.InheritedFrom == "" || !added {
		return Deviation{}, false
	}
	return d, true
}

// matches reports whether it is covered by the list: equal to an item, or
// matched by a pattern item.
func matches(l []string, cat, it string) bool {
	for _, x := range l {
		if x == it {
			return true
		}
		if cat == "connect" {
			if connectMatch(x, it) {
				return true
			}
			continue
		}
		if strings.HasSuffix(x, "/**") {
			if strings.HasPrefix(it, strings.TrimSuffix(x, "**")) {
				return true
			}
			continue
		}
		if strings.Contains(x, "*") {
			if ok, _ := path.Match(x, it); ok {
				return true
			}
		}
	}
	return false
}

// connectMatch matches a destination against an item whose address may be
// a CIDR block and whose port may be "*".
func connectMatch(pattern, dest string) bool {
	pf, pa, pp, ok := splitDest(pattern)
	df, da, dp, ok2 := splitDest(dest)
	if !ok || !ok2 || pf != df || pf == "unix" {
		return false
	}
	if pp != "*" && pp != dp {
		return false
	}
	if pa == da {
		return true
	}
	pre, err := netip.ParsePrefix(pa)
	if err != nil {
		return false
	}
	a, err := netip.ParseAddr(da)
	return err == nil && pre.Contains(a)
}

// An IPDest is a connect item's IP destination: an address or CIDR block,
// and a port or any.
type IPDest struct {
	Prefix  netip.Prefix // a single address is a full-length prefix
	Port    uint16
	AnyPort bool // the item's port is "*"
}

// IPDests parses the inet and inet6 items of a profile's connect list;
// unix sockets and items that do not parse are left out.
func IPDests(connect []string) []IPDest {
	var out []IPDest
	for _, item := range connect {
		fam, addr, port, ok := splitDest(item)
		if !ok || fam != "inet" && fam != "inet6" {
			continue
		}
		pre, err := netip.ParsePrefix(addr)
		if err != nil {
			a, err := netip.ParseAddr(addr)
			if err != nil {
				continue
			}
			pre = netip.PrefixFrom(a, a.BitLen())
		}
		d := IPDest{Prefix: pre, AnyPort: port == "*"}
		if !d.AnyPort {
			n, err := strconv.ParseUint(port, 10, 16)
			if err != nil {
				continue
			}
			d.Port = uint16(n)
		}
		out = append(out, d)
	}
	return out
}

// splitDest splits "inet:ADDR:PORT", "inet6:[ADDR]:PORT", "unix:PATH".
func splitDest(s string) (family, addr, port string, ok bool) {
	family, rest, ok := strings.Cut(s, ":")
	if !ok {
		return "", "", "", false
	}
	if family == "unix" {
		return family, rest, "", rest != ""
	}
	i := strings.LastIndexByte(rest, ':')
	if i <= 0 {
		return "", "", "", false
	}
	addr, port = strings.Trim(rest[:i], "[]"), rest[i+1:]
	return family, addr, port, true
}

// Invoked counts an invocation while learning; it returns true when this
// ends the window (the profile is then learned).
func (p *Profile) Invoked(now time.Time) bool {
	if p.State != StateLearning {
		return false
	}
	p.Learning.Seen++
	w := p.Learning
	if (w.Invocations > 0 && w.Seen >= w.Invocations) || (w.Duration > 0 && now.Sub(w.Started) >= w.Duration) {
		p.State = StateLearned
		return true
	}
	return false
}

// Approve makes a learning or learned profile the approved one.
func (p *Profile) Approve(now time.Time) error {
	switch p.State {
	case StateLearning, StateLearned:
		p.State = StateApproved
		p.Updated = now.UTC()
		return nil
	}
	return fmt.Errorf("%w: the profile of %s:%s is already %s", ErrTransition, p.Function, p.Version, p.State)
}

// verbs word drift per category.
var verbs = map[string]string{"exec": "spawns", "read": "reads", "write": "writes", "connect": "connects to"}

// DeviationAlert is the alert of an event outside an approved or learned
// profile.
func DeviationAlert(ev *detect.Event, d Deviation, p *Profile) detect.Alert {
	sev := map[string]detect.Severity{"exec": detect.SeverityHigh, "connect": detect.SeverityHigh,
		"write": detect.SeverityMedium, "read": detect.SeverityLow}[d.Category]
	return detect.Alert{
		Time:      ev.Time,
		Source:    detect.SourceProfile,
		Rule:      "profile." + d.Category,
		Severity:  sev,
		Summary:   fmt.Sprintf("%s %s is not in the %s profile of %s:%s", d.Category, d.Item, p.State, p.Function, p.Version),
		Function:  ev.Function,
		Version:   ev.Version,
		Instance:  ev.Instance,
		RequestID: ev.RequestID,
		Evidence:  []detect.Event{*ev},
	}
}

// DriftAlert reports what a new version does that the version it
// inherited its profile from never did.
func DriftAlert(ev *detect.Event, d Deviation, p *Profile) detect.Alert {
	return detect.Alert{
		Time:      ev.Time,
		Source:    detect.SourceDrift,
		Rule:      "drift." + d.Category,
		Severity:  detect.SeverityLow,
		Summary:   fmt.Sprintf("version %s %s %s, version %s never did", p.Version, verbs[d.Category], d.Item, p.InheritedFrom),
		Function:  ev.Function,
		Version:   ev.Version,
		Instance:  ev.Instance,
		RequestID: ev.RequestID,
		Evidence:  []detect.Event{*ev},
	}
}

// doc is the YAML form of a profile.
type doc struct {
	Function      string    `yaml:"function"`
	Version       string    `yaml:"version"`
	State         State     `yaml:"state"`
	Learning      windowDoc `yaml:"learning"`
	InheritedFrom string    `yaml:"inherited_from,omitempty"`
	Exec          []string  `yaml:"exec"`
	Read          []string  `yaml:"read"`
	Write         []string  `yaml:"write"`
	Connect       []string  `yaml:"connect"`
	Updated       time.Time `yaml:"updated"`
}

type windowDoc struct {
	Invocations int       `yaml:"invocations"`
	Duration    string    `yaml:"duration"`
	Seen        int       `yaml:"seen"`
	Started     time.Time `yaml:"started"`
}

const header = `# moat behaviour profile. state: learning | learned | approved.
# exec: executables run; read/write: paths outside the code (/var/task) and
# system files; connect: destinations as inet:ADDR:PORT, inet6:[ADDR]:PORT or
# unix:PATH (ADDR may be a CIDR block, PORT may be *). A path segment * matches
# one segment (*.json: any .json name), a final /** anything beneath.
`

// YAML encodes the profile deterministically, with a header explaining
// the fields.
func (p *Profile) YAML() []byte {
	d := doc{
		Function: p.Function, Version: p.Version, State: p.State, InheritedFrom: p.InheritedFrom,
		Learning: windowDoc{Invocations: p.Learning.Invocations, Seen: p.Learning.Seen, Started: p.Learning.Started.UTC()},
		Exec:     sorted(p.Exec), Read: sorted(p.Read), Write: sorted(p.Write), Connect: sorted(p.Connect),
		Updated: p.Updated.UTC(),
	}
	if p.Learning.Duration > 0 {
		d.Learning.Duration = p.Learning.Duration.String()
	}
	var buf bytes.Buffer
	buf.WriteString(header)
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	_ = enc.Encode(d)
	_ = enc.Close()
	return buf.Bytes()
}

func sorted(l []string) []string {
	if l == nil {
		return []string{}
	}
	s := slices.Clone(l)
	slices.Sort(s)
	return slices.Compact(s)
}

// Parse reads a profile document strictly and validates it.
func Parse(data []byte) (*Profile, error) {
	if len(data) > MaxDocBytes {
		return nil, fmt.Errorf("%w: the document is larger than %d bytes", ErrInvalid, MaxDocBytes)
	}
	var d doc
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&d); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: the document is empty", ErrInvalid)
		}
		return nil, fmt.Errorf("%w: %s", ErrInvalid, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	p := &Profile{
		Function: d.Function, Version: d.Version, State: d.State, InheritedFrom: d.InheritedFrom,
		Learning: Window{Invocations: d.Learning.Invocations, Seen: d.Learning.Seen, Started: d.Learning.Started},
		Exec:     d.Exec, Read: d.Read, Write: d.Write, Connect: d.Connect, Updated: d.Updated,
	}
	if d.Learning.Duration != "" {
		dur, err := time.ParseDuration(d.Learning.Duration)
		if err != nil || dur < 0 {
			return nil, fmt.Errorf("%w: learning.duration %q is not a duration such as 24h", ErrInvalid, d.Learning.Duration)
		}
		p.Learning.Duration = dur
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

var (
	versionName = regexp.MustCompile(`^(\$LATEST|[0-9]{1,10})$`)
)

// Validate checks every field and pattern.
func (p *Profile) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
	}
	switch {
	case !names.Function(p.Function):
		return bad("function %q is not a function name", p.Function)
	case !versionName.MatchString(p.Version):
		return bad("version %q is not $LATEST or a version number", p.Version)
	case p.InheritedFrom != "" && !versionName.MatchString(p.InheritedFrom):
		return bad("inherited_from %q is not a version", p.InheritedFrom)
	case p.State != StateLearning && p.State != StateLearned && p.State != StateApproved:
		return bad("state must be learning, learned or approved, not %q", p.State)
	case p.Learning.Invocations < 0 || p.Learning.Seen < 0 || p.Learning.Duration < 0:
		return bad("learning: invocations, seen and duration must not be negative")
	}
	for _, l := range []struct {
		name  string
		items []string
	}{{"exec", p.Exec}, {"read", p.Read}, {"write", p.Write}, {"connect", p.Connect}} {
		if len(l.items) > MaxItems {
			return bad("%s has %d items; at most %d are allowed", l.name, len(l.items), MaxItems)
		}
		for _, it := range l.items {
			if len(it) > MaxItemLen {
				return bad("%s: an item is longer than %d bytes", l.name, MaxItemLen)
			}
			var err error
			if l.name == "connect" {
				err = validDest(it)
			} else {
				err = validPattern(it)
			}
			if err != nil {
				return bad("%s: %q: %v", l.name, it, err)
			}
		}
	}
	return nil
}

func validPattern(p string) error {
	if !strings.HasPrefix(p, "/") {
		return errors.New("must be an absolute path")
	}
	segs := strings.Split(p[1:], "/")
	for i, s := range segs {
		switch {
		case s == ".." || s == ".":
			return errors.New("must not contain . or .. segments")
		case s == "" && i != len(segs)-1:
			return errors.New("must not contain empty segments")
		case s == "**" && i != len(segs)-1:
			return errors.New("** may only be the last segment")
		case strings.Contains(s, "**") && s != "**":
			return errors.New("** must be a whole segment")
		}
		if _, err := path.Match(s, ""); err != nil {
			return fmt.Errorf("bad pattern segment %q", s)
		}
	}
	if strings.ContainsRune(p, 0) {
		return errors.New("must not contain NUL")
	}
	return nil
}

func validDest(s string) error {
	fam, addr, port, ok := splitDest(s)
	if !ok {
		return errors.New("want inet:ADDR:PORT, inet6:[ADDR]:PORT or unix:PATH")
	}
	switch fam {
	case "unix":
		if !strings.HasPrefix(addr, "/") && !strings.HasPrefix(addr, "@") {
			return errors.New("a unix socket is an absolute path or @abstract")
		}
		return nil
	case "inet", "inet6":
	default:
		return fmt.Errorf("unknown family %q", fam)
	}
	if port != "*" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 0 || n > 65535 {
			return fmt.Errorf("port %q is not a port number or *", port)
		}
	}
	var a netip.Addr
	if pre, err := netip.ParsePrefix(addr); err == nil {
		a = pre.Addr()
	} else if a, err = netip.ParseAddr(addr); err != nil {
		return fmt.Errorf("%q is not an address or CIDR block", addr)
	}
	if (fam == "inet") != a.Is4() {
		return fmt.Errorf("address %s does not belong to family %s", addr, fam)
	}
	return nil
}
