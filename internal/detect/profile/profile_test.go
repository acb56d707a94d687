package profile

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"moat.dev/moat/internal/detect"
)

var t0 = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

func event(kind string, f func(*detect.Event)) *detect.Event {
	e := &detect.Event{Time: t0, Kind: kind, Function: "fn", Version: "3", Instance: "fn-3-a", RequestID: "req-1", Phase: detect.PhaseInvoke, PID: 12}
	f(e)
	return e
}

func open(p string, intent ...string) *detect.Event {
	return event("open", func(e *detect.Event) { e.Path, e.Intent, e.Syscall = p, intent, "openat" })
}

func failed(e *detect.Event, errno string, n int) *detect.Event {
	e.Result, e.Errno = -n, errno
	return e
}

func execOf(p string) *detect.Event {
	return event("exec", func(e *detect.Event) { e.Path, e.Exe = p, p })
}

func unlink(p string) *detect.Event { return event("unlink", func(e *detect.Event) { e.Path = p }) }

func chmod(p string) *detect.Event { return event("chmod", func(e *detect.Event) { e.Path = p }) }

func rename(from, to string) *detect.Event {
	return event("rename", func(e *detect.Event) { e.Path, e.NewPath = from, to })
}

func connect(addr string, port int) *detect.Event {
	fam := "inet"
	if strings.Contains(addr, ":") {
		fam = "inet6"
	}
	return event("connect", func(e *detect.Event) { e.Family, e.Addr, e.Port = fam, addr, port })
}

func connectUnix(p string) *detect.Event {
	return event("connect", func(e *detect.Event) { e.Family, e.Addr = "unix", p })
}

const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

func randomName(r *rand.Rand, set string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = set[r.IntN(len(set))]
	}
	return string(b)
}

func uuid(r *rand.Rand) string {
	return fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", r.Uint32(), r.Uint32()&0xffff, r.Uint32()&0xffff, r.Uint32()&0xffff, r.Uint64()&0xffffffffffff)
}

// tidyInvocation is one invocation of a benign Python function whose
// scratch names all carry digits or hex: JSON work in /tmp, HTTPS to an
// API, the usual reads of code and system files.
func tidyInvocation(r *rand.Rand, n int) []*detect.Event {
	scratch := fmt.Sprintf("/tmp/scratch-%08x.json", r.Uint32())
	job := fmt.Sprintf("/tmp/job-%d", 1000+n)
	dir := "/tmp/" + uuid(r)
	evs := []*detect.Event{
		open("/var/task/handler.py", "read"),
		open("/var/lang/lib/python3.12/json/decoder.py", "read"),
		open("/etc/hosts", "read"),
		open("/etc/resolv.conf", "read"),
		open("/proc/self/status", "read"),
		failed(open("/home/sbx_user1051/.aws/config", "read"), "ENOENT", 2),
		connect("127.0.0.1", 9001),
		connect("198.18.0.5", 443),
		open(scratch, "write", "create", "trunc"),
		open(scratch, "read"),
		unlink(scratch),
		open(job+"/out.txt.part", "write", "create"),
		rename(job+"/out.txt.part", job+"/out.txt"),
		chmod(job + "/out.txt"),
		open(job+"/out.txt", "read"),
		unlink(job + "/out.txt"),
		unlink(job),
		open("/tmp/tmp."+randomName(r, alnum, 3)+fmt.Sprint(100+r.IntN(900)), "read", "write", "create"),
		open(dir+"/payload.bin", "write", "create"),
		unlink(dir + "/payload.bin"),
		unlink(dir),
	}
	if n%10 == 0 {
		pid := 2 + r.IntN(30000)
		evs = append(evs, execOf("/usr/bin/gzip"), open(fmt.Sprintf("/proc/%d/stat", pid), "read"))
	}
	if n%100 == 0 { // a new instance
		evs = append([]*detect.Event{execOf("/var/task/bootstrap"), execOf("/var/lang/bin/python3.12")}, evs...)
	}
	return evs
}

