package main

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func noEnv(string) string { return "" }

func TestParseEvent(t *testing.T) {
	for _, tc := range []struct {
		name    string
		raw     string
		env     map[string]string
		checks  []string // nil: every check
		wantErr string
		check   func(t *testing.T, p params)
	}{
		{name: "empty payload", raw: ``},
		{name: "null", raw: `null`},
		{name: "empty object", raw: `{}`, check: func(t *testing.T, p params) {
			if p.MemoryMB != defaultMemoryMB || p.ForkLimit != defaultForkLimit || p.DialTimeoutMS != defaultDialTimeoutMS {
				t.Errorf("defaults = %d MB, fork %d, dial %d ms", p.MemoryMB, p.ForkLimit, p.DialTimeoutMS)
			}
			if !slices.Equal(p.MetadataAddrs, defaultMetadataAddrs) {
				t.Errorf("metadata_addrs = %v", p.MetadataAddrs)
			}
			if !nameRE.MatchString(p.Nonce) || len(p.Nonce) != 16 {
				t.Errorf("nonce = %q", p.Nonce)
			}
		}},
		{name: "selection keeps run order", raw: `{"checks": ["fork_bomb", "caps", "read_shadow"]}`,
			checks: []string{"caps", "read_shadow", "fork_bomb"}},
		{name: "skip", raw: `{"checks": ["caps", "read_shadow"], "skip": ["caps"]}`, checks: []string{"read_shadow"}},
		{name: "memory from the Lambda environment", raw: `{}`, env: map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512"},
			check: func(t *testing.T, p params) {
				if p.MemoryMB != 512 {
					t.Errorf("memory_mb = %d, want 512", p.MemoryMB)
				}
			}},
		{name: "memory param wins", raw: `{"params": {"memory_mb": 64}}`, env: map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512"},
			check: func(t *testing.T, p params) {
				if p.MemoryMB != 64 {
					t.Errorf("memory_mb = %d, want 64", p.MemoryMB)
				}
			}},
		{name: "every param", raw: `{"params": {"host_paths": ["/data/moat"], "host_pids": [1234], "api_addr": "127.0.0.1:8080",
			"other_addrs": ["[::1]:9"], "metadata_addrs": [], "unix_paths": ["/run/x.sock"], "memory_mb": 256, "tmp_limit_mb": 64,
			"fork_limit": 1500, "dial_timeout_ms": 300, "nonce": "n-1_A", "write_marker": "w", "read_marker": "r", "networked": true}}`,
			check: func(t *testing.T, p params) {
				want := params{HostPaths: []string{"/data/moat"}, HostPIDs: []int{1234}, APIAddr: "127.0.0.1:8080",
					OtherAddrs: []string{"[::1]:9"}, MetadataAddrs: []string{}, UnixPaths: []string{"/run/x.sock"}, MemoryMB: 256,
					TmpLimitMB: 64, ForkLimit: 1500, DialTimeoutMS: 300, Nonce: "n-1_A", WriteMarker: "w", ReadMarker: "r", Networked: true}
				if !equalJSON(t, p, want) {
					t.Errorf("params = %+v, want %+v", p, want)
				}
			}},
		{name: "unknown check", raw: `{"checks": ["caps", "nope"]}`, wantErr: `unknown check "nope"`},
		{name: "unknown skip", raw: `{"skip": ["nope"]}`, wantErr: `unknown check "nope"`},
		{name: "unknown field", raw: `{"check": ["caps"]}`, wantErr: `unknown field "check"`},
		{name: "unknown param", raw: `{"params": {"memory": 1}}`, wantErr: `unknown field "memory"`},
		{name: "trailing data", raw: `{} {}`, wantErr: "data after the event object"},
		{name: "not an object", raw: `"caps"`, wantErr: "decode event"},
		{name: "nonce with a slash", raw: `{"params": {"nonce": "../x"}}`, wantErr: "nonce"},
		{name: "nonce too long", raw: `{"params": {"nonce": "` + strings.Repeat("a", 65) + `"}}`, wantErr: "nonce"},
		{name: "marker with a space", raw: `{"params": {"write_marker": "a b"}}`, wantErr: "write_marker"},
		{name: "read marker", raw: `{"params": {"read_marker": "a.b"}}`, wantErr: "read_marker"},
		{name: "negative memory", raw: `{"params": {"memory_mb": -1}}`, wantErr: "memory_mb"},
		{name: "huge tmp", raw: `{"params": {"tmp_limit_mb": 999999}}`, wantErr: "tmp_limit_mb"},
		{name: "fork limit", raw: `{"params": {"fork_limit": 5000}}`, wantErr: "fork_limit"},
		{name: "dial timeout", raw: `{"params": {"dial_timeout_ms": -5}}`, wantErr: "dial_timeout_ms"},
		{name: "relative host path", raw: `{"params": {"host_paths": ["etc/shadow"]}}`, wantErr: "not absolute"},
		{name: "relative unix path", raw: `{"params": {"unix_paths": ["x.sock"]}}`, wantErr: "not absolute"},
		{name: "pid zero", raw: `{"params": {"host_pids": [0]}}`, wantErr: "not a pid"},
		{name: "address without port", raw: `{"params": {"api_addr": "127.0.0.1"}}`, wantErr: "address"},
		{name: "other address without port", raw: `{"params": {"other_addrs": ["10.0.0.1"]}}`, wantErr: "address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			getenv := noEnv
			if tc.env != nil {
				getenv = func(k string) string { return tc.env[k] }
			}
			pl, err := parseEvent([]byte(tc.raw), getenv)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, c := range pl.checks {
				names = append(names, c.name)
			}
			want := tc.checks
			if want == nil {
				want = checkNames()
			}
			if !slices.Equal(names, want) {
				t.Errorf("checks = %v, want %v", names, want)
			}
			if tc.check != nil {
				tc.check(t, pl.params)
			}
		})
	}
}

