package names

import (
	"regexp"
	"strings"
	"testing"
)

func TestFunction(t *testing.T) {
	for _, s := range []string{"a", "echo", "My_Function-2", strings.Repeat("x", 64)} {
		if !Function(s) {
			t.Errorf("Function(%q) = false, want true", s)
		}
	}
	for _, s := range []string{"", strings.Repeat("x", 65), "a.b", "a:b", "a b", "a/b", "a*", "a>", "ä", "arn:aws:lambda:us-east-1:000000000000:function:f"} {
		if Function(s) {
			t.Errorf("Function(%q) = true, want false", s)
		}
	}
}

func TestInstance(t *testing.T) {
	for _, s := range []string{"a", "echo-1-0a3f", strings.Repeat("0", 64)} {
		if !Instance(s) {
			t.Errorf("Instance(%q) = false, want true", s)
		}
	}
	for _, s := range []string{"", strings.Repeat("a", 65), "A", "a_b", "a.b", "a/b", "../x"} {
		if Instance(s) {
			t.Errorf("Instance(%q) = true, want false", s)
		}
	}
}

// The rules are the regular expressions they are documented as.
func FuzzNames(f *testing.F) {
	fn := regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	inst := regexp.MustCompile(`^[a-z0-9-]{1,64}$`)
	for _, s := range []string{"", "echo", "a.b", "x-1", "ÄÖ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := Function(s), fn.MatchString(s); got != want {
			t.Errorf("Function(%q) = %v, regexp says %v", s, got, want)
		}
		if got, want := Instance(s), inst.MatchString(s); got != want {
			t.Errorf("Instance(%q) = %v, regexp says %v", s, got, want)
		}
	})
}
