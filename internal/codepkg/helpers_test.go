package codepkg

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// ent describes one entry of a test zip.
type ent struct {
	name string
	body string
	// mode is the Unix mode stored in the zip. Zero means a plain file
	// written the way Windows tools do: no Unix mode at all.
	mode fs.FileMode
}

func file(name, body string) ent { return ent{name: name, body: body, mode: 0o644} }
func exe(name, body string) ent  { return ent{name: name, body: body, mode: 0o755} }
func dir(name string) ent        { return ent{name: name, mode: fs.ModeDir | 0o755} }
func symlink(name, target string) ent {
	return ent{name: name, body: target, mode: fs.ModeSymlink | 0o777}
}
func special(name string, m fs.FileMode) ent { return ent{name: name, mode: m | 0o644} }

// makeZip builds a zip of entries, in order, deflating files.
func makeZip(t testing.TB, entries ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		hdr := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		if e.mode != 0 {
			hdr.SetMode(e.mode)
		}
		if e.mode.IsDir() || e.mode&fs.ModeSymlink != 0 {
			hdr.Method = zip.Store
		}
		w, err := zw.CreateHeader(hdr)
		if err != nil {
			t.Fatalf("create %q: %v", e.name, err)
		}
		if _, err := io.WriteString(w, e.body); err != nil {
			t.Fatalf("write %q: %v", e.name, err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// raw describes an entry written with zip.Writer.CreateRaw: its header is
// taken as given, so it can lie.
type raw struct {
	hdr  zip.FileHeader
	data []byte // bytes stored as they are (already compressed if Method says so)
}

func makeRawZip(t testing.TB, entries ...raw) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		hdr := e.hdr
		w, err := zw.CreateRaw(&hdr)
		if err != nil {
			t.Fatalf("create raw %q: %v", e.hdr.Name, err)
		}
		if _, err := w.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// storedRaw is a stored (uncompressed) entry with honest sizes and CRC.
func storedRaw(name string, body []byte) raw {
	return raw{
		hdr: zip.FileHeader{
			Name:               name,
			Method:             zip.Store,
			CRC32:              crc32.ChecksumIEEE(body),
			CompressedSize64:   uint64(len(body)),
			UncompressedSize64: uint64(len(body)),
		},
		data: body,
	}
}

// deflatedRaw is a deflated entry with honest sizes and CRC.
func deflatedRaw(t testing.TB, name string, body []byte) raw {
	t.Helper()
	c := deflate(t, body)
	return raw{
		hdr: zip.FileHeader{
			Name:               name,
			Method:             zip.Deflate,
			CRC32:              crc32.ChecksumIEEE(body),
			CompressedSize64:   uint64(len(c)),
			UncompressedSize64: uint64(len(body)),
		},
		data: c,
	}
}

// zeroBodies caches deflated runs of zeros by length: compressing them is
// the slow part of building zip bombs.
var zeroBodies sync.Map // int -> raw

// deflatedZeros is a deflated entry of n zero bytes with honest sizes.
func deflatedZeros(t testing.TB, name string, n int) raw {
	t.Helper()
	v, ok := zeroBodies.Load(n)
	if !ok {
		v = deflatedRaw(t, "", make([]byte, n))
		zeroBodies.Store(n, v)
	}
	r := v.(raw)
	r.hdr.Name = name
	r.data = bytes.Clone(r.data)
	return r
}

func deflate(t testing.TB, body []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	fw, err := flate.NewWriter(&buf, flate.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fw.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// validZip is a small package that Inspect accepts with requireBootstrap.
func validZip(t testing.TB) []byte {
	return makeZip(t,
		exe("bootstrap", "#!/bin/sh\necho hello\n"),
		dir("lib/"),
		file("lib/data.txt", strings.Repeat("moat ", 200)),
	)
}

// newDst returns a path for Unpack to create under a fresh directory, and
// removes whatever ends up there (read-only directories included) at the
// end of the test.
func newDst(t testing.TB) (parent, dst string) {
	t.Helper()
	parent = t.TempDir()
	dst = filepath.Join(parent, "pkg")
	t.Cleanup(func() {
		if err := RemoveAll(parent); err != nil {
			t.Errorf("clean up: %v", err)
		}
	})
	return parent, dst
}

// listDir returns the names in dir.
func listDir(t testing.TB, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}