// messyInvocation is a benign function whose scratch names are letters
// only: generalization cannot tell them from fixed names, the collapse
// rule must.
func messyInvocation(r *rand.Rand, n int) []*detect.Event {
	lower := "abcdefghijklmnopqrstuvwxyz"
	a := "/tmp/tmp." + randomName(r, lower+strings.ToUpper(lower), 6)
	b := "/tmp/" + randomName(r, lower, 10)
	c := "/tmp/work-" + randomName(r, lower, 6)
	return []*detect.Event{
		open(a, "read", "write", "create"),
		unlink(a),
		open(b, "write", "create"),
		open(b, "read"),
		unlink(b),
		open(c+"/result.json", "write", "create"),
		unlink(c + "/result.json"),
		unlink(c),
		connect("198.18.0.5", 443),
		open("/etc/hosts", "read"),
	}
}

func learn(t *testing.T, gen func(*rand.Rand, int) []*detect.Event, r *rand.Rand, n int) *Profile {
	t.Helper()
	p := New("fn", "3", Window{Invocations: n}, t0)
	for i := range n {
		for _, e := range gen(r, i) {
			p.Observe(e)
		}
		if ended := p.Invoked(t0.Add(time.Duration(i) * time.Second)); ended != (i == n-1) {
			t.Fatalf("invocation %d: window ended = %v", i, ended)
		}
	}
	if p.State != StateLearned {
		t.Fatalf("state %s after the window", p.State)
	}
	if err := p.Validate(); err != nil {
		t.Fatalf("learned profile does not validate: %v\n%s", err, p.YAML())
	}
	return p
}

func TestLearnThenNoFalsePositives(t *testing.T) {
	tests := []struct {
		name      string
		gen       func(*rand.Rand, int) []*detect.Event
		wantWrite []string
	}{
		{"tidy names generalize", tidyInvocation, []string{"/tmp/*", "/tmp/*/payload.bin", "/tmp/job-*/out.txt", "/tmp/job-*/out.txt.part"}},
		{"letter-only names collapse", messyInvocation, []string{"/tmp/**"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			p := learn(t, tt.gen, r, 50)
			if !slices.Equal(p.Write, tt.wantWrite) {
				t.Errorf("write = %q, want %q", p.Write, tt.wantWrite)
			}
			if !slices.Equal(p.Connect, []string{"inet:198.18.0.5:443"}) {
				t.Errorf("connect = %q", p.Connect)
			}
			for i := range 1000 {
				for _, e := range tt.gen(r, 50+i) {
					if d, bad := p.Check(e); bad {
						t.Fatalf("invocation %d: false positive %s %s (%s)\nprofile:\n%s", 50+i, d.Category, d.Actual, d.Item, p.YAML())
					}
				}
			}
		})
	}
}

func TestTidyProfile(t *testing.T) {
	p := learn(t, tidyInvocation, rand.New(rand.NewPCG(5, 6)), 50)
	want := map[string][]string{
		"exec": {"/usr/bin/gzip", "/var/lang/bin/python3.12", "/var/task/bootstrap"},
		"read": {"/proc/*/stat"},
	}
	if !slices.Equal(p.Exec, want["exec"]) || !slices.Equal(p.Read, want["read"]) {
		t.Errorf("exec = %q, read = %q, want %q", p.Exec, p.Read, want)
	}
}

