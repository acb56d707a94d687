package codepkg

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
)

// Sentinel errors. Both are the caller's fault; their messages name the
// offending entry and never contain host paths.
var (
	// ErrInvalid: the zip is corrupt or unsafe (path traversal, symlink out
	// of the package, device file, duplicate entry, missing bootstrap, ...).
	ErrInvalid = errors.New("invalid zip file")
	// ErrTooLarge: the zip, its unpacked content or its entry count is over
	// the limit.
	ErrTooLarge = errors.New("code package too large")
)

// Default limits, matching AWS Lambda's quotas for direct uploads.
const (
	DefaultMaxZipBytes      = 50 << 20
	DefaultMaxUnpackedBytes = 250 << 20
	DefaultMaxEntries       = 20000
)

// Limits bound what a package may contain. A zero or negative field means
// its default.
type Limits struct {
	MaxZipBytes int64 // size of the zip itself (default 50 MiB)
	// MaxUnpackedBytes bounds the bytes actually decompressed from all
	// entries together (default 250 MiB). Sizes declared in zip headers are
	// never trusted.
	MaxUnpackedBytes int64
	// MaxEntries bounds the files, symlinks and directories in the package,
	// counting directories that are only implied by deeper entries
	// (default 20000).
	MaxEntries int
}

func (l Limits) withDefaults() Limits {
	if l.MaxZipBytes <= 0 {
		l.MaxZipBytes = DefaultMaxZipBytes
	}
	if l.MaxUnpackedBytes <= 0 {
		l.MaxUnpackedBytes = DefaultMaxUnpackedBytes
	}
	if l.MaxEntries <= 0 {
		l.MaxEntries = DefaultMaxEntries
	}
	return l
}

// Info describes a valid package.
type Info struct {
	SHA256Hex    string // content address: hex of sha256 of the zip bytes
	SHA256Base64 string // as AWS reports CodeSha256: std base64 of the raw digest
	Size         int64  // zip bytes
	UnpackedSize int64  // bytes decompressed: file contents and symlink targets
	Files        int    // regular files and symlinks (directories not counted)
}

func newInfo(digest [sha256.Size]byte, size int64) Info {
	return Info{
		SHA256Hex:    hex.EncodeToString(digest[:]),
		SHA256Base64: base64.StdEncoding.EncodeToString(digest[:]),
		Size:         size,
	}
}

// Inspect fully validates a zip without writing anything: every entry is
// decompressed to count its real size and check its CRC. With
// requireBootstrap (runtimes provided.*), a regular file named exactly
// "bootstrap" must sit at the root of the package; it need not carry the
// exec bit in the zip, since Unpack makes it executable anyway.
//
// It returns an error wrapping ErrInvalid or ErrTooLarge when the package is
// refused.
func Inspect(zipData []byte, lim Limits, requireBootstrap bool) (Info, error) {
	lim = lim.withDefaults()
	p, err := parse(zipData, lim, requireBootstrap)
	if err != nil {
		return Info{}, err
	}
	info := newInfo(sha256.Sum256(zipData), int64(len(zipData)))
	if err := extract(p, lim, discardSink{}, &info); err != nil {
		return Info{}, err
	}
	return info, nil
}

// Entry kinds allowed in a package.
type kind uint8

const (
	kindDir kind = iota + 1
	kindFile
	kindSymlink
)

func (k kind) String() string {
	switch k {
	case kindDir:
		return "directory"
	case kindFile:
		return "file"
	case kindSymlink:
		return "symlink"
	}
	return "unknown"
}

// entry is one validated zip entry.
type entry struct {
	f    *zip.File
	name string      // clean, slash-separated, relative, no trailing slash
	kind kind        //
	perm fs.FileMode // final permission bits of a file: 0444 or 0555
}

// pkg is a zip whose metadata (names, types, tree shape) has been validated.
// Contents are checked by extract.
type pkg struct {
	entries []entry  // in zip order; the root directory entry, if any, is dropped
	dirs    []string // every directory, explicit or implied, parents before children
}

const (
	bootstrapName = "bootstrap"
	flagEncrypted = 0x1
)

