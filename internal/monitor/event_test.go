package monitor

import (
	"net/netip"
	"reflect"
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