func TestDeviations(t *testing.T) {
	p := learn(t, tidyInvocation, rand.New(rand.NewPCG(1, 2)), 50)
	tests := []struct {
		name string
		ev   *detect.Event
		want *Deviation // nil: no deviation
	}{
		{"exec of a shell", execOf("/bin/sh"), &Deviation{Category: "exec", Item: "/bin/sh", Actual: "/bin/sh"}},
		{"refused exec", failed(execOf("/tmp/x"), "EACCES", 13), &Deviation{Category: "exec", Item: "/tmp/x", Actual: "/tmp/x"}},
		{"relative exec", execOf("./helper"), &Deviation{Category: "exec", Item: "/var/task/helper", Actual: "/var/task/helper"}},
		{"write to the code", open("/var/task/x", "write"), &Deviation{Category: "write", Item: "/var/task/x", Actual: "/var/task/x"}},
		{"refused write to the code", failed(open("/var/task/app.py", "write", "trunc"), "EROFS", 30), &Deviation{Category: "write", Item: "/var/task/app.py", Actual: "/var/task/app.py"}},
		{"unlink in /etc", unlink("/etc/hosts"), &Deviation{Category: "write", Item: "/etc/hosts", Actual: "/etc/hosts"}},
		{"rename onto the code", rename("/tmp/job-1/out.txt", "/var/task/handler.py"), &Deviation{Category: "write", Item: "/var/task/handler.py", Actual: "/var/task/handler.py"}},
		{"another process's environment", open("/proc/1/environ", "read"), &Deviation{Category: "read", Item: "/proc/*/environ", Actual: "/proc/1/environ"}},
		{"own environment", open("/proc/self/environ", "read"), &Deviation{Category: "read", Item: "/proc/self/environ", Actual: "/proc/self/environ"}},
		{"own memory", open("/proc/self/mem", "read"), &Deviation{Category: "read", Item: "/proc/self/mem", Actual: "/proc/self/mem"}},
		{"through /proc/self/root", open("/proc/self/root/proc/1/environ", "read"), &Deviation{Category: "read", Item: "/proc/self/root/proc/*/environ", Actual: "/proc/self/root/proc/1/environ"}},
		{"escape recon", open("/proc/sys/kernel/core_pattern", "read"), &Deviation{Category: "read", Item: "/proc/sys/kernel/core_pattern", Actual: "/proc/sys/kernel/core_pattern"}},
		{"refused read", failed(open("/etc/shadow", "read"), "EACCES", 13), &Deviation{Category: "read", Item: "/etc/shadow", Actual: "/etc/shadow"}},
		{"connect elsewhere", connect("198.18.0.9", 4444), &Deviation{Category: "connect", Item: "inet:198.18.0.9:4444", Actual: "inet:198.18.0.9:4444"}},
		{"refused connect", failed(connect("198.18.0.9", 4444), "ECONNREFUSED", 111), &Deviation{Category: "connect", Item: "inet:198.18.0.9:4444", Actual: "inet:198.18.0.9:4444"}},
		{"known host, other port", connect("198.18.0.5", 80), &Deviation{Category: "connect", Item: "inet:198.18.0.5:80", Actual: "inet:198.18.0.5:80"}},
		{"datagram elsewhere", event("sendto", func(e *detect.Event) { e.Family, e.Addr, e.Port = "inet", "198.18.0.9", 53 }), &Deviation{Category: "connect", Item: "inet:198.18.0.9:53", Actual: "inet:198.18.0.9:53"}},
		{"metadata service", connect("169.254.169.254", 80), &Deviation{Category: "connect", Item: "inet:169.254.169.254:80", Actual: "inet:169.254.169.254:80"}},
		{"inet6", connect("2001:db8::9", 443), &Deviation{Category: "connect", Item: "inet6:[2001:db8::9]:443", Actual: "inet6:[2001:db8::9]:443"}},
		{"unix socket", connectUnix("/var/run/docker.sock"), &Deviation{Category: "connect", Item: "unix:/var/run/docker.sock", Actual: "unix:/var/run/docker.sock"}},
		{"abstract socket", connectUnix("@evil"), &Deviation{Category: "connect", Item: "unix:@evil", Actual: "unix:@evil"}},

		{"learned scratch name", open("/tmp/scratch-0badc0de.json", "write", "create"), nil},
		{"learned job file", open("/tmp/job-77777/out.txt", "read"), nil},
		{"a written path may be read", open("/tmp/whatever", "read"), nil},
		{"process number", open("/proc/4242/stat", "read"), nil},
		{"runtime API", connect("127.0.0.1", 9001), nil},
		{"runtime API from a mapped address", event("connect", func(e *detect.Event) { e.Family, e.Addr, e.Port = "inet6", "::ffff:127.0.0.1", 9001 }), nil},
		{"known destination", connect("198.18.0.5", 443), nil},
		{"probe that found nothing", failed(open("/root/.ssh/id_rsa", "read"), "ENOENT", 2), nil},
		{"system library", open("/lib64/libc.so.6", "read"), nil},
		{"own /proc entry", open("/proc/self/maps", "read"), nil},
		{"harmless device", open("/dev/null", "write"), nil},
		{"not profiled: exit", event("exit", func(e *detect.Event) {}), nil},
		{"not profiled: setid", event("setid", func(e *detect.Event) { e.IDs = []int64{0} }), nil},
		{"not profiled: bind", event("bind", func(e *detect.Event) { e.Family, e.Addr, e.Port = "inet", "0.0.0.0", 4444 }), nil},
		{"not profiled: listen", event("listen", func(e *detect.Event) {}), nil},
		{"not profiled: accept", event("accept", func(e *detect.Event) { e.Family, e.Addr, e.Port = "inet", "198.18.0.9", 5555 }), nil},
		{"not profiled: netlink", event("connect", func(e *detect.Event) { e.Family = "16" }), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, bad := p.Check(tt.ev)
			if tt.want == nil {
				if bad {
					t.Fatalf("deviation %+v, want none", d)
				}
				return
			}
			if !bad {
				t.Fatalf("no deviation, want %s %s", tt.want.Category, tt.want.Actual)
			}
			if d.Category != tt.want.Category || d.Item != tt.want.Item || d.Actual != tt.want.Actual || d.Event.Kind != tt.ev.Kind {
				t.Errorf("deviation %s %q (%q), want %s %q (%q)", d.Category, d.Actual, d.Item, tt.want.Category, tt.want.Actual, tt.want.Item)
			}
		})
	}
	t.Run("learning reports nothing", func(t *testing.T) {
		q := New("fn", "3", Window{}, t0)
		if d, bad := q.Check(execOf("/bin/sh")); bad {
			t.Errorf("a learning profile reported %+v", d)
		}
	})
}

