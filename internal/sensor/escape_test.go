package sensor

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestKillEscapes: in a cgroup watched with KillEscapes, a process whose
// ptrace the seccomp filter refused is killed by the kernel before it
// runs on, and the denied event says so; watched without it, the same
// process lives on.
func TestKillEscapes(t *testing.T) {
	s := loadOrSkip(t, Options{Escapes: []string{"ptrace", "mount", "open"}})
	for _, kill := range []bool{true, false} {
		name := map[bool]string{true: "kill", false: "report only"}[kill]
		t.Run(name, func(t *testing.T) {
			cg := newCgroup(t)
			if err := s.Watch(cg.id, flagsIf(kill)); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(cg.path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = []string{childEnv + "=escape"}
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(f.Fd())}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			pid := cmd.Process.Pid
			err = cmd.Wait()
			var exitErr *exec.ExitError
			killed := errors.As(err, &exitErr) && exitErr.Sys().(syscall.WaitStatus).Signal() == unix.SIGKILL
			switch {
			case kill && (!killed || strings.Contains(stdout.String(), "survived")):
				t.Fatalf("escape attempt not killed: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
			case !kill && (err != nil || !strings.Contains(stdout.String(), "survived")):
				t.Fatalf("child watched without KillEscapes: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
			}
			evs := collectUntil(t, s, eventTimeout, exitOf(pid))
			var denied *Event
			for i := range evs {
				if evs[i].Kind == KindDenied && evs[i].PID == pid && evs[i].Syscall == unix.SYS_PTRACE {
					denied = &evs[i]
				}
			}
			if denied == nil {
				t.Fatalf("no denied ptrace event:\n%s", dump(evs))
			}
			if denied.Killed != kill {
				t.Errorf("denied ptrace: Killed = %v, want %v", denied.Killed, kill)
			}
			if exit := evs[len(evs)-1]; kill && exit.Signal != int(unix.SIGKILL) {
				t.Errorf("exit event signal %d, want SIGKILL", exit.Signal)
			}
		})
	}
}

func TestEscapesUnknownSyscall(t *testing.T) {
	if os.Geteuid() != 0 {
		needOrSkip(t, "the sensor needs root")
	}
	if _, err := Load(Options{Escapes: []string{"ptrace", "no_such_call"}}); err == nil || !strings.Contains(err.Error(), `unknown syscall "no_such_call"`) {
		t.Fatalf("Load with an unknown escape syscall: %v", err)
	}
}

func flagsIf(kill bool) WatchFlags {
	if kill {
		return KillEscapes
	}
	return 0
}
