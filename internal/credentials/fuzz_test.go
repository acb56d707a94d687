package credentials

import (
	"bytes"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary file contents to Parse, which must not panic,
// must report failures as a *SyntaxError with a line inside the input, and
// must read back what it parsed once that is written out again. It also
// checks that what Ensure writes, for any key drawn from the fuzzed entropy,
// parses back to that key.
func FuzzParse(f *testing.F) {
	f.Add([]byte(moatFile), []byte("entropy"))
	f.Add(encode(Key{"AKIAAAAAAAAAAAAAAAAA", fileSecret}), []byte{})
	f.Add([]byte("\xef\xbb\xbf[a] ; c\r\nk: v\r\n  cont\n[b]\n"), []byte{0xff})
	f.Add([]byte("[moat]\naws_secret_access_key = x\n\tmore\n"), bytes.Repeat([]byte{7}, 40))
	f.Add([]byte("x=1\n[\n[]\n[a]b\n[a]\n[a]\n"), []byte(nil))

	f.Fuzz(func(t *testing.T, data, entropy []byte) {
		profiles, err := Parse(data)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse error %T is not a *SyntaxError: %v", err, err)
			}
			if lines := bytes.Count(data, []byte("\n")) + 1; se.Line < 1 || se.Line > lines {
				t.Fatalf("Parse error on line %d of a %d-line input", se.Line, lines)
			}
		} else if rewritten, ok := rewrite(profiles); ok {
			again, err := Parse(rewritten)
			if err != nil || !maps.Equal(again, profiles) {
				t.Fatalf("rewritten profiles parse as %v, %v; want %v\n%q", again, err, profiles, rewritten)
			}
		}

		k, err := newKey(bytes.NewReader(append(slices.Clone(entropy), make([]byte, 40)...)))
		if err != nil {
			t.Fatalf("newKey: %v", err)
		}
		if !accessKeyIDShape.MatchString(k.AccessKeyID) || !secretShape.MatchString(k.SecretAccessKey) {
			t.Fatalf("newKey made a key of the wrong shape: %q / %q", k.AccessKeyID, k.SecretAccessKey)
		}
		got, err := Parse(encode(k))
		if err != nil || !maps.Equal(got, map[string]Key{Profile: k}) {
			t.Fatalf("Parse(encode(%v)) = %v, %v", k, got, err)
		}
	})
}

// rewrite writes profiles out in the simplest form of the format, or reports
// that a name or value cannot be written so that it reads back the same.
func rewrite(profiles map[string]Key) ([]byte, bool) {
	var b bytes.Buffer
	for _, name := range slices.Sorted(maps.Keys(profiles)) {
		k := profiles[name]
		for _, s := range []string{name, k.AccessKeyID, k.SecretAccessKey} {
			if strings.ContainsAny(s, "\n\r") || strings.TrimSpace(s) != s {
				return nil, false
			}
		}
		if strings.ContainsAny(name, "[]") {
			return nil, false
		}
		b.WriteString("[" + name + "]\n")
		if k.AccessKeyID != "" {
			b.WriteString(keyAccessKeyID + " = " + k.AccessKeyID + "\n")
		}
		if k.SecretAccessKey != "" {
			b.WriteString(keySecretAccessKey + " = " + k.SecretAccessKey + "\n")
		}
	}
	return b.Bytes(), true
}
