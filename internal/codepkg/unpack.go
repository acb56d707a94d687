package codepkg

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Modes of unpacked directories. They are writable only while being filled.
const (
	dirModeFilling = 0o700
	dirModeSealed  = 0o555
)

// Unpack validates a zip like Inspect (without requiring a bootstrap) and
// writes it into dst, which must not exist; its parent must. Writes go
// through an os.Root, so nothing can land outside dst.
//
// The result is read-only: files are 0444, or 0555 when executable in the
// zip or when they are the root "bootstrap"; directories, dst included, are
// 0555. setuid, setgid and sticky bits are dropped. Symlinks are created only
// when their target is relative and stays inside the package.
//
// The package is unpacked into a temporary sibling of dst and renamed into
// place at the end, so on error nothing half-written remains. It returns an
// error wrapping ErrInvalid or ErrTooLarge when the package is refused, and
// fs.ErrExist when dst already exists. Errors never contain host paths.
func Unpack(zipData []byte, dst string, lim Limits) (Info, error) {
	return unpack(zipData, sha256.Sum256(zipData), dst, lim, nil)
}

// unpack is Unpack with the zip's digest already computed. wrap, when not
// nil, wraps the sink (tests use it to count bytes written).
func unpack(zipData []byte, digest [sha256.Size]byte, dst string, lim Limits, wrap func(sink) sink) (info Info, err error) {
	lim = lim.withDefaults()
	p, err := parse(zipData, lim, false)
	if err != nil {
		return Info{}, err
	}
	if _, err := os.Lstat(dst); err == nil {
		return Info{}, fmt.Errorf("unpack: destination: %w", fs.ErrExist)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return Info{}, fmt.Errorf("unpack: check destination: %w", stripPath(err))
	}

	tmp, err := os.MkdirTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-")
	if err != nil {
		return Info{}, fmt.Errorf("unpack: create temporary directory: %w", stripPath(err))
	}
	defer func() {
		if err != nil {
			removeTree(tmp)
		}
	}()
	root, err := os.OpenRoot(tmp)
	if err != nil {
		return Info{}, fmt.Errorf("unpack: open temporary directory: %w", stripPath(err))
	}
	defer root.Close()

	rs := &rootSink{root: root}
	var s sink = rs
	if wrap != nil {
		s = wrap(s)
	}
	info = newInfo(digest, int64(len(zipData)))
	if err := extract(p, lim, s, &info); err != nil {
		return Info{}, err
	}
	for i := len(p.dirs) - 1; i >= 0; i-- {
		if err := root.Chmod(p.dirs[i], dirModeSealed); err != nil {
			return Info{}, fmt.Errorf("unpack: seal directory %q: %w", p.dirs[i], stripPath(err))
		}
	}
	if err := root.Chmod(".", dirModeSealed); err != nil {
		return Info{}, fmt.Errorf("unpack: seal package directory: %w", stripPath(err))
	}
	if err := root.Close(); err != nil {
		return Info{}, fmt.Errorf("unpack: %w", stripPath(err))
	}
	// os.Rename refuses to replace an existing directory.
	if err := os.Rename(tmp, dst); err != nil {
		return Info{}, fmt.Errorf("unpack: move into place: %w", stripPath(err))
	}
	return info, nil
}

// rootSink writes a package under root. Its errors carry entry names only.
type rootSink struct{ root *os.Root }

func (s *rootSink) mkdir(name string) error {
	return stripPath(s.root.Mkdir(name, dirModeFilling))
}

// create opens a new file for writing. It holds syscall.ForkLock (read)
// until the file is closed: a process forked meanwhile by this one (an
// instance starting) would otherwise inherit the descriptor open for
// writing until it execs, and an exec of the file in that window fails
// with ETXTBSY (golang/go#22315) — a function's first cold start right
// after its deploy did.
func (s *rootSink) create(name string, perm fs.FileMode) (io.WriteCloser, error) {
	syscall.ForkLock.RLock()
	f, err := s.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		syscall.ForkLock.RUnlock()
		return nil, stripPath(err)
	}
	return &sealingFile{f: f, perm: perm}, nil
}

func (s *rootSink) symlink(target, name string) error {
	return stripPath(s.root.Symlink(target, name))
}

// sealingFile sets its final mode when closed. It hides *os.File's
// ReadFrom, which has nothing to gain from a decompressing reader.
type sealingFile struct {
	f    *os.File
	perm fs.FileMode
}

func (w *sealingFile) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	return n, stripPath(err)
}

func (w *sealingFile) Close() error {
	if w.f == nil {
		return nil
	}
	err := w.f.Chmod(w.perm)
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	w.f = nil
	syscall.ForkLock.RUnlock()
	return stripPath(err)
}

// stripPath drops the path from *fs.PathError and *os.LinkError, keeping the
// operation and the cause, so that host paths stay out of messages.
func stripPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return fmt.Errorf("%s: %w", le.Op, le.Err)
	}
	return err
}

// RemoveAll deletes a package written by Unpack. os.RemoveAll alone fails
// for users other than root, because Unpack leaves directories read-only.
func RemoveAll(dir string) error {
	return removeTree(dir)
}

// removeTree deletes a tree whose directories may be read-only.
func removeTree(dir string) error {
	// WalkDir calls the function for a directory before reading it, so
	// each directory is writable by the time its entries are removed.
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
	if err := os.RemoveAll(dir); err != nil {
		return stripPath(err)
	}
	return nil
}