func TestObserve(t *testing.T) {
	p := New("fn", "3", Window{Invocations: 10}, t0)
	tests := []struct {
		name  string
		ev    *detect.Event
		want  Item
		added bool
	}{
		{"new executable", execOf("/var/task/bootstrap"), Item{"exec", "/var/task/bootstrap"}, true},
		{"same executable", execOf("/var/task/bootstrap"), Item{}, false},
		{"quiet read", open("/usr/lib/libssl.so.3", "read"), Item{}, false},
		{"generated name", open("/tmp/out-1234.json", "write", "create"), Item{"write", "/tmp/out-*.json"}, true},
		{"matches the learned pattern", open("/tmp/out-98765.json", "write"), Item{}, false},
		{"rename: the first new name", rename("/tmp/out-1.json", "/tmp/final.json"), Item{"write", "/tmp/final.json"}, true},
		{"destination", connect("198.18.0.5", 443), Item{"connect", "inet:198.18.0.5:443"}, true},
		{"unix socket made absolute", connectUnix("run/app.sock"), Item{"connect", "unix:/var/task/run/app.sock"}, true},
		{"unprintable socket name", connectUnix("@a\x00b"), Item{"connect", "unix:@a?b"}, true},
		{"unprintable path segment", open("/srv/\x01x/y", "read"), Item{"read", "/srv/*/y"}, true},
		{"star in a name", open("/srv/a*b", "read"), Item{"read", "/srv/*"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			it, added := p.Observe(tt.ev)
			if it != tt.want || added != tt.added {
				t.Errorf("Observe = %+v %v, want %+v %v", it, added, tt.want, tt.added)
			}
		})
	}
	if err := p.Validate(); err != nil {
		t.Fatalf("learned profile: %v", err)
	}
	p.Invoked(t0)
	if err := p.Approve(t0); err != nil {
		t.Fatal(err)
	}
	if _, added := p.Observe(execOf("/bin/sh")); added || slices.Contains(p.Exec, "/bin/sh") {
		t.Error("an approved profile learned")
	}
}

func TestCollapseToRoot(t *testing.T) {
	p := New("fn", "3", Window{}, t0)
	for i := range collapseAfter + 1 {
		p.Observe(open("/tmp/"+string(rune('a'+i))+"name", "write", "create"))
		p.Observe(execOf("/tmp/bin/" + string(rune('a'+i)) + "tool"))
	}
	if !slices.Equal(p.Write, []string{"/tmp/**"}) {
		t.Errorf("write = %q, want /tmp/**", p.Write)
	}
	if !slices.Equal(p.Exec, []string{"/tmp/bin/*"}) {
		t.Errorf("exec = %q, want /tmp/bin/* (exec never becomes **)", p.Exec)
	}
	for i := range collapseAfter + 1 {
		p.Observe(execOf("/tmp/" + string(rune('a'+i)) + "dir/tool"))
	}
	if !slices.Equal(p.Exec, []string{"/tmp/*/*"}) {
		t.Errorf("exec = %q, want /tmp/*/* (and never **)", p.Exec)
	}
}

