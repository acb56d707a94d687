package profile

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"moat.dev/moat/internal/detect"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func ev(kind string, f func(*detect.Event)) *detect.Event {
	e := &detect.Event{Time: t0, Kind: kind, Function: "fn", Version: "3", Instance: "i", RequestID: "r", Phase: detect.PhaseInvoke}
	f(e)
	return e
}

func open(p string, intent ...string) *detect.Event {
	return ev("open", func(e *detect.Event) { e.Path, e.Intent = p, intent })
}

func exec(p string) *detect.Event { return ev("exec", func(e *detect.Event) { e.Path = p }) }

func connect(addr string, port int) *detect.Event {
	return ev("connect", func(e *detect.Event) { e.Family, e.Addr, e.Port = "inet", addr, port })
}

// benignInvocation is what a benign function does in one invocation, with
// fresh random names.
func benignInvocation(r *rand.Rand, n int) []*detect.Event {
	scratch := fmt.Sprintf("/tmp/scratch-%d.json", r.Uint32())
	job := fmt.Sprintf("/tmp/job-%d", r.Uint32())
	evs := []*detect.Event{
		open("/var/task/config.json", "read"),
		open("/etc/hosts", "read"),
		open(scratch, "read", "write", "create"),
		open(scratch, "read"),
		ev("unlink", func(e *detect.Event) { e.Path = scratch }),
		connect("127.0.0.1", 9001),
		connect("198.18.0.5", 443),
		open("/proc/self/maps", "read"),
		open("/etc/gai.conf", "read"),
	}
	if n%5 == 0 {
		evs = append(evs, open(job+"/out.txt", "write", "create"), ev("unlink", func(e *detect.Event) { e.Path = job + "/out.txt" }),
			ev("unlink", func(e *detect.Event) { e.Path = job }))
	}
	return evs
}

func TestLearnThenNoFalsePositives(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	p := New("fn", "3", Window{Invocations: 50}, t0)
	p.Observe(exec("/var/task/bootstrap"))
	for i := range 50 {
		for _, e := range benignInvocation(r, i) {
			p.Observe(e)
		}
		ended := p.Invoked(t0)
		if ended != (i == 49) {
			t.Fatalf("invocation %d: window ended = %v", i, ended)
		}
	}
	if p.State != StateLearned {
		t.Fatalf("state %s after the window", p.State)
	}
	for i := range 1000 {
		for _, e := range benignInvocation(r, 50+i) {
			if d, bad := p.Check(e); bad {
				t.Fatalf("invocation %d: false positive %+v\nprofile:\n%s", i, d, p.YAML())
			}
		}
	}
	for _, tt := range []struct {
		ev   *detect.Event
		want Deviation
	}{
		{exec("/bin/sh"), Deviation{"exec", "/bin/sh"}},
		{open("/var/task/x", "write"), Deviation{"write", "/var/task/x"}},
		{open("/proc/1/environ", "read"), Deviation{"read", "/proc/1/environ"}},
		{connect("198.18.0.9", 4444), Deviation{"connect", "inet:198.18.0.9:4444"}},
		{ev("connect", func(e *detect.Event) { e.Family, e.Addr = "unix", "/var/run/docker.sock" }), Deviation{"connect", "unix:/var/run/docker.sock"}},
	} {
		if d, bad := p.Check(tt.ev); !bad || d != tt.want {
			t.Errorf("Check(%s %s) = %+v %v, want %+v", tt.ev.Kind, tt.ev.Path+tt.ev.Addr, d, bad, tt.want)
		}
	}
}

