package codepkg

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// writeTree creates files (name -> body, mode) and symlinks under dir.
func writeTree(t *testing.T, dir string, files map[string]fs.FileMode, links map[string]string) {
	t.Helper()
	for name, mode := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if mode.IsDir() {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte("content of "+name), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

var (
	treeFiles = map[string]fs.FileMode{
		"bootstrap":        0o755,
		"lib/a.txt":        0o644,
		"lib/sub/tool":     0o700,
		"lib/sub/readonly": 0o400,
		"empty":            fs.ModeDir,
	}
	treeLinks = map[string]string{
		"lib/link":   "a.txt",
		"lib/sub/up": "../a.txt",
	}
)

func TestZipRoundTrip(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, treeFiles, treeLinks)
	z, err := Zip(src)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Inspect(z, Limits{}, true); err != nil {
		t.Fatalf("Inspect: %v", err)
	}
	_, dst := newDst(t)
	info, err := Unpack(z, dst, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if info.Files != 6 {
		t.Errorf("Files = %d, want 6", info.Files)
	}
	for name, mode := range treeFiles {
		fi, err := os.Lstat(filepath.Join(dst, name))
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case mode.IsDir():
			if !fi.IsDir() {
				t.Errorf("%s: %v, want a directory", name, fi.Mode())
			}
		default:
			want := fs.FileMode(0o444)
			if mode&0o111 != 0 {
				want = 0o555
			}
			if fi.Mode() != want {
				t.Errorf("%s: mode %v, want %v", name, fi.Mode(), want)
			}
			b, err := os.ReadFile(filepath.Join(dst, name))
			if err != nil || string(b) != "content of "+name {
				t.Errorf("%s = %q, %v", name, b, err)
			}
		}
	}
	for name, target := range treeLinks {
		got, err := os.Readlink(filepath.Join(dst, name))
		if err != nil || got != target {
			t.Errorf("%s -> %q, %v; want %q", name, got, err, target)
		}
	}
	checkTree(t, dst)
}

func TestZipDeterministic(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	writeTree(t, a, treeFiles, treeLinks)
	writeTree(t, b, treeFiles, treeLinks)
	// Different times must not matter.
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(b, "bootstrap"), old, old); err != nil {
		t.Fatal(err)
	}
	za, err := Zip(a)
	if err != nil {
		t.Fatal(err)
	}
	za2, err := Zip(a)
	if err != nil {
		t.Fatal(err)
	}
	zb, err := Zip(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(za, za2) || !bytes.Equal(za, zb) {
		t.Fatal("Zip of the same tree gave different bytes")
	}
}

func TestZipRefuses(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
	}{
		{"absolute symlink", func(t *testing.T, dir string) {
			writeTree(t, dir, nil, map[string]string{"passwd": "/etc/passwd"})
		}},
		{"symlink escaping", func(t *testing.T, dir string) {
			writeTree(t, dir, map[string]fs.FileMode{"sub": fs.ModeDir}, map[string]string{"sub/out": "../../x"})
		}},
		{"fifo", func(t *testing.T, dir string) {
			if err := syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"backslash in a name", func(t *testing.T, dir string) {
			writeTree(t, dir, map[string]fs.FileMode{`a\b`: 0o644}, nil)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTree(t, dir, map[string]fs.FileMode{"bootstrap": 0o755}, nil)
			tc.setup(t, dir)
			if _, err := Zip(dir); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Zip = %v, want ErrInvalid", err)
			}
		})
	}
}