func equalJSON(t *testing.T, a, b any) bool {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(ja) == string(jb)
}

func FuzzParseEvent(f *testing.F) {
	for _, seed := range []string{``, `{}`, `{"checks": ["caps"]}`, `{"params": {"nonce": "x", "host_pids": [1]}}`, `{"skip": ["fork_bomb"]}`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		pl, err := parseEvent(raw, noEnv)
		if err != nil {
			return
		}
		if !nameRE.MatchString(pl.params.Nonce) {
			t.Errorf("accepted nonce %q", pl.params.Nonce)
		}
		for _, c := range pl.checks {
			if checkByName(c.name) == nil {
				t.Errorf("unknown check %q in plan", c.name)
			}
		}
		if pl.params.MemoryMB <= 0 || pl.params.ForkLimit <= 0 || pl.params.DialTimeoutMS <= 0 {
			t.Errorf("non-positive limits in %+v", pl.params)
		}
	})
}

func TestReport(t *testing.T) {
	for _, tc := range []struct {
		name        string
		fill        func(r *report)
		wantEscaped bool
		wantDetail  string
	}{
		{name: "nothing", fill: func(r *report) {}, wantDetail: "nothing attempted"},
		{name: "refused", fill: func(r *report) {
			r.try("open /etc/shadow", &fs.PathError{Op: "open", Path: "/etc/shadow", Err: syscall.ENOENT})
			r.try("ptrace(PTRACE_ATTACH, 1)", syscall.EPERM)
		}, wantDetail: "open /etc/shadow: no such file or directory (ENOENT); ptrace(PTRACE_ATTACH, 1): operation not permitted (EPERM)"},
		{name: "one succeeded", fill: func(r *report) {
			r.notef("CapEff: %s", "0000000000000000")
			r.try("mount tmpfs on /tmp/x", nil)
		}, wantEscaped: true, wantDetail: "CapEff: 0000000000000000; ESCAPED mount tmpfs on /tmp/x: succeeded"},
		{name: "escapef", fill: func(r *report) { r.escapef("held %d open files", 1100) },
			wantEscaped: true, wantDetail: "ESCAPED held 1100 open files"},
		{name: "forked outcomes", fill: func(r *report) {
			r.forked(opOutcome{label: "unshare(CLONE_NEWUSER)", ran: true, errno: unix.EPERM})
			r.forked(opOutcome{label: "fchdir(old root)"})
		}, wantDetail: "unshare(CLONE_NEWUSER): operation not permitted (EPERM); fchdir(old root): not reached"},
		{name: "privileged call rejected for its arguments", fill: func(r *report) {
			judgePrivileged(r, "init_module(empty image)", unix.ENOEXEC)
		}, wantEscaped: true, wantDetail: "ESCAPED init_module(empty image): passed the privilege check; the harmless arguments were then rejected with exec format error (ENOEXEC)"},
		{name: "privileged call refused", fill: func(r *report) {
			judgePrivileged(r, "reboot(invalid command)", unix.EPERM)
			judgePrivileged(r, "kexec_load(17 segments)", unix.ENOSYS)
		}, wantDetail: "reboot(invalid command): operation not permitted (EPERM); kexec_load(17 segments): function not implemented (ENOSYS) (not available)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &report{}
			tc.fill(r)
			res := r.result("x", 1500*time.Microsecond)
			if res.Escaped != tc.wantEscaped || res.Detail != tc.wantDetail || res.Name != "x" || res.MS != 1 {
				t.Errorf("result = %+v, want escaped %v detail %q", res, tc.wantEscaped, tc.wantDetail)
			}
		})
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestErrText(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, "ok"},
		{"errno", syscall.EACCES, "permission denied (EACCES)"},
		{"wrapped errno", &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}, "connection refused (ECONNREFUSED)"},
		{"path error", &fs.PathError{Op: "open", Path: "/x", Err: syscall.EROFS}, "read-only file system (EROFS)"},
		{"unnamed errno", syscall.Errno(4000), "errno 4000 (errno 4000)"},
		{"timeout", timeoutErr{}, "timed out"},
		{"plain", errors.New("boom"), "boom"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := errText(tc.err); got != tc.want {
				t.Errorf("errText = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRunCheck(t *testing.T) {
	t.Run("result", func(t *testing.T) {
		res := runCheck(context.Background(), check{"c", time.Second, func(context.Context, *params) *report {
			r := &report{}
			r.try("x", nil)
			return r
		}}, &params{}, time.Second)
		if !res.Escaped || res.Name != "c" || res.Detail != "ESCAPED x: succeeded" {
			t.Errorf("result = %+v", res)
		}
	})
	t.Run("panic", func(t *testing.T) {
		res := runCheck(context.Background(), check{"p", time.Second, func(context.Context, *params) *report {
			panic("kaboom")
		}}, &params{}, time.Second)
		if res.Escaped || res.Detail != "check panicked: kaboom" {
			t.Errorf("result = %+v", res)
		}
	})
	t.Run("hang", func(t *testing.T) {
		release := make(chan struct{})
		defer close(release)
		res := runCheck(context.Background(), check{"h", time.Millisecond, func(context.Context, *params) *report {
			<-release
			return &report{}
		}}, &params{}, 10*time.Millisecond)
		if res.Escaped || !strings.Contains(res.Detail, "did not finish within 11ms") {
			t.Errorf("result = %+v", res)
		}
	})
	t.Run("context carries the timeout", func(t *testing.T) {
		res := runCheck(context.Background(), check{"t", 5 * time.Millisecond, func(ctx context.Context, _ *params) *report {
			<-ctx.Done()
			r := &report{}
			r.notef("%v", ctx.Err())
			return r
		}}, &params{}, time.Minute)
		if res.Detail != "context deadline exceeded" {
			t.Errorf("result = %+v", res)
		}
	})
}

func TestHandle(t *testing.T) {
	raw := `{"checks": ["tmp_cross_invocation"], "params": {"read_marker": "never-written-` + strings.ToLower(t.Name()) + `"}}`
	resp, err := handle(context.Background(), json.RawMessage(raw))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Results) != 1 || resp.Results[0].Name != "tmp_cross_invocation" || resp.Results[0].Escaped || len(resp.Escaped) != 0 {
		t.Fatalf("response = %+v", resp)
	}
	if !strings.Contains(resp.Results[0].Detail, "no marker from another invocation") {
		t.Errorf("detail = %q", resp.Results[0].Detail)
	}
	body, err := json.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"results":[{"name":`, `"escaped":false`, `"detail":`, `"ms":`} {
		if !strings.Contains(string(body), key) {
			t.Errorf("response JSON %s lacks %s", body, key)
		}
	}
	if _, err := handle(context.Background(), json.RawMessage(`{"checks": ["nope"]}`)); err == nil {
		t.Error("unknown check accepted")
	}
}

func TestRegistry(t *testing.T) {
	names := checkNames()
	if len(names) < 32 {
		t.Errorf("%d checks, want at least 32", len(names))
	}
	seen := map[string]bool{}
	for _, c := range registry {
		if seen[c.name] {
			t.Errorf("check %q registered twice", c.name)
		}
		seen[c.name] = true
		if c.timeout <= 0 || c.run == nil {
			t.Errorf("check %q has no timeout or function", c.name)
		}
		if !regexp.MustCompile(`^[a-z0-9_]+$`).MatchString(c.name) {
			t.Errorf("check name %q", c.name)
		}
	}
	// The bombs run last, and leave_process after everything.
	if names[len(names)-1] != "leave_process" {
		t.Errorf("last check is %q, want leave_process", names[len(names)-1])
	}
	if slices.Index(names, "see_host_processes") > slices.Index(names, "fork_bomb") {
		t.Error("see_host_processes runs after fork_bomb")
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if !strings.Contains(string(readme), "`"+name+"`") {
			t.Errorf("README.md does not describe `%s`", name)
		}
	}
}

func TestParseStat(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     procEntry
		wantErr  bool
	}{
		{name: "plain", in: "42 (bootstrap) S 1 42 42 0 -1", want: procEntry{pid: 42, ppid: 1, comm: "bootstrap", state: 'S'}},
		{name: "comm with spaces and parens", in: "7 (a) b (c)) Z 3 7 7 0", want: procEntry{pid: 7, ppid: 3, comm: "a) b (c)", state: 'Z'}},
		{name: "no comm", in: "7 a Z 3", wantErr: true},
		{name: "truncated", in: "7 (a)", wantErr: true},
		{name: "bad ppid", in: "7 (a) S x", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStat(tc.in)
			if (err != nil) != tc.wantErr || (!tc.wantErr && got != tc.want) {
				t.Errorf("parseStat = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestOwnTree(t *testing.T) {
	procs := []procEntry{
		{pid: 1, ppid: 0}, {pid: 2, ppid: 0}, // init and kthreadd
		{pid: 10, ppid: 1}, {pid: 20, ppid: 10}, // self's parent and self
		{pid: 21, ppid: 20}, {pid: 22, ppid: 21}, // descendants
		{pid: 30, ppid: 1}, {pid: 31, ppid: 10}, // a stranger and a sibling
	}
	own := ownTree(procs, 20)
	var got []int
	for pid := range own {
		got = append(got, pid)
	}
	slices.Sort(got)
	if want := []int{1, 10, 20, 21, 22}; !slices.Equal(got, want) {
		t.Errorf("ownTree = %v, want %v", got, want)
	}
}

func TestParseStatus(t *testing.T) {
	st := parseStatus("Name:\tbootstrap\nUid:\t993\t993\t993\t993\nCapEff:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t2\n")
	if st["Uid"] != "993 993 993 993" || st["CapEff"] != "0000000000000000" || st["NoNewPrivs"] != "1" || st["Name"] != "bootstrap" {
		t.Errorf("parseStatus = %v", st)
	}
}

func TestJudgeDevEntry(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mode    fs.FileMode
		rdev    uint64
		wantBad string // substring; "" for allowed
	}{
		{"null", charDevice | 0o666, unix.Mkdev(1, 3), ""},
		{"urandom", charDevice | 0o666, unix.Mkdev(1, 9), ""},
		{"stdout", fs.ModeSymlink | 0o777, 0, ""},
		{"pts", fs.ModeDir | 0o755, 0, ""},
		{"ptmx", charDevice | 0o666, unix.Mkdev(5, 2), ""},
		{"null", charDevice | 0o666, unix.Mkdev(8, 0), "unexpected char device 8:0"},
		{"null", 0o666, 0, "unexpected regular file"},
		{"sda", fs.ModeDevice | 0o660, unix.Mkdev(8, 0), "block device 8:0"},
		{"zero", fs.ModeDevice | 0o660, unix.Mkdev(1, 5), "block device 1:5"},
		{"kmsg", charDevice | 0o644, unix.Mkdev(1, 11), "unexpected entry (char device 1:11)"},
		{"core", fs.ModeSymlink | 0o777, 0, "unexpected entry (symlink)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := judgeDevEntry(tc.name, tc.mode, tc.rdev)
			if (tc.wantBad == "") != (got == "") || !strings.Contains(got, tc.wantBad) {
				t.Errorf("judgeDevEntry(%s, %v) = %q, want %q", tc.name, tc.mode, got, tc.wantBad)
			}
		})
	}
}

func TestRoutes(t *testing.T) {
	v4 := "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n" +
		"eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n" +
		"eth0\t0001A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n" +
		"lo\t00000000\t00000000\t0201\t0\t0\t0\t00000000\t0\t0\t0\n"
	if got := defaultRoutes4(v4); !slices.Equal(got, []string{"0.0.0.0/0 via 192.168.1.1 dev eth0"}) {
		t.Errorf("defaultRoutes4 = %q", got)
	}
	if got := defaultRoutes4("Iface\tDestination\tGateway\n"); got != nil {
		t.Errorf("defaultRoutes4(header only) = %q", got)
	}
	zero := strings.Repeat("0", 32)
	v6 := zero + " 00 " + zero + " 00 " + zero + " ffffffff 00000001 00000000 00200200       lo\n" +
		"00000000000000000000000000000001 80 " + zero + " 00 " + zero + " 00000000 00000002 00000000 80200001       lo\n" +
		zero + " 00 " + zero + " 00 fe800000000000000000000000000001 00000400 00000001 00000000 00450003     eth0\n"
	if got := defaultRoutes6(v6); !slices.Equal(got, []string{"::/0 via fe800000000000000000000000000001 dev eth0"}) {
		t.Errorf("defaultRoutes6 = %q", got)
	}
	dev := "Inter-|   Receive                            |  Transmit\n" +
		" face |bytes    packets errs drop fifo frame compressed multicast|bytes\n" +
		"    lo:       0       0    0    0    0     0          0         0        0\n" +
		"  eth0: 1 2 3\n"
	if got := devNames(dev); !slices.Equal(got, []string{"lo", "eth0"}) {
		t.Errorf("devNames = %q", got)
	}
}

func TestListeningAbstract(t *testing.T) {
	data := "Num       RefCount Protocol Flags    Type St Inode Path\n" +
		"0000000000000000: 00000002 00000000 00010000 0001 01 1234 @/containerd-shim/x.sock\n" +
		"0000000000000000: 00000002 00000000 00000000 0001 03 1235 @/connected\n" +
		"0000000000000000: 00000002 00000000 00010000 0001 01 1236 /run/dbus/system_bus_socket\n" +
		"0000000000000000: 00000002 00000000 00010000 0001 01 1237\n"
	if got := listeningAbstract(data); !slices.Equal(got, []string{"@/containerd-shim/x.sock"}) {
		t.Errorf("listeningAbstract = %q", got)
	}
}

func TestCgroupPaths(t *testing.T) {
	data := "9:name=systemd:/\n4:memory:/../../moat/esc\n1:cpu:/..\n0::/\n"
	if got := cgroupV2Path(data); got != "/" {
		t.Errorf("cgroupV2Path = %q", got)
	}
	if got := cgroupV2Path("4:memory:/x\n"); got != "" {
		t.Errorf("cgroupV2Path(v1 only) = %q", got)
	}
	if got := cgroupOutsideRoot(data); !slices.Equal(got, []string{"4:memory:/../../moat/esc", "1:cpu:/.."}) {
		t.Errorf("cgroupOutsideRoot = %q", got)
	}
}

func TestHelperOutput(t *testing.T) {
	out := "1\n2\n3\nend write: no space left on device (ENOSPC)\n"
	if n, ok := lastInt(out); !ok || n != 3 {
		t.Errorf("lastInt = %d, %v", n, ok)
	}
	if got := endLine(out); got != "write: no space left on device (ENOSPC)" {
		t.Errorf("endLine = %q", got)
	}
	if _, ok := lastInt(""); ok {
		t.Error("lastInt of nothing")
	}
	if got := endLine("1\n2\n"); got != "" {
		t.Errorf("endLine without end = %q", got)
	}
}

func TestEnvNames(t *testing.T) {
	env := []byte("A=1\x00B=x=y\x00\x00C\x00")
	if got := envNames(env, -1); !slices.Equal(got, []string{"A", "B", "C"}) {
		t.Errorf("envNames = %q", got)
	}
	if got := envNames(env, 2); !slices.Equal(got, []string{"A", "B"}) {
		t.Errorf("envNames(2) = %q", got)
	}
}

// TestForkProgram runs the fork-without-exec machinery for real: it needs
// no privilege and changes nothing.
func TestForkProgram(t *testing.T) {
	var p forkProgram
	p.add("getpid", unix.SYS_GETPID)
	p.add("open missing", unix.SYS_OPENAT, negArg(unix.AT_FDCWD), p.cstr("/nonexistent/"+t.Name()), unix.O_RDONLY)
	p.add("getppid", unix.SYS_GETPPID)
	run, err := runForked(&p, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if run.timedOut || !run.status.Exited() || run.status.ExitStatus() != 0 {
		t.Fatalf("child status %v, timed out %v", run.status, run.timedOut)
	}
	if len(run.ops) != 3 || !run.ops[0].ran || run.ops[0].errno != 0 || run.ops[0].r1 == uintptr(os.Getpid()) {
		t.Errorf("getpid: %+v", run.ops)
	}
	if !run.ops[1].ran || run.ops[1].errno != unix.ENOENT {
		t.Errorf("open: %+v", run.ops[1])
	}
	if run.ops[2].ran {
		t.Errorf("ran past a failure without keepGoing: %+v", run.ops[2])
	}
	if run.allOK() {
		t.Error("allOK with a failed op")
	}
	if got := run.String(); got != "getpid: ok, open missing: no such file or directory (ENOENT), getppid: not reached" {
		t.Errorf("String = %q", got)
	}

	p.keepGoing = true
	run, err = runForked(&p, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !run.ops[2].ran || run.ops[2].r1 != uintptr(os.Getpid()) {
		t.Errorf("getppid in the child = %+v, want this process %d", run.ops[2], os.Getpid())
	}
}

func TestTarget(t *testing.T) {
	tg, err := startTarget()
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Kill(tg.pid, 0); err != nil {
		t.Fatalf("target not running: %v", err)
	}
	tg.stop()
	tg.stop()
	if err := unix.Kill(tg.pid, 0); err != unix.ESRCH {
		t.Errorf("target still there after stop: %v", err)
	}
}
