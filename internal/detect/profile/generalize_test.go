package profile

import (
	"net/netip"
	"slices"
	"testing"
)

func TestGeneralize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/tmp/scratch-7f3a9c.json", "/tmp/scratch-*.json"},
		{"/tmp/scratch-abcdef12.json", "/tmp/scratch-*.json"},
		{"/tmp/scratch-deadbeef.json", "/tmp/scratch-*.json"}, // eight hex digits, letters only
		{"/tmp/job-1234/out.txt", "/tmp/job-*/out.txt"},
		{"/tmp/job-7/out.txt", "/tmp/job-*/out.txt"},
		{"/tmp/tmp.XyZ123", "/tmp/tmp.*"},
		{"/tmp/tmp.XyZaBc", "/tmp/tmp.*"},
		{"/tmp/tmpk3j_9xqz", "/tmp/*_9xqz"},
		{"/tmp/6f1c8a0e-3b2d-4e5f-9a8b-7c6d5e4f3a2b/x.bin", "/tmp/*/x.bin"},
		{"/tmp/upload-6f1c8a0e-3b2d-4e5f-9a8b-7c6d5e4f3a2b.part", "/tmp/upload-*.part"},
		{"/tmp/report-2026-11-24.csv", "/tmp/report-*.csv"},
		{"/tmp/a-123-b-456-c", "/tmp/a-*-c"},
		{"/tmp/1712345678", "/tmp/*"},
		{"/tmp/cache/data", "/tmp/cache/data"},
		{"/tmp/python3.12/site.py", "/tmp/python3.*/site.py"}, // all-digit tokens are numbers
		{"/tmp/ConfigLoader.json", "/tmp/ConfigLoader.json"},
		{"/tmp/decade", "/tmp/decade"}, // six hex letters: a word
		{"/tmp", "/tmp"},
		{"/var/tmp/x-99999", "/var/tmp/x-*"},
		{"/dev/shm/sem.mp-a1b2c3d4", "/dev/shm/sem.mp-*"},
		// Outside the scratch roots names are fixed.
		{"/usr/bin/sha256sum", "/usr/bin/sha256sum"},
		{"/var/task/data/2024-01-01.json", "/var/task/data/2024-01-01.json"},
		{"/etc/x-1234", "/etc/x-1234"},
		// Process and descriptor numbers.
		{"/proc/1/environ", "/proc/*/environ"},
		{"/proc/1234/task/1240/stat", "/proc/*/task/*/stat"},
		{"/proc/self/fd/7", "/proc/self/fd/*"},
		{"/dev/fd/3", "/dev/fd/*"},
		{"/proc/sys/kernel/core_pattern", "/proc/sys/kernel/core_pattern"},
		// Rule 5: every entry is a well-formed pattern.
		{"/srv/a*b/c", "/srv/*/c"},
		{"/srv/**", "/srv/*"},
		{"/srv/\x00/x", "/srv/*/x"},
		{"/srv/\xff\xfe", "/srv/*"},
		{"/srv/a\u2028b", "/srv/*"},
		{"/", "/"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := generalize(tt.in)
			if got != tt.want {
				t.Errorf("generalize(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if msg := checkPattern(got); msg != "" {
				t.Errorf("%q is not a valid pattern: %s", got, msg)
			}
			var tr trie
			tr.add(got)
			if !tr.match(tt.in) && wellFormedPath(tt.in) {
				t.Errorf("%q does not match the path it came from", got)
			}
		})
	}
}

// wellFormedPath: paths whose segments all stand for themselves (the
// others cannot be matched by the text they came from anyway).
func wellFormedPath(p string) bool {
	for _, s := range segments(p) {
		if !wellFormedSegment(s) {
			return false
		}
	}
	return true
}

