package secrets

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func newKey(t testing.TB) []byte {
	t.Helper()
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func mustKeyring(t testing.TB, key []byte, prev ...[]byte) *Keyring {
	t.Helper()
	k, err := NewKeyring(key, prev...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpenRoundTrip(t *testing.T) {
	k := mustKeyring(t, newKey(t))
	for _, pt := range [][]byte{nil, []byte("{}"), []byte(`{"A":"1"}`), bytes.Repeat([]byte("x"), 5000)} {
		s, err := k.Seal(pt, []byte("fn"))
		if err != nil {
			t.Fatal(err)
		}
		if s.KeyID != k.KeyID() {
			t.Errorf("KeyID = %q, want %q", s.KeyID, k.KeyID())
		}
		if len(pt) > 4 && bytes.Contains(s.Data, pt) {
			t.Error("plaintext visible in sealed data")
		}
		got, err := k.Open(s, []byte("fn"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, pt) {
			t.Errorf("Open = %q, want %q", got, pt)
		}
	}
}

func TestSealUsesFreshKeys(t *testing.T) {
	k := mustKeyring(t, newKey(t))
	a, _ := k.Seal([]byte("same"), []byte("fn"))
	b, _ := k.Seal([]byte("same"), []byte("fn"))
	if bytes.Equal(a.WrappedKey, b.WrappedKey) || bytes.Equal(a.Data, b.Data) {
		t.Error("two seals of one plaintext share a data key or nonce")
	}
}

func TestOpenFailures(t *testing.T) {
	key := newKey(t)
	k := mustKeyring(t, key)
	s, err := k.Seal([]byte(`{"SECRET":"v"}`), []byte("fn-a"))
	if err != nil {
		t.Fatal(err)
	}
	flip := func(b []byte, i int) []byte { c := bytes.Clone(b); c[i] ^= 1; return c }
	tests := []struct {
		name    string
		keys    *Keyring
		sealed  *Sealed
		aad     string
		wantErr error
	}{
		{"wrong aad", k, s, "fn-b", ErrOpen},
		{"empty aad", k, s, "", ErrOpen},
		{"tampered data", k, &Sealed{s.KeyID, s.WrappedKey, flip(s.Data, len(s.Data)-1)}, "fn-a", ErrOpen},
		{"tampered data nonce", k, &Sealed{s.KeyID, s.WrappedKey, flip(s.Data, 0)}, "fn-a", ErrOpen},
		{"tampered wrapped key", k, &Sealed{s.KeyID, flip(s.WrappedKey, 20), s.Data}, "fn-a", ErrOpen},
		{"truncated data", k, &Sealed{s.KeyID, s.WrappedKey, s.Data[:10]}, "fn-a", ErrOpen},
		{"swapped layers", k, &Sealed{s.KeyID, s.Data, s.WrappedKey}, "fn-a", ErrOpen},
		{"nil", k, nil, "fn-a", ErrOpen},
		{"wrong master key", mustKeyring(t, newKey(t)), s, "fn-a", ErrUnknownKey},
		{"wrong master key, forged id", mustKeyring(t, newKey(t)), &Sealed{"", s.WrappedKey, s.Data}, "fn-a", ErrUnknownKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pt, err := tt.keys.Open(tt.sealed, []byte(tt.aad))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Open error = %v, want %v", err, tt.wantErr)
			}
			if pt != nil {
				t.Error("plaintext returned with an error")
			}
		})
	}
	t.Run("forged id of another key", func(t *testing.T) {
		other := mustKeyring(t, newKey(t))
		forged := &Sealed{other.KeyID(), s.WrappedKey, s.Data}
		if _, err := other.Open(forged, []byte("fn-a")); !errors.Is(err, ErrOpen) {
			t.Fatalf("Open error = %v, want ErrOpen", err)
		}
	})
}

func TestKeyringRotation(t *testing.T) {
	oldKey, newK := newKey(t), newKey(t)
	s, _ := mustKeyring(t, oldKey).Seal([]byte("v"), nil)
	k := mustKeyring(t, newK, oldKey)
	if got, err := k.Open(s, nil); err != nil || string(got) != "v" {
		t.Fatalf("Open with previous key = %q, %v", got, err)
	}
	s2, _ := k.Seal([]byte("w"), nil)
	if s2.KeyID != KeyID(newK) {
		t.Error("seal did not use the primary key")
	}
}

func TestNewKeyringRejectsBadKeys(t *testing.T) {
	for _, n := range []int{0, 16, 31, 33, 64} {
		if _, err := NewKeyring(make([]byte, n)); err == nil {
			t.Errorf("NewKeyring accepted a %d-byte key", n)
		}
	}
	if _, err := NewKeyring(newKey(t), []byte("short")); err == nil {
		t.Error("NewKeyring accepted a short previous key")
	}
}

func TestKeyID(t *testing.T) {
	id := KeyID(make([]byte, KeySize))
	// sha256 of 32 zero bytes starts 66687aadf862bd77.
	if id != "66687aadf862bd77" {
		t.Errorf("KeyID = %s", id)
	}
}

func TestLoadOrCreateMasterKey(t *testing.T) {
	t.Run("creates once and reloads", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "sub", "master.key")
		k1, err := LoadOrCreateMasterKey(path)
		if err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("mode = %#o, want 0600", st.Mode().Perm())
		}
		before, _ := os.ReadFile(path)
		k2, err := LoadOrCreateMasterKey(path)
		if err != nil {
			t.Fatal(err)
		}
		after, _ := os.ReadFile(path)
		if !bytes.Equal(before, after) {
			t.Error("existing key file was rewritten")
		}
		if k1.KeyID() != k2.KeyID() {
			t.Error("reloaded key differs")
		}
		s, _ := k1.Seal([]byte("x"), nil)
		if _, err := k2.Open(s, nil); err != nil {
			t.Error(err)
		}
		entries, _ := os.ReadDir(filepath.Dir(path))
		if len(entries) != 1 {
			t.Errorf("left %d files in the key directory, want 1", len(entries))
		}
	})
	t.Run("formats", func(t *testing.T) {
		key := newKey(t)
		for name, content := range map[string][]byte{
			"hex":         []byte(hex.EncodeToString(key)),
			"hex newline": []byte(hex.EncodeToString(key) + "\n"),
			"hex upper":   []byte(strings.ToUpper(hex.EncodeToString(key)) + "\r\n"),
			"raw":         key,
		} {
			path := filepath.Join(t.TempDir(), "k")
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
			k, err := LoadOrCreateMasterKey(path)
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			if k.KeyID() != KeyID(key) {
				t.Errorf("%s: wrong key loaded", name)
			}
		}
	})
	t.Run("refuses", func(t *testing.T) {
		key := []byte(hex.EncodeToString(newKey(t)))
		tests := []struct {
			name    string
			content []byte
			mode    os.FileMode
		}{
			{"group readable", key, 0o640},
			{"world readable", key, 0o604},
			{"group writable", key, 0o620},
			{"empty", nil, 0o600},
			{"short hex", key[:40], 0o600},
			{"not hex", bytes.Repeat([]byte("zz"), KeySize), 0o600},
			{"too long", bytes.Repeat([]byte("a"), 500), 0o600},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "k")
				if err := os.WriteFile(path, tt.content, 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, tt.mode); err != nil {
					t.Fatal(err)
				}
				if _, err := LoadOrCreateMasterKey(path); err == nil {
					t.Fatal("accepted")
				}
				got, _ := os.ReadFile(path)
				if !bytes.Equal(got, tt.content) {
					t.Error("refused key file was modified")
				}
			})
		}
	})
	t.Run("refuses a directory", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "k")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadOrCreateMasterKey(dir); err == nil {
			t.Fatal("accepted a directory")
		}
	})
	t.Run("read only operator file", func(t *testing.T) {
		_, err := ReadMasterKeyFile(filepath.Join(t.TempDir(), "missing"))
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("err = %v, want not exist", err)
		}
	})
}

func FuzzOpen(f *testing.F) {
	k := mustKeyring(f, newKey(f))
	s, _ := k.Seal([]byte("seed"), []byte("fn"))
	f.Add(s.WrappedKey, s.Data, []byte("fn"))
	f.Fuzz(func(t *testing.T, wrapped, data, aad []byte) {
		pt, err := k.Open(&Sealed{KeyID: k.KeyID(), WrappedKey: wrapped, Data: data}, aad)
		if err == nil && !(bytes.Equal(wrapped, s.WrappedKey) && bytes.Equal(data, s.Data)) {
			t.Fatalf("opened a forged blob: %q", pt)
		}
	})
}

func BenchmarkSealOpen(b *testing.B) {
	k := mustKeyring(b, newKey(b))
	pt := bytes.Repeat([]byte("v"), 512)
	for b.Loop() {
		s, err := k.Seal(pt, []byte("fn"))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := k.Open(s, []byte("fn")); err != nil {
			b.Fatal(err)
		}
	}
}
