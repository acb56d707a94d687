package sandbox

import (
	"bufio"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"moat.dev/moat/internal/detect"
	"moat.dev/moat/internal/fixture"
)

// probeStep and probeResult are testdata/execprobe's step and result.
type probeStep struct {
	Name  string `json:"name"`
	Op    string `json:"op"`
	Path  string `json:"path"`
	Dir   string `json:"dir,omitempty"`
	Dst   string `json:"dst,omitempty"`
	Empty bool   `json:"empty,omitempty"`
	N     int    `json:"n,omitempty"`
}

type probeResult struct {
	Name      string  `json:"name"`
	Errno     string  `json:"errno,omitempty"`
	Exit      int     `json:"exit"`
	Err       string  `json:"err,omitempty"`
	NsPerExec float64 `json:"nsPerExec,omitempty"`
}

// probeCode returns a code directory whose bootstrap is execprobe.
func probeCode(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(fixture.GoBinary(t, "internal/sandbox/testdata/execprobe"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bootstrap"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// runProbe runs steps in a fresh instance of code, waits for it to end
// and closes it (so that no callback of enf runs any more), and returns
// the results by step name and the instance.
func runProbe(t testing.TB, m *Manager, id, code string, memMB int, enf *Enforcement, steps []probeStep) (map[string]probeResult, *Instance) {
	t.Helper()
	js, err := json.Marshal(steps)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := m.Spawn(context.Background(), Spec{ID: id, CodeDir: code, MemoryMB: memMB, Env: []string{"MOAT_EXECPROBE=" + string(js)}, Enforce: enf})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	res := map[string]probeResult{}
	var other []string
	sc := bufio.NewScanner(inst.Output)
	for sc.Scan() {
		var r probeResult
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil || r.Name == "" {
			other = append(other, sc.Text())
			continue
		}
		res[r.Name] = r
	}
	<-inst.Done()
	if err := inst.Close(); err != nil {
		t.Fatal(err)
	}
	if len(res) != len(steps) {
		t.Fatalf("%d results for %d steps (exit %v); other output:\n%s", len(res), len(steps), inst.ExitError(), strings.Join(other, "\n"))
	}
	return res, inst
}

// execRecorder records what the supervisor asked and reported.
type execRecorder struct {
	mu      sync.Mutex
	asked   []string
	denied  []string
	badPids int
	refuse  string // AllowExec refuses this path
	panics  bool   // AllowExec panics
}

func (r *execRecorder) allowExec(path string, pid int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.asked = append(r.asked, path)
	if pid <= 0 {
		r.badPids++
	}
	if r.panics {
		panic("AllowExec fails")
	}
	return path != r.refuse
}

func (r *execRecorder) deniedExec(path string, pid int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.denied = append(r.denied, path)
	if pid <= 0 {
		r.badPids++
	}
}

// execObserver hands each instance's refused execs to that instance's
// recorder, as the monitor takes them.
type execObserver struct {
	mu  sync.Mutex
	rec map[string]*execRecorder
}

func (o *execObserver) Observe(string, detect.InstanceInfo, uint64, string) error { return nil }
func (o *execObserver) Forget(string)                                             {}
func (o *execObserver) ExecRefused(id, path string, pid int) {
	o.mu.Lock()
	r := o.rec[id]
	o.mu.Unlock()
	if r != nil {
		r.deniedExec(path, pid)
	}
}

// elfInterpreter returns the PT_INTERP of the host's program p.
func elfInterpreter(t *testing.T, p string) string {
	t.Helper()
	if i := interpreter(p); strings.HasPrefix(i, "/") {
		return i
	}
	if _, err := elf.Open(p); err != nil {
		t.Fatal(err)
	}
	t.Skipf("%s is not dynamically linked", p)
	return ""
}

// TestEnforceExecSupervisor runs the same execs in instances with and
// without enforcement: the exec supervisor refuses with EPERM what the
// profile does not list (relative, execveat and fexecve calls included),
// Landlock alone refuses it with EACCES when AllowExec lets everything
// through, and without Enforce everything runs.
func TestEnforceExecSupervisor(t *testing.T) {
	obs := &execObserver{rec: map[string]*execRecorder{}}
	m := newObservedManager(t, obs)
	code := probeCode(t)
	ldso := elfInterpreter(t, "/usr/bin/true")
	steps := []probeStep{
		{Name: "true", Op: "exec", Path: "/usr/bin/true"},
		{Name: "sh", Op: "exec", Path: "/bin/sh"},
		{Name: "relative", Op: "exec", Path: "./true", Dir: "/usr/bin"},
		{Name: "copy", Op: "copy", Path: "/usr/bin/true", Dst: "/tmp/t"},
		{Name: "tmp", Op: "exec", Path: "/tmp/t"},
		{Name: "execveat", Op: "execveat", Path: "id", Dir: "/usr/bin"},
		{Name: "fexecve", Op: "execveat", Path: "/usr/bin/true", Empty: true},
		{Name: "dotdot", Op: "exec", Path: "/usr/bin/../bin/true"},
		{Name: "ld.so", Op: "exec", Path: ldso},
	}
	const boot = "/var/task/bootstrap" // the execveat steps run it as their child
	tests := []struct {
		name       string
		enforce    func(*execRecorder) *Enforcement
		want       map[string]string // step -> errno; "" ran
		wantAsked  []string
		wantDenied []string
	}{
		{
			name: "exec patterns",
			enforce: func(r *execRecorder) *Enforcement {
				return &Enforcement{Exec: []string{boot, "/usr/bin/true"}}
			},
			want:       map[string]string{"true": "", "sh": "EPERM", "relative": "", "tmp": "EPERM", "execveat": "EPERM", "fexecve": "", "dotdot": "EPERM", "ld.so": "EPERM"},
			wantDenied: []string{"/bin/sh", "/tmp/t", "/usr/bin/id", "/usr/bin/../bin/true", ldso},
		},
		{
			// The supervisor lets everything through: what is refused
			// now is refused by Landlock (EACCES). The path of a
			// relative exec arrives absolute. ld.so is executable for
			// Landlock (every dynamic program needs it); only the
			// supervisor keeps it from being run directly.
			name: "Landlock alone",
			enforce: func(r *execRecorder) *Enforcement {
				return &Enforcement{Exec: []string{"/usr/bin/true"}, AllowExec: r.allowExec}
			},
			want:       map[string]string{"true": "", "sh": "EACCES", "relative": "", "tmp": "EACCES", "execveat": "EACCES", "fexecve": "", "dotdot": "EPERM", "ld.so": ""},
			wantAsked:  []string{"/usr/bin/true", "/bin/sh", "/usr/bin/true", "/tmp/t", boot, "/usr/bin/id", boot, "/usr/bin/true", ldso},
			wantDenied: []string{"/usr/bin/../bin/true"},
		},
		{
			name: "AllowExec refuses a listed program",
			enforce: func(r *execRecorder) *Enforcement {
				r.refuse = "/usr/bin/true"
				return &Enforcement{Exec: []string{"/usr/bin/true"}, AllowExec: r.allowExec}
			},
			want:       map[string]string{"true": "EPERM", "sh": "EACCES", "relative": "EPERM", "tmp": "EACCES", "execveat": "EACCES", "fexecve": "EPERM", "dotdot": "EPERM", "ld.so": ""},
			wantAsked:  []string{"/usr/bin/true", "/bin/sh", "/usr/bin/true", "/tmp/t", boot, "/usr/bin/id", boot, "/usr/bin/true", ldso},
			wantDenied: []string{"/usr/bin/true", "/usr/bin/true", "/usr/bin/true", "/usr/bin/../bin/true"},
		},
		{
			// A panicking callback refuses, and moat lives on.
			name: "AllowExec panics",
			enforce: func(r *execRecorder) *Enforcement {
				r.panics = true
				return &Enforcement{Exec: []string{"/usr/bin/true"}, AllowExec: r.allowExec}
			},
			want:       map[string]string{"true": "EPERM", "sh": "EPERM", "relative": "EPERM", "tmp": "EPERM", "execveat": "EPERM", "fexecve": "EPERM", "dotdot": "EPERM", "ld.so": "EPERM"},
			wantAsked:  []string{"/usr/bin/true", "/bin/sh", "/usr/bin/true", "/tmp/t", boot, boot, ldso},
			wantDenied: []string{"/usr/bin/true", "/bin/sh", "/usr/bin/true", "/tmp/t", boot, boot, "/usr/bin/../bin/true", ldso},
		},
		{
			name:    "no enforcement",
			enforce: func(*execRecorder) *Enforcement { return nil },
			want:    map[string]string{"true": "", "sh": "", "relative": "", "tmp": "", "execveat": "", "fexecve": "", "dotdot": "", "ld.so": ""},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rec execRecorder
			enf := tt.enforce(&rec)
			id := fmt.Sprintf("enforce-%d", i)
			obs.mu.Lock()
			obs.rec[id] = &rec
			obs.mu.Unlock()
			res, inst := runProbe(t, m, id, code, 128, enf, steps)
			if res["copy"].Err != "" {
				t.Fatalf("copy to /tmp: %s", res["copy"].Err)
			}
			for _, s := range steps {
				want, ok := tt.want[s.Name]
				if !ok {
					continue
				}
				r := res[s.Name]
				if r.Err != "" || r.Errno != want {
					t.Errorf("%s (%s %s): errno %q, err %q; want errno %q", s.Name, s.Op, s.Path, r.Errno, r.Err, want)
				}
				if s.Name == "true" && want == "" && r.Exit != 0 {
					t.Errorf("true exited %d", r.Exit)
				}
			}
			if got := inst.Isolation.ExecSupervisor; got != (enf != nil) {
				t.Errorf("Isolation.ExecSupervisor = %v", got)
			}
			if got := inst.Isolation.LandlockExecAllowList; got != (enf != nil) {
				t.Errorf("Isolation.LandlockExecAllowList = %v", got)
			}
			if !slices.Equal(rec.asked, tt.wantAsked) {
				t.Errorf("AllowExec asked for\n%q\nwant\n%q", rec.asked, tt.wantAsked)
			}
			if !slices.Equal(rec.denied, tt.wantDenied) {
				t.Errorf("ExecRefused told of\n%q\nwant\n%q", rec.denied, tt.wantDenied)
			}
			if rec.badPids > 0 {
				t.Errorf("%d callbacks without a pid", rec.badPids)
			}
		})
	}
}

// TestExecSupervisorEndsWithInstance: once every process of an instance
// is gone the supervisor's goroutine ends by itself, before Close.
func TestExecSupervisorEndsWithInstance(t *testing.T) {
	m := newManager(t, true)
	inst, err := m.Spawn(context.Background(), Spec{ID: "short", CodeDir: probeCode(t), MemoryMB: 64,
		Env: []string{"MOAT_EXECPROBE=[]"}, Enforce: &Enforcement{}})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	<-inst.Done()
	select {
	case <-inst.super.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the exec supervisor outlived its instance")
	}
	if err := inst.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestEnforceNeedsEveryWall: enforce mode is refused on a manager
// without seccomp (nothing could supervise execs).
func TestEnforceNeedsEveryWall(t *testing.T) {
	fixture.RequireRoot(t)
	m, err := NewManager(Options{CgroupParent: "moat-test-enforce-walls", Namespaces: true, Landlock: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.Close()
		m.removeParent()
	})
	_, err = m.Spawn(context.Background(), Spec{ID: "nowall", CodeDir: t.TempDir(), MemoryMB: 64, Enforce: &Enforcement{}})
	if err == nil || !strings.Contains(err.Error(), "enforce mode needs") {
		t.Fatalf("Spawn = %v, want the enforce mode refusal", err)
	}
}

// BenchmarkExec measures one fork, exec and wait of /usr/bin/true inside
// an instance of 1,769 MB (one full CPU), without and with enforcement
// (exec supervisor and Landlock execute allow-list). The ns/exec metric
// is the probe's own mean.
//
//	go test -run '^$' -bench Exec -benchtime 2000x ./internal/sandbox/
func BenchmarkExec(b *testing.B) {
	m := newManager(b, true)
	code := probeCode(b)
	for i, enf := range []*Enforcement{nil, {Exec: []string{"/usr/bin/true"}}} {
		name := "plain"
		if enf != nil {
			name = "supervised"
		}
		b.Run(name, func(b *testing.B) {
			n := max(b.N, 100)
			res, _ := runProbe(b, m, fmt.Sprintf("bench-exec-%d-%d", i, b.N), code, 1769, enf, []probeStep{{Name: "bench", Op: "bench", Path: "/usr/bin/true", N: n}})
			r := res["bench"]
			if r.Err != "" || r.Errno != "" || r.Exit != 0 {
				b.Fatalf("bench: %+v", r)
			}
			b.ReportMetric(r.NsPerExec, "ns/exec")
		})
	}
}

func TestExecTarget(t *testing.T) {
	tests := []struct {
		name, raw, base string
		want            string
		err             error
	}{
		{"absolute", "/usr/bin/true", "", "/usr/bin/true", nil},
		{"absolute ignores base", "/usr/bin/true", "/tmp", "/usr/bin/true", nil},
		{"absolute cleaned", "/usr//bin/./true", "", "/usr/bin/true", nil},
		{"relative", "./true", "/usr/bin", "/usr/bin/true", nil},
		{"relative bare", "true", "/usr/bin", "/usr/bin/true", nil},
		{"relative in root", "bin/sh", "/", "/bin/sh", nil},
		{"empty path is the fd", "", "/usr/bin/true", "/usr/bin/true", nil},
		{"dotdot absolute", "/usr/bin/../bin/sh", "", "/usr/bin/../bin/sh", errDotDot},
		{"dotdot relative", "../bin/sh", "/usr/lib", "/usr/lib/../bin/sh", errDotDot},
		{"dotdot only", "..", "/tmp", "/tmp/..", errDotDot},
		{"dotdot-like name", "/tmp/..x", "", "/tmp/..x", nil},
		{"relative to a pipe", "x", "pipe:[1234]", "", errNoBase},
		{"relative to nothing", "x", "", "", errNoBase},
		{"deleted file", "", "/tmp/t (deleted)", "", errNoBase},
		{"memfd", "", "/memfd:x (deleted)", "", errNoBase},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := execTarget(tt.raw, tt.base)
			if got != tt.want || !errors.Is(err, tt.err) {
				t.Fatalf("execTarget(%q, %q) = %q, %v; want %q, %v", tt.raw, tt.base, got, err, tt.want, tt.err)
			}
		})
	}
}

// FuzzExecTarget: whatever a function puts in its exec path, the
// supervisor matches only absolute, clean paths without "..", and an
// absolute path is the one the caller gave, cleaned.
func FuzzExecTarget(f *testing.F) {
	for _, s := range [][2]string{{"/usr/bin/true", ""}, {"./x", "/tmp"}, {"../x", "/usr"}, {"", "/memfd:x (deleted)"}, {"a/../../b", "/"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, raw, base string) {
		got, err := execTarget(raw, base)
		if err != nil {
			return
		}
		if !filepath.IsAbs(got) || filepath.Clean(got) != got || slices.Contains(strings.Split(got, "/"), "..") {
			t.Fatalf("execTarget(%q, %q) = %q", raw, base, got)
		}
		if filepath.IsAbs(raw) && got != filepath.Clean(raw) {
			t.Fatalf("execTarget(%q, %q) = %q, want the path as given", raw, base, got)
		}
		// A name with a "*" is a pattern as an Exec item, not itself.
		if !strings.Contains(got, "*") && !newExecPatterns([]string{got}).match(got) {
			t.Fatalf("%q does not match itself", got)
		}
	})
}

func TestExecPatterns(t *testing.T) {
	p := newExecPatterns([]string{
		"/var/task/bootstrap", "/usr/bin/curl", "/opt/bin/*", "/var/task/node_modules/**",
		"/usr/lib/python3*/bin/tool", "relative/ignored", "/usr/local/bin/../bin/x", "/bad[",
	})
	tests := []struct {
		path string
		want bool
	}{
		{"/var/task/bootstrap", true},
		{"/usr/bin/curl", true},
		{"/usr/bin/curlx", false},
		{"/usr/bin", false},
		{"/opt/bin/a", true},
		{"/opt/bin/a/b", false},
		{"/opt/bin", false},
		{"/var/task/node_modules/.bin/x", true},
		{"/var/task/node_modules/a/b/c", true},
		{"/var/task/node_modules", false},
		{"/var/task/node_modulesx/a", false},
		{"/usr/lib/python3.12/bin/tool", true},
		{"/usr/lib/python3.12/x/bin/tool", false},
		{"relative/ignored", false},
		{"/usr/local/bin/x", true}, // items are cleaned
		{"/usr/local/bin/../bin/x", false},
		{"/bad[", true}, // no "*": a plain name, as in profiles
		{"/bin/sh", false},
	}
	for _, tt := range tests {
		if got := p.match(tt.path); got != tt.want {
			t.Errorf("match(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
}

// TestReadCString reads strings from this process's own memory as the
// supervisor reads them from a caller's: page by page, up to a NUL, a
// bound or an unmapped page.
func TestReadCString(t *testing.T) {
	page := unix.Getpagesize()
	mem, err := unix.Mmap(-1, 0, 3*page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	if err := unix.Mprotect(mem[2*page:], unix.PROT_NONE); err != nil {
		t.Fatal(err)
	}
	base := uint64(uintptr(unsafe.Pointer(&mem[0])))
	p := uint64(page)
	put := func(off int, s string, nul bool) uint64 {
		copy(mem[off:], s)
		if nul {
			mem[off+len(s)] = 0
		}
		return base + uint64(off)
	}
	long := strings.Repeat("a", 100)
	tests := []struct {
		name string
		addr func() uint64 // writes the string, returns its address
		max  int
		want string
		err  error
	}{
		{"short", func() uint64 { return put(0, "/usr/bin/true", true) }, 4096, "/usr/bin/true", nil},
		{"empty", func() uint64 { return put(200, "", true) }, 4096, "", nil},
		{"across a page", func() uint64 { return put(page-5, "/usr/bin/true", true) }, 4096, "/usr/bin/true", nil},
		{"NUL last before unmapped", func() uint64 { return put(2*page-14, "/usr/bin/true", true) }, 4096, "/usr/bin/true", nil},
		{"runs into unmapped", func() uint64 { return put(2*page-13, "/usr/bin/true", false) }, 4096, "", unix.EFAULT},
		{"too long", func() uint64 { return put(1000, long, true) }, 100, "", unix.ENAMETOOLONG},
		{"just fits", func() uint64 { return put(1200, long[:99], true) }, 100, long[:99], nil},
		{"unmapped", func() uint64 { return base + 2*p }, 4096, "", unix.EFAULT},
		{"null", func() uint64 { return 0 }, 4096, "", unix.EFAULT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readCString(os.Getpid(), tt.addr(), tt.max)
			if got != tt.want || !errors.Is(err, tt.err) {
				t.Fatalf("readCString = %q, %v; want %q, %v", got, err, tt.want, tt.err)
			}
		})
	}
}
