package codepkg

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"io/fs"
)

// sink receives a validated package. Inspect discards it; Unpack writes it
// under an os.Root.
type sink interface {
	// mkdir is called for every directory, parents first, before any file.
	mkdir(name string) error
	// create returns a writer for a new regular file with the final
	// permission bits perm; Close finishes the file.
	create(name string, perm fs.FileMode) (io.WriteCloser, error)
	// symlink is called after every file and directory exists.
	symlink(target, name string) error
}

type discardSink struct{}

func (discardSink) mkdir(string) error { return nil }
func (discardSink) create(string, fs.FileMode) (io.WriteCloser, error) {
	return nopCloser{io.Discard}, nil
}
func (discardSink) symlink(string, string) error { return nil }

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// errOverLimit reports that an entry held more bytes than copyEntry allowed.
var errOverLimit = errors.New("over limit")

// extract decompresses every entry of p into s, counting real bytes against
// lim.MaxUnpackedBytes, and fills in info's UnpackedSize and Files.
func extract(p *pkg, lim Limits, s sink, info *Info) error {
	for _, d := range p.dirs {
		if err := s.mkdir(d); err != nil {
			return fmt.Errorf("create directory %q: %w", d, err)
		}
	}
	tooLarge := func() error {
		return fmt.Errorf("%w: the unpacked content is over the limit of %d bytes", ErrTooLarge, lim.MaxUnpackedBytes)
	}
	type link struct{ name, target string }
	var links []link
	used := int64(0)
	buf := make([]byte, 64<<10)
	for _, e := range p.entries {
		left := lim.MaxUnpackedBytes - used
		switch e.kind {
		case kindDir:
			n, err := copyEntry(io.Discard, e, 0, buf)
			if n > 0 || errors.Is(err, errOverLimit) || e.f.UncompressedSize64 != 0 {
				return fmt.Errorf("%w: directory entry %q has content", ErrInvalid, e.f.Name)
			}
			if err != nil {
				return err
			}
		case kindFile:
			w, err := s.create(e.name, e.perm)
			if err != nil {
				return fmt.Errorf("create file %q: %w", e.name, err)
			}
			n, err := copyEntry(w, e, left, buf)
			cerr := w.Close()
			used += n
			switch {
			case errors.Is(err, errOverLimit):
				return tooLarge()
			case err != nil:
				return err
			case cerr != nil:
				return fmt.Errorf("write file %q: %w", e.name, cerr)
			}
			info.Files++
		case kindSymlink:
			var target bytes.Buffer
			n, err := copyEntry(&target, e, min(left, maxTargetLen), buf)
			used += n
			switch {
			case errors.Is(err, errOverLimit) && left <= maxTargetLen:
				return tooLarge()
			case errors.Is(err, errOverLimit):
				return fmt.Errorf("%w: symlink %q has a target longer than %d bytes", ErrInvalid, e.name, maxTargetLen)
			case err != nil:
				return err
			}
			if err := checkLinkTarget(e.name, target.String()); err != nil {
				return err
			}
			links = append(links, link{e.name, target.String()})
			info.Files++
		}
	}
	// Links last, so that nothing is ever written through one.
	for _, l := range links {
		if err := s.symlink(l.target, l.name); err != nil {
			return fmt.Errorf("create symlink %q: %w", l.name, err)
		}
	}
	info.UnpackedSize = used
	return nil
}

// copyEntry decompresses e into w through buf, writing at most max bytes. It returns
// errOverLimit if the entry holds more than max bytes, an ErrInvalid error
// if its data is corrupt (including a CRC mismatch or a size that differs
// from its header), and otherwise the write errors of w.
func copyEntry(w io.Writer, e entry, max int64, buf []byte) (int64, error) {
	rc, err := e.f.Open()
	if err != nil {
		return 0, openError(e.f, err)
	}
	defer rc.Close()
	cr := &crcReader{r: rc, crc: crc32.NewIEEE()}
	n, err := io.CopyBuffer(w, io.LimitReader(cr, max), buf)
	if cr.err != nil {
		return n, readError(e.f, cr.err)
	}
	if err != nil {
		return n, fmt.Errorf("write %q: %w", e.name, err)
	}
	if n == max {
		// The limit stopped the copy: the entry must end right here.
		// Probe for one more byte without writing it.
		var one [1]byte
		for tries := 0; ; tries++ {
			k, err := cr.Read(one[:])
			if k > 0 {
				return n, errOverLimit
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				return n, readError(e.f, err)
			}
			if tries > 100 {
				return n, fmt.Errorf("%w: entry %q could not be read to its end", ErrInvalid, e.f.Name)
			}
		}
	}
	// archive/zip skips the check when the header's CRC is zero.
	if cr.crc.Sum32() != e.f.CRC32 {
		return n, fmt.Errorf("%w: entry %q is corrupt (checksum mismatch)", ErrInvalid, e.f.Name)
	}
	return n, nil
}

// crcReader computes the CRC-32 of what it reads and keeps the first read
// error other than io.EOF, so that copyEntry can tell corrupt input from a
// failing writer.
type crcReader struct {
	r   io.Reader
	crc hash.Hash32
	err error
}

func (c *crcReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.crc.Write(p[:n])
	if err != nil && err != io.EOF && c.err == nil {
		c.err = err
	}
	return n, err
}

func openError(f *zip.File, err error) error {
	if errors.Is(err, zip.ErrAlgorithm) {
		return fmt.Errorf("%w: entry %q uses unsupported compression method %d; use deflate or store", ErrInvalid, f.Name, f.Method)
	}
	return fmt.Errorf("%w: entry %q has a missing or damaged local header (%v)", ErrInvalid, f.Name, err)
}

func readError(f *zip.File, err error) error {
	var corrupt flate.CorruptInputError
	switch {
	case errors.Is(err, zip.ErrChecksum):
		return fmt.Errorf("%w: entry %q is corrupt (checksum mismatch)", ErrInvalid, f.Name)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: entry %q is truncated (its data ends before its declared size)", ErrInvalid, f.Name)
	case errors.Is(err, zip.ErrFormat):
		return fmt.Errorf("%w: entry %q is corrupt (its data does not match its declared size)", ErrInvalid, f.Name)
	case errors.As(err, &corrupt):
		return fmt.Errorf("%w: entry %q has corrupt compressed data", ErrInvalid, f.Name)
	}
	return fmt.Errorf("%w: entry %q could not be read (%v)", ErrInvalid, f.Name, err)
}
