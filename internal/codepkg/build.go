package codepkg

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"
)

// zipTime is the modification time of every entry Zip writes: the earliest
// time a zip can hold, so that the same tree always gives the same bytes.
var zipTime = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

// Zip builds a deterministic zip of the tree under dir, for the CLI's
// `moat deploy NAME DIR`. It keeps regular files (mode 0755 if any exec bit
// is set, else 0644), directories and symlinks that stay inside dir, in
// sorted order with a fixed timestamp. It refuses symlinks pointing outside
// dir and special files with an error wrapping ErrInvalid. Names are checked
// with the same rules as Unpack, so what Zip builds Unpack accepts (size
// limits aside).
func Zip(dir string) ([]byte, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("zip: %w", err)
	}
	defer root.Close()
	fsys := root.FS()

	type item struct {
		name string // zip name; directories end in '/'
		path string // path in fsys
		mode fs.FileMode
	}
	var items []item
	err = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == "." {
			return nil
		}
		if _, err := cleanName(p); err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		name := p
		if d.IsDir() {
			name += "/"
		}
		items = append(items, item{name: name, path: p, mode: info.Mode()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("zip: %w", err)
	}
	slices.SortFunc(items, func(a, b item) int { return strings.Compare(a.name, b.name) })

	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, it := range items {
		if err := addToZip(zw, fsys, it.name, it.path, it.mode); err != nil {
			return nil, fmt.Errorf("zip: %w", err)
		}
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("zip: %w", err)
	}
	return buf.Bytes(), nil
}

// addToZip writes one entry of Zip: name is its zip name, p its path in fsys.
func addToZip(zw *zip.Writer, fsys fs.FS, name, p string, mode fs.FileMode) error {
	hdr := &zip.FileHeader{Name: name, Modified: zipTime}
	var body io.Reader
	switch mode.Type() {
	case fs.ModeDir:
		hdr.Method = zip.Store
		hdr.SetMode(fs.ModeDir | 0o755)
	case 0:
		hdr.Method = zip.Deflate
		perm := fs.FileMode(0o644)
		if mode.Perm()&0o111 != 0 {
			perm = 0o755
		}
		hdr.SetMode(perm)
		f, err := fsys.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		body = f
	case fs.ModeSymlink:
		target, err := fs.ReadLink(fsys, p)
		if err != nil {
			return err
		}
		if err := checkLinkTarget(p, target); err != nil {
			return err
		}
		hdr.Method = zip.Store
		hdr.SetMode(fs.ModeSymlink | 0o777)
		body = strings.NewReader(target)
	default:
		return fmt.Errorf("%w: %q is a special file (%v); only regular files, directories and symlinks can be packaged", ErrInvalid, p, mode.Type())
	}
	w, err := zw.CreateHeader(hdr)
	if err != nil {
		return err
	}
	if body != nil {
		if _, err := io.Copy(w, body); err != nil {
			return fmt.Errorf("read %q: %w", p, err)
		}
	}
	return nil
}