func TestGeneralize(t *testing.T) {
	for in, want := range map[string]string{
		"/tmp/scratch-123456.json":                        "/tmp/*.json",
		"/tmp/job-42/out.txt":                             "/tmp/*/out.txt",
		"/tmp/tmp.XyZaBc":                                 "/tmp/*",
		"/tmp/6f1c8a0e-3b2d-4e5f-9a8b-7c6d5e4f3a2b/x.bin": "/tmp/*/x.bin",
		"/tmp/cache/data":                                 "/tmp/cache/data",
		"/proc/1/environ":                                 "/proc/1/environ",
	} {
		if got := generalize(in); got != want {
			t.Errorf("generalize(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestWindowByDuration(t *testing.T) {
	p := New("fn", "1", Window{Duration: time.Hour}, t0)
	if p.Invoked(t0.Add(time.Minute)) || p.State != StateLearning {
		t.Fatal("window ended early")
	}
	if !p.Invoked(t0.Add(2*time.Hour)) || p.State != StateLearned {
		t.Fatal("window did not end after its duration")
	}
	if p.Invoked(t0.Add(3 * time.Hour)) {
		t.Error("a learned profile counted an invocation")
	}
}

func TestApproveTransitions(t *testing.T) {
	p := New("fn", "1", Window{Invocations: 5}, t0)
	if err := p.Approve(t0); err != nil || p.State != StateApproved {
		t.Fatalf("approve while learning: %v %s", err, p.State)
	}
	if err := p.Approve(t0); !errors.Is(err, ErrTransition) {
		t.Errorf("approving twice = %v, want ErrTransition", err)
	}
}

func TestInheritAndDrift(t *testing.T) {
	base := New("fn", "6", Window{Invocations: 1}, t0)
	base.Observe(exec("/var/task/bootstrap"))
	base.Invoked(t0)
	p := Inherit(base, "7", Window{Invocations: 10}, t0)
	if p.State != StateLearning || p.InheritedFrom != "6" || len(p.Exec) != 1 {
		t.Fatalf("inherited = %+v", p)
	}
	d, added := p.Observe(exec("/var/task/bootstrap"))
	if _, drift := p.Drift(d, added); drift {
		t.Error("an inherited item was reported as drift")
	}
	sh := exec("/bin/sh")
	d, added = p.Observe(sh)
	d, drift := p.Drift(d, added)
	if !drift {
		t.Fatal("a new executable was not drift")
	}
	a := DriftAlert(sh, d, p)
	if a.Summary != "version 7 spawns /bin/sh, version 6 never did" || a.Source != detect.SourceDrift || a.RequestID != "r" {
		t.Errorf("drift alert = %+v", a)
	}
	if _, added := p.Observe(sh); added {
		t.Error("the same item was new twice")
	}
}

func TestYAMLRoundTrip(t *testing.T) {
	p := New("fn", "$LATEST", Window{Invocations: 100, Duration: 24 * time.Hour}, t0)
	p.Exec = []string{"/var/task/bootstrap"}
	p.Read = []string{"/srv/data/**"}
	p.Write = []string{"/tmp/*.json"}
	p.Connect = []string{"inet6:[2001:db8::1]:*", "inet:10.0.0.0/8:443", "unix:/run/x.sock"}
	b := p.YAML()
	q, err := Parse(b)
	if err != nil {
		t.Fatalf("parse own YAML: %v\n%s", err, b)
	}
	if !reflect.DeepEqual(p, q) {
		t.Errorf("round trip changed the profile:\n%+v\n%+v", p, q)
	}
	if !strings.HasPrefix(string(b), "# moat behaviour profile") {
		t.Error("no header")
	}
	// Hand-written patterns match.
	q.State = StateApproved
	for _, e := range []*detect.Event{open("/srv/data/a/b", "read"), open("/tmp/x.json", "write"), connect("10.1.2.3", 443)} {
		if d, bad := q.Check(e); bad {
			t.Errorf("%+v not covered by the edited profile", d)
		}
	}
	if _, bad := q.Check(connect("11.0.0.1", 443)); !bad {
		t.Error("an address outside the CIDR was covered")
	}
}

func TestParseErrors(t *testing.T) {
	good := string(New("fn", "1", Window{Invocations: 1}, t0).YAML())
	tests := []struct{ name, doc, want string }{
		{"empty", "", "empty"},
		{"unknown field", good + "extra: 1\n", "field extra not found"},
		{"state", strings.Replace(good, "\nstate: learning", "\nstate: sleeping", 1), "state must be"},
		{"function", strings.Replace(good, "function: fn", "function: 'a b'", 1), "not a function name"},
		{"version", strings.Replace(good, `version: "1"`, "version: latest", 1), "not $LATEST"},
		{"relative path", strings.Replace(good, "read: []", "read: [etc/passwd]", 1), "absolute"},
		{"dotdot", strings.Replace(good, "read: []", "read: [/tmp/../etc]", 1), ".."},
		{"doublestar middle", strings.Replace(good, "read: []", "read: ['/tmp/**/x']", 1), "last segment"},
		{"bad destination", strings.Replace(good, "connect: []", "connect: ['inet:nowhere:80']", 1), "not an address"},
		{"bad port", strings.Replace(good, "connect: []", "connect: ['inet:10.0.0.1:99999']", 1), "port"},
		{"family mismatch", strings.Replace(good, "connect: []", "connect: ['inet:[::1]:80']", 1), "does not belong"},
		{"negative", strings.Replace(good, "invocations: 1", "invocations: -1", 1), "negative"},
		{"duration", strings.Replace(good, `duration: ""`, "duration: soon", 1), "duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc))
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse = %v, want ErrInvalid containing %q", err, tt.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	p := New("fn", "2", Window{Invocations: 3}, t0)
	p.Write = []string{"/tmp/*"}
	p.Connect = []string{"inet:10.0.0.1:443"}
	f.Add(p.YAML())
	f.Add([]byte("function: fn\nversion: $LATEST\nstate: approved\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Parse(b)
		if err != nil {
			return
		}
		q, err := Parse(p.YAML())
		if err != nil {
			t.Fatalf("re-parse of an accepted profile: %v\n%s", err, p.YAML())
		}
		if string(q.YAML()) != string(p.YAML()) {
			t.Fatalf("encoding is not stable:\n%s\n%s", p.YAML(), q.YAML())
		}
		p.Check(open("/tmp/x", "write"))
	})
}

func BenchmarkCheck(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 4))
	p := New("fn", "1", Window{Invocations: 10}, t0)
	for i := range 50 {
		for _, e := range benignInvocation(r, i) {
			p.Observe(e)
		}
		p.Observe(open(fmt.Sprintf("/srv/data/file-%c", 'a'+i%26), "read"))
	}
	p.State = StateApproved
	evs := benignInvocation(r, 1)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		p.Check(evs[i%len(evs)])
	}
}

func TestFileSystemChangesAreWrites(t *testing.T) {
	for _, tt := range []struct {
		ev       detect.Event
		cat, val string
	}{
		{detect.Event{Kind: "mkdir", Path: "/tmp/cache"}, "write", "/tmp/cache"},
		{detect.Event{Kind: "link", Path: "/usr/bin/true", NewPath: "/tmp/t"}, "write", "/tmp/t"},
		{detect.Event{Kind: "symlink", Target: "/etc/shadow", NewPath: "/tmp/s"}, "write", "/tmp/s"},
		{detect.Event{Kind: "truncate", Path: "/tmp/log"}, "write", "/tmp/log"},
		{detect.Event{Kind: "utimes", Path: "/var/task/bootstrap"}, "write", "/var/task/bootstrap"},
		{detect.Event{Kind: "chown", Path: "/tmp/x"}, "write", "/tmp/x"},
		{detect.Event{Kind: "mknod", Path: "/tmp/fifo"}, "write", "/tmp/fifo"},
		{detect.Event{Kind: "truncate", FD: 5}, "", ""}, // through a descriptor: its open was the write
		{detect.Event{Kind: "chmod", FD: 5}, "", ""},
	} {
		if cat, val := item(&tt.ev); cat != tt.cat || val != tt.val {
			t.Errorf("item(%s %s %s) = %q %q, want %q %q", tt.ev.Kind, tt.ev.Path, tt.ev.NewPath, cat, val, tt.cat, tt.val)
		}
	}
}
