package logs

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

func TestLinesGolden(t *testing.T) {
	const id = "8f5bd8b2-3f4e-4c6a-9d1e-2b7c1a0e9f31"
	tests := []struct {
		name string
		line string
	}{
		{"start", StartLine(id, "$LATEST")},
		{"start_version", StartLine(id, "7")},
		{"end", EndLine(id)},
		{"report_warm", ReportLine(Report{
			RequestID: id, Duration: 12340 * time.Microsecond, MemorySizeMB: 128, MaxMemoryUsedMB: 18,
		})},
		{"report_cold", ReportLine(Report{
			RequestID: id, Duration: 12340 * time.Microsecond, MemorySizeMB: 128, MaxMemoryUsedMB: 18,
			InitDuration: 105234 * time.Microsecond,
		})},
		{"report_timeout", ReportLine(Report{
			RequestID: id, Duration: 3 * time.Second, MemorySizeMB: 128, MaxMemoryUsedMB: 41,
			InitDuration: 180 * time.Millisecond, Status: "timeout",
		})},
		{"report_error", ReportLine(Report{
			RequestID: id, Duration: 5*time.Millisecond + 1, MemorySizeMB: 1024, MaxMemoryUsedMB: 1024, Status: "error",
		})},
		{"report_submillisecond", ReportLine(Report{
			RequestID: id, Duration: 4 * time.Microsecond, MemorySizeMB: 128, MaxMemoryUsedMB: 17,
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join("testdata", tt.name+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(tt.line), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read golden (run with -update to create): %v", err)
			}
			if tt.line != string(want) {
				t.Errorf("line differs from %s\ngot:  %q\nwant: %q", path, tt.line, want)
			}
		})
	}
}

func TestBilledDuration(t *testing.T) {
	tests := []struct {
		name string
		d    time.Duration
		want string
	}{
		{"zero bills one", 0, "\tBilled Duration: 1 ms\t"},
		{"one nanosecond rounds up", 1, "\tBilled Duration: 1 ms\t"},
		{"exact millisecond", time.Millisecond, "\tBilled Duration: 1 ms\t"},
		{"just over rounds up", time.Millisecond + 1, "\tBilled Duration: 2 ms\t"},
		{"12.34 ms", 12340 * time.Microsecond, "\tBilled Duration: 13 ms\t"},
		{"exact 3 s", 3 * time.Second, "\tBilled Duration: 3000 ms\t"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line := ReportLine(Report{RequestID: "r", Duration: tt.d})
			if !strings.Contains(line, tt.want) {
				t.Errorf("ReportLine = %q, want it to contain %q", line, tt.want)
			}
		})
	}
}

func TestReportOptionalFields(t *testing.T) {
	line := ReportLine(Report{RequestID: "r", Duration: time.Millisecond})
	for _, field := range []string{"Init Duration", "Status"} {
		if strings.Contains(line, field) {
			t.Errorf("warm, successful REPORT line %q has %s", line, field)
		}
	}
}

func TestTail(t *testing.T) {
	tests := []struct {
		name string
		s    string
		n    int
		want string
	}{
		{"shorter than n", "abc", 4, "abc"},
		{"exactly n", "abcd", 4, "abcd"},
		{"ascii cut", "abcdef", 4, "cdef"},
		{"zero", "abc", 0, ""},
		{"negative", "abc", -1, ""},
		{"empty", "", 4, ""},
		{"cut on a 2-byte boundary", "aé", 2, "é"},
		{"cut inside a 2-byte rune", "éé", 3, "é"},
		{"cut after first byte of a 3-byte rune", "x€", 3, "€"},
		{"cut inside a 3-byte rune, 1 byte in", "€€", 5, "€"},
		{"cut inside a 3-byte rune, 2 bytes in", "€€", 4, "€"},
		{"cut inside a 4-byte rune, 1 byte in", "😀😀", 7, "😀"},
		{"cut inside a 4-byte rune, 3 bytes in", "😀😀", 5, "😀"},
		{"n smaller than the last rune", "😀", 3, ""},
		{"mixed, rune kept whole", "log: 😀 done\n", 10, "😀 done\n"},
		{"mixed, rune cut", "log: 😀 done\n", 9, " done\n"},
		{"invalid bytes are kept after three", "a\x80\x80\x80\x80b", 5, "\x80b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Tail(tt.s, tt.n); got != tt.want {
				t.Errorf("Tail(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
			}
		})
	}
}

func FuzzTail(f *testing.F) {
	f.Add("log: 😀 done\n", 10)
	f.Add("€€", 4)
	f.Add("a\x80\x80\x80\x80b", 5)
	f.Fuzz(func(t *testing.T, s string, n int) {
		got := Tail(s, n)
		if !strings.HasSuffix(s, got) {
			t.Fatalf("Tail(%q, %d) = %q is not a suffix", s, n, got)
		}
		if n <= 0 {
			if got != "" {
				t.Fatalf("Tail(%q, %d) = %q, want empty", s, n, got)
			}
			return
		}
		if len(got) > n {
			t.Fatalf("Tail(%q, %d) = %q is longer than %d", s, n, got, n)
		}
		if len(s) <= n && got != s {
			t.Fatalf("Tail(%q, %d) = %q, want all of s", s, n, got)
		}
		if utf8.ValidString(s) {
			if !utf8.ValidString(got) {
				t.Fatalf("Tail(%q, %d) = %q is not valid UTF-8", s, n, got)
			}
			// Nothing that fits was left out: at most one partial rune is cut.
			if len(s) > n && n-len(got) >= utf8.UTFMax {
				t.Fatalf("Tail(%q, %d) = %q drops more than a partial rune", s, n, got)
			}
		}
	})
}
