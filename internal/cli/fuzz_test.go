package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// FuzzReadPayload: whatever the input, a payload is either refused or is
// exactly one JSON value, sent unchanged.
func FuzzReadPayload(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `[1,2]`, `"x"`, `{`, ``, ` 1 `, `{} {}`, "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := readPayload("-", strings.NewReader(s))
		if err != nil {
			return
		}
		if !json.Valid(b) || string(b) != s {
			t.Fatalf("accepted %q as %q", s, b)
		}
	})
}

// FuzzStreamLines: the NDJSON reader never panics and hands on every
// non-empty line.
func FuzzStreamLines(f *testing.F) {
	f.Add("{\"message\":\"a\\n\"}\n\n{}\r\n")
	f.Add("no newline at end")
	f.Fuzz(func(t *testing.T, s string) {
		n := 0
		err := readLines(context.Background(), strings.NewReader(s), func(line []byte) error {
			if len(line) == 0 || strings.ContainsRune(string(line), '\n') {
				t.Fatalf("line %q", line)
			}
			n++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		want := 0
		for _, l := range strings.Split(s, "\n") {
			if strings.TrimRight(l, "\r") != "" {
				want++
			}
		}
		if n != want {
			t.Fatalf("%d lines from %q, want %d", n, s, want)
		}
	})
}

// FuzzRenderFunction: whatever GetFunction answers, get's text output
// either refuses it or renders it as whole lines, one value per line.
func FuzzRenderFunction(f *testing.F) {
	f.Add(getResponse(`,"Sandbox":`+pinnedSandbox, `,"Isolation":{"applied":{"seccomp":true},"missing":{}}`))
	f.Add(`{"Configuration":{"Description":"a\nb\tc","Sandbox":{"Egress":["x:1","[::1]:2",":"],"Hosts":{"x":["1.2.3.4"]}}},"Isolation":[1,{"a":null}]}`)
	f.Add(`null`)
	f.Add(`{"Configuration":{"Environment":{"Error":{"ErrorCode":"E","Message":"m"}}},"Isolation":"x"}`)
	f.Fuzz(func(t *testing.T, s string) {
		out, err := renderFunction([]byte(s))
		if err != nil {
			return
		}
		if !strings.HasSuffix(out, "\n") || !strings.Contains(out, "\nSandbox:\n") || !strings.Contains(out, "\nIsolation:\n") {
			t.Fatalf("output for %q:\n%s", s, out)
		}
		if strings.ContainsFunc(out, func(r rune) bool { return r != '\n' && (r < ' ' || r == 0x7f) }) {
			t.Fatalf("control character in output for %q: %q", s, out)
		}
	})
}
