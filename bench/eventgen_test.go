package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestActionResult(t *testing.T) {
	const a = "syscall.NonSudoSetuid"
	tests := []struct {
		name, log string
		exit      int
		want      string
	}{
		{"executed", `{"action":"syscall.NonSudoSetuid","level":"info","msg":"action executed","time":"x"}`, 0, "ran"},
		{"logged something else, no error", `{"action":"syscall.NonSudoSetuid","level":"info","msg":"spawn as \"child\""}`, 0, "ran"},
		{"error", `{"action":"syscall.NonSudoSetuid","error":"operation not permitted","level":"error","msg":"action error"}`, 0, "error: operation not permitted"},
		{"skipped", `{"action":"syscall.NonSudoSetuid","level":"warning","msg":"action skipped","reason":"must run as root"}`, 0, "skipped: must run as root"},
		{"the process's own line wins over its child's", strings.Join([]string{
			`{"action":"syscall.NonSudoSetuid","as":"child","msg":"action error","error":"x"}`,
			"\x1b[36mINFO\x1b[0m became \"root\" action=syscall.NonSudoSetuid as=child",
			`{"action":"syscall.NonSudoSetuid","msg":"action error","error":"y"}`,
		}, "\n"), 0, "error: y"},
		{"only a child said", `{"action":"syscall.NonSudoSetuid","as":"child","msg":"action error","error":"x"}`, 0, "error: x (in the child it spawned)"},
		{"another action's error", `{"action":"syscall.Other","msg":"action error","error":"z"}`, 0, "ran"},
		{"crashed", "panic: something\n", 2, "exit status 2"},
	}
	for _, tt := range tests {
		if got := actionResult(tt.log, tt.exit, a); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestCheckIsolation(t *testing.T) {
	if err := checkIsolation([]string{"lo"}, 0, "connect: network is unreachable"); err != nil {
		t.Errorf("an instance with only loopback: %v", err)
	}
	for _, c := range []struct {
		ifs    []string
		routes int
		probe  string
	}{
		{[]string{"lo", "eth0"}, 0, "refused"},
		{[]string{"lo"}, 1, "refused"},
		{[]string{"lo"}, 0, ""},
		{nil, 0, "refused"},
	} {
		if checkIsolation(c.ifs, c.routes, c.probe) == nil {
			t.Errorf("accepted %v, %d routes, probe %q", c.ifs, c.routes, c.probe)
		}
	}
}

func TestPrintEventGenerator(t *testing.T) {
	var b bytes.Buffer
	printEventGenerator(&b, []egOutcome{
		{Action: "syscall.ReadSensitiveFileUntrusted", Ran: "ran", Rules: []string{"credential-read"}},
		{Action: "syscall.PtraceAttachedToProcess", Ran: "error: operation not permitted", Refusals: []string{"ptrace denied"}},
		{Action: "syscall.Quiet", Ran: "ran"},
	})
	out := b.String()
	for _, want := range []string{
		"| ReadSensitiveFileUntrusted | ran | `credential-read` | — |",
		"| PtraceAttachedToProcess | error: operation not permitted | — | ptrace denied |",
		"3 actions: 2 ran, 1 of them with an alert; 1 did not run (refused, failed or skipped), 1 of them visible",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// FuzzActionResult: the generator's log comes from inside the instance,
// written by whatever ran there; reading it must never fail, and the
// result is always one of its forms.
func FuzzActionResult(f *testing.F) {
	f.Add(`{"action":"syscall.X","msg":"action error","error":"e"}`, 0)
	f.Add(`{"action":"syscall.X","as":"child","msg":"action skipped","reason":"r"}`+"\n"+"not json", 1)
	f.Add("", 0)
	f.Fuzz(func(t *testing.T, log string, exit int) {
		r := actionResult(log, exit, "syscall.X")
		ok := r == "ran" || strings.HasPrefix(r, "error: ") || strings.HasPrefix(r, "skipped: ") || strings.HasPrefix(r, "exit status ")
		if !ok {
			t.Fatalf("result %q", r)
		}
	})
}