func TestWindow(t *testing.T) {
	tests := []struct {
		name  string
		w     Window
		calls []time.Duration // since t0
		ends  int             // index of the call that ends the window, -1 for none
	}{
		{"by count", Window{Invocations: 3}, []time.Duration{1, 2, 3, 4}, 2},
		{"by duration", Window{Duration: time.Hour}, []time.Duration{time.Minute, 59 * time.Minute, time.Hour, 2 * time.Hour}, 2},
		{"count first", Window{Invocations: 2, Duration: time.Hour}, []time.Duration{time.Minute, 2 * time.Minute}, 1},
		{"duration first", Window{Invocations: 100, Duration: time.Hour}, []time.Duration{time.Minute, 3 * time.Hour}, 1},
		{"no bound: until approved", Window{}, []time.Duration{time.Minute, 1000 * time.Hour}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := New("fn", "1", tt.w, t0)
			for i, d := range tt.calls {
				ended := p.Invoked(t0.Add(d))
				if ended != (i == tt.ends) {
					t.Fatalf("call %d: ended = %v", i, ended)
				}
				want := StateLearning
				if tt.ends >= 0 && i >= tt.ends {
					want = StateLearned
				}
				if p.State != want {
					t.Fatalf("call %d: state %s, want %s", i, p.State, want)
				}
			}
			if tt.ends >= 0 && p.Learning.Seen != tt.ends+1 {
				t.Errorf("seen = %d, want %d (a learned profile counts no more)", p.Learning.Seen, tt.ends+1)
			}
		})
	}
}

func TestApprove(t *testing.T) {
	tests := []struct {
		from    State
		wantErr bool
	}{
		{StateLearning, false},
		{StateLearned, false},
		{StateApproved, true},
		{State("paused"), true},
		{State(""), true},
	}
	for _, tt := range tests {
		t.Run(string(tt.from), func(t *testing.T) {
			p := New("fn", "1", Window{}, t0)
			p.State = tt.from
			err := p.Approve(t0.Add(time.Hour))
			if tt.wantErr {
				if !errors.Is(err, ErrTransition) || p.State != tt.from {
					t.Errorf("Approve from %q = %v, state %s; want ErrTransition and no change", tt.from, err, p.State)
				}
				return
			}
			if err != nil || p.State != StateApproved || !p.Updated.Equal(t0.Add(time.Hour)) {
				t.Errorf("Approve from %q = %v, state %s, updated %v", tt.from, err, p.State, p.Updated)
			}
		})
	}
}

func TestInheritAndDrift(t *testing.T) {
	base := New("fn", "6", Window{Invocations: 1}, t0)
	base.Observe(execOf("/var/task/bootstrap"))
	base.Observe(open("/tmp/cache-1234.db", "write", "create"))
	base.Observe(connect("198.18.0.5", 443))
	base.Invoked(t0)

	p := Inherit(base, "7", Window{Invocations: 10}, t0.Add(time.Hour))
	if p.State != StateLearning || p.InheritedFrom != "6" || p.Function != "fn" || !slices.Equal(p.Exec, base.Exec) || !p.Learning.Started.Equal(t0.Add(time.Hour)) {
		t.Fatalf("inherited = %+v", p)
	}
	base.Exec[0] = "/changed" // the copy is independent
	if p.Exec[0] != "/var/task/bootstrap" {
		t.Fatal("Inherit shares the base's lists")
	}

	tests := []struct {
		name    string
		ev      *detect.Event
		summary string // "" for no drift
		sev     detect.Severity
	}{
		{"inherited executable", execOf("/var/task/bootstrap"), "", ""},
		{"inherited pattern", open("/tmp/cache-999.db", "write"), "", ""},
		{"new executable", execOf("/bin/sh"), "version 7 spawns /bin/sh, version 6 never did", detect.SeverityLow},
		{"reported once", execOf("/bin/sh"), "", ""},
		{"new read", open("/etc/shadow", "read"), "version 7 reads /etc/shadow, version 6 never did", detect.SeverityInfo},
		{"new write", open("/tmp/report-2026.csv", "write", "create"), "version 7 writes /tmp/report-2026.csv, version 6 never did", detect.SeverityInfo},
		{"same pattern once", open("/tmp/report-2027.csv", "write", "create"), "", ""},
		{"new destination", connect("198.18.0.7", 5432), "version 7 connects to 198.18.0.7:5432, version 6 never did", detect.SeverityLow},
		{"failed attempt", failed(connect("198.18.0.8", 25), "ECONNREFUSED", 111), "version 7 connects to 198.18.0.8:25, version 6 never did (the attempt failed: ECONNREFUSED)", detect.SeverityLow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p.Observe(tt.ev)
			d, drift := p.Drift(tt.ev)
			if tt.summary == "" {
				if drift {
					t.Fatalf("drift %+v, want none", d)
				}
				return
			}
			if !drift {
				t.Fatal("no drift")
			}
			a := DriftAlert(tt.ev, d, p)
			if a.Summary != tt.summary || a.Source != detect.SourceDrift || a.Rule != "drift."+d.Category || a.Severity != tt.sev ||
				a.RequestID != "req-1" || a.Instance != "fn-3-a" || len(a.Evidence) != 1 {
				t.Errorf("drift alert = %+v", a)
			}
		})
	}
	wantDrifted := []string{"connect inet:198.18.0.7:5432", "connect inet:198.18.0.8:25", "exec /bin/sh", "read /etc/shadow", "write /tmp/report-*.csv"}
	if !slices.Equal(p.Drifted, wantDrifted) {
		t.Errorf("drifted = %q, want %q", p.Drifted, wantDrifted)
	}

	// Read back from storage, the profile knows what it reported but not
	// its base until linked.
	q, err := Parse(p.YAML())
	if err != nil {
		t.Fatal(err)
	}
	if _, drift := q.Drift(execOf("/bin/bash")); drift {
		t.Error("drift without a base")
	}
	if err := q.LinkBase(New("fn", "5", Window{}, t0)); !errors.Is(err, ErrNotBase) {
		t.Errorf("LinkBase(version 5) = %v, want ErrNotBase", err)
	}
	if err := q.LinkBase(base); err != nil {
		t.Fatal(err)
	}
	if _, drift := q.Drift(execOf("/bin/sh")); drift {
		t.Error("drift reported again after a reload")
	}
	if _, drift := q.Drift(execOf("/bin/bash")); !drift {
		t.Error("no drift after LinkBase")
	}
	if _, drift := New("fn", "1", Window{}, t0).Drift(execOf("/bin/sh")); drift {
		t.Error("drift of a profile that inherited nothing")
	}
}