func TestTrieMatch(t *testing.T) {
	patterns := []string{"/etc/hosts", "/tmp/*.json", "/tmp/job-*/out.txt", "/srv/data/**", "/a/*/c", "/a/b/d", "/x/*-*-z", "/"}
	var tr trie
	for _, p := range patterns {
		tr.add(p)
	}
	tests := []struct {
		path string
		want bool
	}{
		{"/etc/hosts", true},
		{"/etc/hosts2", false},
		{"/etc", false},
		{"/", true},
		{"/tmp/a.json", true},
		{"/tmp/.json", true},
		{"/tmp/a.json/x", false},
		{"/tmp/a.jsonx", false},
		{"/tmp/job-1/out.txt", true},
		{"/tmp/job-/out.txt", true},
		{"/tmp/jo-1/out.txt", false},
		{"/srv/data", true},
		{"/srv/data/x/y/z", true},
		{"/srv/database", false},
		{"/a/b/c", true},
		{"/a/b/d", true},
		{"/a/q/d", false},
		{"/x/a-b-z", true},
		{"/x/a--z", true},
		{"/x/a-z", false},
		{"relative", false},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			if got := tr.match(tt.path); got != tt.want {
				t.Errorf("match(%q) = %v, want %v", tt.path, got, tt.want)
			}
		})
	}
}

func TestCovers(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"/tmp/*", "/tmp/job-*", true},
		{"/tmp/job-*", "/tmp/*", false},
		{"/tmp/**", "/tmp/a/b/*", true},
		{"/tmp/**", "/tmp", true},
		{"/tmp/*", "/tmp/**", false},
		{"/tmp/*/**", "/tmp/x/**", true},
		{"/tmp/x/**", "/tmp/*/**", false},
		{"/tmp/*.json", "/tmp/a-*.json", true},
		{"/tmp/a-*.json", "/tmp/*.json", false},
		{"/tmp/*", "/tmp/a/b", false},
		{"/a", "/a", true},
	}
	for _, tt := range tests {
		t.Run(tt.a+" "+tt.b, func(t *testing.T) {
			if got := covers(tt.a, tt.b); got != tt.want {
				t.Errorf("covers(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
			}
		})
	}
}

func TestPrune(t *testing.T) {
	got := prune([]string{"/tmp/job-*", "/tmp/*", "/tmp/*", "/tmp/a/b", "/tmp/**", "/srv/x"})
	if want := []string{"/srv/x", "/tmp/**"}; !slices.Equal(got, want) {
		t.Errorf("prune = %q, want %q", got, want)
	}
}

func TestDests(t *testing.T) {
	var m dests
	for _, it := range []string{"inet:198.18.0.5:443", "inet:10.0.0.0/8:5432", "inet:198.18.1.1:*", "inet6:[2001:db8::/32]:*", "inet6:[2001:db9::1]:443", "unix:/run/a.sock", "unix:@abstract"} {
		m.add(it)
	}
	ap := netip.MustParseAddrPort
	tests := []struct {
		name string
		ok   bool
	}{
		{"198.18.0.5:443", true},
		{"198.18.0.5:80", false},
		{"10.9.8.7:5432", true},
		{"10.9.8.7:5433", false},
		{"11.0.0.1:5432", false},
		{"198.18.1.1:1", true},
		{"[2001:db8:1::5]:22", true},
		{"[2001:db9::1]:443", true},
		{"[2001:db9::1]:444", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := m.matchAddr(ap(tt.name)); got != tt.ok {
				t.Errorf("match(%s) = %v, want %v", tt.name, got, tt.ok)
			}
		})
	}
	if !m.matchUnix("/run/a.sock") || !m.matchUnix("@abstract") || m.matchUnix("/run/b.sock") {
		t.Error("unix sockets are matched exactly")
	}
}

func TestGeneratedToken(t *testing.T) {
	tests := []struct {
		tok  string
		want bool
	}{
		{"1", true}, {"42", true}, {"abc123", true}, {"7f3a9c", true}, {"deadbeef", true},
		{"XyZaBc", true}, {"tmpk3j", true}, {"a1b2c3", true},
		{"scratch", false}, {"python3", false}, {"decade", false}, {"ConfigLoader", false},
		{"out", false}, {"v2", false}, {"x86", false}, {"json", false}, {"utf8", false},
	}
	for _, tt := range tests {
		t.Run(tt.tok, func(t *testing.T) {
			if got := generatedToken(tt.tok); got != tt.want {
				t.Errorf("generatedToken(%q) = %v, want %v", tt.tok, got, tt.want)
			}
		})
	}
}
