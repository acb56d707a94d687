package monitor

import (
	"context"
	"net/netip"
	"reflect"
	"slices"
	"syscall"
	"testing"
	"time"

	"moat.dev/moat/internal/detect"
	"moat.dev/moat/internal/sensor"
)

func TestFromSensor(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	a := detect.Attribution{Function: "fn", Version: "2", Instance: "i", RequestID: "r", Phase: detect.PhaseInvoke, Runtime: "provided.al2023", Exe: "/var/task/bootstrap"}
	hdr := sensor.Event{Time: at, PID: 10, PPID: 1, UID: 3000000993, Comm: "bootstrap"}
	with := func(f func(*sensor.Event)) *sensor.Event { e := hdr; f(&e); return &e }
	base := detect.Event{Time: at, Function: "fn", Version: "2", Instance: "i", RequestID: "r", Phase: detect.PhaseInvoke,
		Runtime: "provided.al2023", PID: 10, PPID: 1, UID: 3000000993, Comm: "bootstrap", Exe: "/var/task/bootstrap"}
	want := func(f func(*detect.Event)) detect.Event { e := base; f(&e); return e }
	tests := []struct {
		name string
		in   *sensor.Event
		want detect.Event
	}{
		{"exec sets the new executable", with(func(e *sensor.Event) {
			e.Kind, e.Syscall, e.Path, e.Argv = sensor.KindExec, -1, "/bin/sh", []string{"sh", "-c", "id"}
		}), want(func(e *detect.Event) {
			e.Kind, e.Path, e.Exe, e.Argv = "exec", "/bin/sh", "/bin/sh", []string{"sh", "-c", "id"}
		})},
		{"failed exec", with(func(e *sensor.Event) {
			e.Kind, e.Syscall, e.Path, e.Result, e.Errno = sensor.KindExec, syscall.SYS_EXECVE, "/dev/shm/x", -2, 2
		}), want(func(e *detect.Event) {
			e.Kind, e.Path, e.Exe, e.Result, e.Errno = "exec", "/dev/shm/x", "/dev/shm/x", -2, "ENOENT"
		})},
		{"open", with(func(e *sensor.Event) {
			e.Kind, e.Syscall, e.Path, e.Flags, e.Intent = sensor.KindOpen, syscall.SYS_OPENAT, "/tmp/a", 0o1101, sensor.IntentWrite|sensor.IntentCreate|sensor.IntentTrunc
		}), want(func(e *detect.Event) {
			e.Kind, e.Syscall, e.Path, e.Flags, e.Intent = "open", "openat", "/tmp/a", 0o1101, []string{"write", "create", "trunc"}
		})},
		{"connect refused", with(func(e *sensor.Event) {
			e.Kind, e.Syscall, e.Family, e.Addr, e.Result, e.Errno = sensor.KindConnect, syscall.SYS_CONNECT, syscall.AF_INET,
				netip.MustParseAddrPort("169.254.169.254:80"), -1, 1
		}), want(func(e *detect.Event) {
			e.Kind, e.Syscall, e.Family, e.Addr, e.Port, e.Result, e.Errno = "connect", "connect", "inet", "169.254.169.254", 80, -1, "EPERM"
		})},
		{"unix connect", with(func(e *sensor.Event) {
			e.Kind, e.Syscall, e.Family, e.Path = sensor.KindConnect, syscall.SYS_CONNECT, syscall.AF_UNIX, "/var/run/docker.sock"
		}), want(func(e *detect.Event) {
			e.Kind, e.Syscall, e.Family, e.Addr, e.Path = "connect", "connect", "unix", "/var/run/docker.sock", "/var/run/docker.sock"
		})},
		{"setuid", with(func(e *sensor.Event) {
			e.Kind, e.Syscall, e.IDs = sensor.KindSetID, syscall.SYS_SETUID, [3]uint32{0, sensor.NoID, sensor.NoID}
		}), want(func(e *detect.Event) { e.Kind, e.Syscall, e.IDs = "setid", "setuid", []int64{0, -1, -1} })},
		{"denied", with(func(e *sensor.Event) {
			e.Kind, e.Syscall, e.Result, e.Errno = sensor.KindDenied, syscall.SYS_PTRACE, -1, 1
		}), want(func(e *detect.Event) { e.Kind, e.Syscall, e.Result, e.Errno = "denied", "ptrace", -1, "EPERM" })},
		{"exit", with(func(e *sensor.Event) { e.Kind, e.Syscall, e.Signal = sensor.KindExit, -1, 9 }),
			want(func(e *detect.Event) { e.Kind, e.Signal = "exit", 9 })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fromSensor(tt.in, a); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("fromSensor =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestCanonicalPaths(t *testing.T) {
	tests := []struct {
		in, dir string
		dirfd   int
		want    string
	}{
		{"/etc/../etc/shadow", "", -100, "/etc/shadow"},
		{"/etc//./shadow", "/tmp", 3, "/etc/shadow"}, // absolute: the descriptor does not matter
		{"../../etc/shadow", "", -100, "/etc/shadow"},
		{"environ", "", -100, "/var/task/environ"},
		{"./bootstrap", "", -100, "/var/task/bootstrap"},
		{"environ", "", 5, "environ"}, // relative to a directory the sensor could not walk
		{"environ", "/proc/7", 5, "/proc/7/environ"},
		{"../etc/shadow", "/tmp", -100, "/etc/shadow"}, // the working directory the process moved to
		{"x", "…/deep/dir", -100, "…/deep/dir/x"},
		{"", "", -100, ""},
		{"/", "", -100, "/"},
	}
	for _, tt := range tests {
		if got := canonical(tt.in, tt.dir, tt.dirfd); got != tt.want {
			t.Errorf("canonical(%q, %q, %d) = %q, want %q", tt.in, tt.dir, tt.dirfd, got, tt.want)
		}
	}
	// What the kernel opened is kept when it is not Path; a change by
	// descriptor takes its file as Path.
	ev := fromSensor(&sensor.Event{Kind: sensor.KindOpen, Syscall: 257, Dirfd: -100, Path: "/tmp/link", Opened: "/etc/shadow"}, detect.Attribution{})
	if ev.Path != "/tmp/link" || ev.Opened != "/etc/shadow" || ev.Asked != "" {
		t.Errorf("open through a symlink: %+v", ev)
	}
	ev = fromSensor(&sensor.Event{Kind: sensor.KindOpen, Syscall: 257, Dirfd: 4, Path: "environ", Dir: "/proc/7", Opened: "/proc/7/environ"}, detect.Attribution{})
	if ev.Path != "/proc/7/environ" || ev.Opened != "" || ev.Asked != "environ" {
		t.Errorf("open relative to a descriptor: %+v", ev)
	}
	ev = fromSensor(&sensor.Event{Kind: sensor.KindChmod, Syscall: 91, FD: 3, Mode: 0o4755, Opened: "/tmp/x"}, detect.Attribution{})
	if ev.Path != "/tmp/x" || ev.FD != 3 || ev.Opened != "" {
		t.Errorf("fchmod: %+v", ev)
	}
	ev = fromSensor(&sensor.Event{Kind: sensor.KindExec, Syscall: -1, Path: "/tmp/l", Opened: "/usr/bin/true", Env: []string{"LD_PRELOAD=/tmp/x.so"}}, detect.Attribution{})
	if ev.Path != "/tmp/l" || ev.Exe != "/tmp/l" || ev.Opened != "/usr/bin/true" || !slices.Equal(ev.Env, []string{"LD_PRELOAD=/tmp/x.so"}) {
		t.Errorf("exec through a symlink: %+v", ev)
	}
	// An event keeps what was asked next to the canonical path; a path
	// already canonical has no Asked.
	ev = fromSensor(&sensor.Event{Kind: sensor.KindOpen, Syscall: 257, Dirfd: -100, Path: "/etc/../etc/shadow"}, detect.Attribution{})
	if ev.Path != "/etc/shadow" || ev.Asked != "/etc/../etc/shadow" {
		t.Errorf("open: Path %q, Asked %q", ev.Path, ev.Asked)
	}
	ev = fromSensor(&sensor.Event{Kind: sensor.KindRename, Syscall: 82, Dirfd: -100, NewDirfd: -100, Path: "/tmp/a", NewPath: "x/../y"}, detect.Attribution{})
	if ev.Path != "/tmp/a" || ev.Asked != "" || ev.NewPath != "/var/task/y" || ev.AskedNew != "x/../y" {
		t.Errorf("rename: %+v", ev)
	}
	ev = fromSensor(&sensor.Event{Kind: sensor.KindConnect, Syscall: 42, Family: syscall.AF_UNIX, Path: "../run/x.sock"}, detect.Attribution{})
	if ev.Addr != "../run/x.sock" || ev.Asked != "" {
		t.Errorf("unix connect: Addr %q, Asked %q", ev.Addr, ev.Asked)
	}
}

// TestDotDotCannotHideACredentialRead: the rules see the canonical path.
func TestDotDotCannotHideACredentialRead(t *testing.T) {
	m, src := newTestMonitor(t, nil)
	if err := m.Observe("dd", detect.InstanceInfo{Function: "fn", Version: "1"}, 4040, "/var/task/bootstrap"); err != nil {
		t.Fatal(err)
	}
	src.emit(m, 4040, sensor.Event{Kind: sensor.KindExec, Path: "/var/task/bootstrap"})
	m.Begin("dd", "req-dd", "")
	src.emit(m, 4040, sensor.Event{Kind: sensor.KindOpen, Dirfd: -100, Path: "/etc/../etc/./shadow", Intent: sensor.IntentRead})
	src.emit(m, 4040, sensor.Event{Kind: sensor.KindOpen, Dirfd: -100, Path: "../../proc/self/environ", Intent: sensor.IntentRead})
	m.End("dd", "req-dd")
	waitFor(t, "both alerts", func() bool {
		var rules []string
		_ = m.ReadAlerts(context.Background(), "fn", time.Time{}, false, func(a detect.Alert) error {
			if a.RequestID == "req-dd" {
				rules = append(rules, a.Rule)
			}
			return nil
		})
		return slices.Contains(rules, "credential-read") && slices.Contains(rules, "environ-read")
	})
}