func TestDeviationAlert(t *testing.T) {
	p := New("fn", "3", Window{}, t0)
	p.State = StateApproved
	tests := []struct {
		ev      *detect.Event
		sev     detect.Severity
		summary string
	}{
		{execOf("/bin/sh"), detect.SeverityHigh, "exec of /bin/sh is not in the profile of fn:3"},
		{connect("198.18.0.9", 4444), detect.SeverityHigh, "connect to 198.18.0.9:4444 is not in the profile of fn:3"},
		{connect("2001:db8::9", 443), detect.SeverityHigh, "connect to [2001:db8::9]:443 is not in the profile of fn:3"},
		{connectUnix("/run/x.sock"), detect.SeverityHigh, "connect to unix:/run/x.sock is not in the profile of fn:3"},
		{open("/var/task/x", "write"), detect.SeverityMedium, "write of /var/task/x is not in the profile of fn:3"},
		{failed(open("/etc/shadow", "read"), "EACCES", 13), detect.SeverityLow, "read of /etc/shadow is not in the profile of fn:3 (the attempt failed: EACCES)"},
	}
	for _, tt := range tests {
		t.Run(tt.summary, func(t *testing.T) {
			d, bad := p.Check(tt.ev)
			if !bad {
				t.Fatal("no deviation")
			}
			a := DeviationAlert(tt.ev, d, p)
			if a.Summary != tt.summary || a.Severity != tt.sev || a.Source != detect.SourceProfile || a.Rule != "profile."+d.Category ||
				a.Function != "fn" || a.Version != "3" || a.RequestID != "req-1" || !a.Time.Equal(t0) || len(a.Evidence) != 1 || a.Evidence[0].Kind != tt.ev.Kind {
				t.Errorf("alert = %+v", a)
			}
		})
	}
}

func TestReplacedListTakesEffect(t *testing.T) {
	p := New("fn", "3", Window{}, t0)
	p.State = StateApproved
	if _, bad := p.Check(execOf("/bin/sh")); !bad {
		t.Fatal("no deviation")
	}
	p.Exec = []string{"/bin/sh"}
	if d, bad := p.Check(execOf("/bin/sh")); bad {
		t.Fatalf("replaced list not used: %+v", d)
	}
	p.Exec[0] = "/bin/dash"
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, bad := p.Check(execOf("/bin/sh")); !bad {
		t.Fatal("entry changed in place and validated, still used")
	}
}
