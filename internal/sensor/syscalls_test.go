package sensor

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"moat.dev/moat/internal/seccomp"
)

// TestReportedSyscallsMatchStash: reportedSyscalls, which are traced
// whatever the seccomp filter allows, are exactly the syscalls stash in
// bpf/sensor.c reports; one missing from the list would go unseen on a
// node that tells the sensor its filter.
func TestReportedSyscallsMatchStash(t *testing.T) {
	src, err := os.ReadFile("bpf/sensor.c")
	if err != nil {
		t.Fatal(err)
	}
	body := string(src)
	i := strings.Index(body, "static __always_inline void stash(")
	if i < 0 {
		t.Fatal("no stash in bpf/sensor.c")
	}
	body = body[i:]
	body = body[:strings.Index(body, "default:")]
	var cases []string
	for _, m := range regexp.MustCompile(`case NR_(\w+):`).FindAllStringSubmatch(body, -1) {
		cases = append(cases, m[1])
	}
	slices.Sort(cases)
	if want := slices.Sorted(slices.Values(reportedSyscalls)); !slices.Equal(cases, want) {
		t.Errorf("stash reports %v\nreportedSyscalls has %v", cases, want)
	}
}

// TestUntracedSyscalls: told the sandbox's filter, the sensor still
// reports opens (allowed by the filter, but reported) and seccomp
// refusals, and a loop of allowed syscalls it does not report (close)
// runs no further than the first test. The scenario test checks every
// event kind under the same options.
func TestUntracedSyscalls(t *testing.T) {
	s := loadOrSkip(t, Options{SeccompAllowed: seccomp.Default().Allow})
	var v uint8
	for _, c := range []struct {
		name string
		nr   uint32
		want uint8
	}{{"close", unix.SYS_CLOSE, 1}, {"read", unix.SYS_READ, 1}, {"openat", unix.SYS_OPENAT, 0},
		{"connect", unix.SYS_CONNECT, 0}, {"ptrace", unix.SYS_PTRACE, 0}, {"ioctl", unix.SYS_IOCTL, 0}} {
		if err := s.objs.Untraced.Lookup(c.nr, &v); err != nil {
			t.Fatal(err)
		}
		if v != c.want {
			t.Errorf("untraced[%s] = %d, want %d", c.name, v, c.want)
		}
	}
	if _, err := Load(Options{SeccompAllowed: []string{"read", "no_such_call"}}); err == nil || !strings.Contains(err.Error(), `unknown syscall "no_such_call"`) {
		t.Errorf("Load with an unknown allowed syscall: %v", err)
	}
}
