package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"moat.dev/moat/internal/detect"
	"moat.dev/moat/internal/monitor"
)

// TestPrintRecordGroupsMissingOpens: the dynamic loader's search of its
// library path (a run of opens of files that do not exist, by one
// process) is one line, not one a file; the open that found the library,
// the other file changes and where a symlink led are shown as they are.
func TestPrintRecordGroupsMissingOpens(t *testing.T) {
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	ev := func(kind, path string, pid int, errno string, f func(*detect.Event)) detect.Event {
		e := detect.Event{Time: at, Kind: kind, Path: path, PID: pid, Exe: "/var/task/bootstrap", Phase: detect.PhaseInvoke, Errno: errno}
		if errno != "" {
			e.Result = -2
		}
		if f != nil {
			f(&e)
		}
		return e
	}
	var evs []detect.Event
	for _, d := range []string{"/var/task/lib", "/opt/lib", "/lib64/tls", "/lib64/x86_64", "/usr/lib64"} {
		evs = append(evs, ev("open", d+"/libc.so.6", 7, "ENOENT", nil))
	}
	evs = append(evs,
		ev("open", "/lib/x86_64-linux-gnu/libc.so.6", 7, "", nil),
		ev("open", "/tmp/notes", 7, "", func(e *detect.Event) { e.Opened = "/etc/shadow" }),
		ev("symlink", "", 7, "", func(e *detect.Event) { e.NewPath, e.Target = "/tmp/notes", "/etc/shadow" }),
		ev("open", "/etc/missing.conf", 8, "ENOENT", nil),
	)
	var b bytes.Buffer
	printRecord(&b, &monitor.Record{RequestID: "r", Function: "f", Version: "1", Instance: "i", Source: "url:abc", Events: evs})
	out := b.String()
	for _, want := range []string{
		"from url:abc",
		"open    ×5 not found: /var/task/lib/libc.so.6 … /usr/lib64/libc.so.6  ENOENT  (pid 7 bootstrap)",
		"open    /lib/x86_64-linux-gnu/libc.so.6  ok",
		"open    /tmp/notes (opened /etc/shadow)  ok",
		"symlink /tmp/notes → /etc/shadow  ok",
		"open    /etc/missing.conf  ENOENT  (pid 8 bootstrap)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("record lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "libc.so.6"); n != 3 {
		t.Errorf("libc.so.6 on %d places, want 3 (the grouped line's two and the open that found it):\n%s", n, out)
	}
}