// parse validates everything about a zip that can be known without
// decompressing it.
func parse(data []byte, lim Limits, requireBootstrap bool) (*pkg, error) {
	if int64(len(data)) > lim.MaxZipBytes {
		return nil, fmt.Errorf("%w: the zip is %d bytes; the limit is %d bytes", ErrTooLarge, len(data), lim.MaxZipBytes)
	}
	r, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	// ErrInsecurePath (only with GODEBUG=zipinsecurepath=0) comes with a
	// usable reader; the name checks below give a more precise message.
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return nil, fmt.Errorf("%w: not a readable zip archive (%v)", ErrInvalid, err)
	}
	if len(r.File) > lim.MaxEntries {
		return nil, fmt.Errorf("%w: the zip has %d entries; the limit is %d", ErrTooLarge, len(r.File), lim.MaxEntries)
	}

	p := &pkg{entries: make([]entry, 0, len(r.File))}
	paths := make(map[string]kind, len(r.File))    // every path in the tree, explicit or implied
	explicit := make(map[string]bool, len(r.File)) // paths named by an entry
	for _, f := range r.File {
		name, err := cleanName(f.Name)
		if err != nil {
			return nil, err
		}
		k, err := entryKind(f)
		if err != nil {
			return nil, err
		}
		if off, err := f.DataOffset(); err != nil {
			return nil, fmt.Errorf("%w: entry %q has a missing or damaged local header (%v)", ErrInvalid, f.Name, err)
		} else if off > int64(len(data)) || f.CompressedSize64 > uint64(int64(len(data))-off) {
			return nil, fmt.Errorf("%w: entry %q: its compressed data extends past the end of the zip", ErrInvalid, f.Name)
		}
		if f.Flags&flagEncrypted != 0 {
			return nil, fmt.Errorf("%w: entry %q is encrypted; encrypted zips are not supported", ErrInvalid, f.Name)
		}
		if name == "" {
			if k == kindDir {
				continue // "./": the package root itself
			}
			return nil, fmt.Errorf("%w: entry %q is a %s without a name", ErrInvalid, f.Name, k)
		}
		if explicit[name] {
			return nil, fmt.Errorf("%w: duplicate entry %q", ErrInvalid, name)
		}
		if prev, ok := paths[name]; ok && k != kindDir {
			return nil, fmt.Errorf("%w: entry %q is a %s, but other entries are stored inside it as a %s", ErrInvalid, name, k, prev)
		}
		// Record the parents. Stop at the first one already known: its
		// own parents were recorded when it was.
		for i := strings.LastIndexByte(name, '/'); i > 0; i = strings.LastIndexByte(name[:i], '/') {
			dir := name[:i]
			if prev, ok := paths[dir]; ok {
				if prev != kindDir {
					return nil, fmt.Errorf("%w: entry %q is inside %q, which is a %s, not a directory", ErrInvalid, name, dir, prev)
				}
				break
			}
			paths[dir] = kindDir
			p.dirs = append(p.dirs, dir)
			if len(paths) > lim.MaxEntries {
				return nil, tooManyEntries(lim)
			}
		}
		if _, ok := paths[name]; !ok {
			paths[name] = k
			if k == kindDir {
				p.dirs = append(p.dirs, name)
			}
		}
		explicit[name] = true
		if len(paths) > lim.MaxEntries {
			return nil, tooManyEntries(lim)
		}

		perm := fs.FileMode(0o444)
		if f.Mode().Perm()&0o111 != 0 || name == bootstrapName {
			perm = 0o555
		}
		p.entries = append(p.entries, entry{f: f, name: name, kind: k, perm: perm})
	}
	// A parent is a prefix of its children, so it sorts before them.
	slices.Sort(p.dirs)

	if requireBootstrap {
		switch k, ok := paths[bootstrapName]; {
		case !ok:
			return nil, fmt.Errorf("%w: no file named %q at the root of the package; runtime provided.* starts the function by running it", ErrInvalid, bootstrapName)
		case k != kindFile:
			return nil, fmt.Errorf("%w: %q at the root of the package is a %s; it must be a regular file", ErrInvalid, bootstrapName, k)
		}
	}
	return p, nil
}

func tooManyEntries(lim Limits) error {
	return fmt.Errorf("%w: the package has more than %d files and directories", ErrTooLarge, lim.MaxEntries)
}

// entryKind classifies an entry by its mode. Only regular files, directories
// and symlinks are allowed.
func entryKind(f *zip.File) (kind, error) {
	m := f.Mode()
	switch m.Type() {
	case 0:
		return kindFile, nil
	case fs.ModeDir:
		return kindDir, nil
	case fs.ModeSymlink:
		return kindSymlink, nil
	}
	var what string
	switch t := m.Type(); {
	case t&fs.ModeCharDevice != 0:
		what = "character device"
	case t&fs.ModeDevice != 0:
		what = "block device"
	case t&fs.ModeNamedPipe != 0:
		what = "named pipe (FIFO)"
	case t&fs.ModeSocket != 0:
		what = "socket"
	case t&fs.ModeSymlink != 0:
		what = "symlink marked as a directory"
	default:
		what = "special file"
	}
	return 0, fmt.Errorf("%w: entry %q is a %s; only regular files, directories and symlinks are allowed", ErrInvalid, f.Name, what)
}
