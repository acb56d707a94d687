package codepkg

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// packageCase is one zip and how Inspect and Unpack must treat it.
type packageCase struct {
	name    string
	zip     func(t testing.TB) []byte
	lim     Limits
	wantErr error  // nil, ErrInvalid or ErrTooLarge
	wantMsg string // substring of the error message, if set
	// bootstrapOnly: refused only because of the bootstrap rule, so
	// Unpack (which does not require one) accepts it.
	bootstrapOnly bool
}

func zipOf(entries ...ent) func(testing.TB) []byte {
	return func(t testing.TB) []byte { return makeZip(t, entries...) }
}

func rawZipOf(entries func(t testing.TB) []raw) func(testing.TB) []byte {
	return func(t testing.TB) []byte { return makeRawZip(t, entries(t)...) }
}

var boot = exe("bootstrap", "#!/bin/sh\n")

func packageCases() []packageCase {
	return []packageCase{
		// Valid packages.
		{name: "valid package", zip: validZip},
		{name: "bootstrap without exec bit (Windows zip)", zip: zipOf(ent{name: "bootstrap", body: "x"})},
		{name: "bootstrap as ./bootstrap", zip: zipOf(exe("./bootstrap", "x"), dir("./"))},
		{name: "symlink inside the package", zip: zipOf(boot, exe("bin/tool", "t"), symlink("lib/tool", "../bin/tool"))},
		{name: "symlink to a directory inside", zip: zipOf(boot, dir("lib/"), symlink("l", "lib"))},
		{name: "symlink to the package root", zip: zipOf(boot, symlink("sub/root", ".."))},
		{name: "dangling symlink inside", zip: zipOf(boot, symlink("l", "missing"))},
		{name: "setuid file is accepted (and stripped)", zip: zipOf(boot, ent{name: "suid", body: "x", mode: 0o755 | fs.ModeSetuid})},
		{name: "implied directories", zip: zipOf(boot, file("a/b/c/d.txt", "d"))},
		{name: "directory entry after its children", zip: zipOf(boot, file("a/x", "x"), dir("a/"))},
		{name: "empty files", zip: zipOf(boot, file("empty", ""))},
		{name: "zero CRC with empty body", zip: rawZipOf(func(testing.TB) []raw { return []raw{storedRaw("bootstrap", nil)} })},
		{name: "exactly at the unpacked limit", zip: zipOf(exe("bootstrap", "12345"), file("f", "67890")), lim: Limits{MaxUnpackedBytes: 10}},
		{name: "exactly at the entry limit", zip: zipOf(boot, file("a/b", "")), lim: Limits{MaxEntries: 3}},

		// Bootstrap rule.
		{name: "empty zip", zip: zipOf(), wantErr: ErrInvalid, wantMsg: `no file named "bootstrap"`, bootstrapOnly: true},
		{name: "no bootstrap", zip: zipOf(file("index.js", "x")), wantErr: ErrInvalid, wantMsg: `no file named "bootstrap"`, bootstrapOnly: true},
		{name: "bootstrap only in a subdirectory", zip: zipOf(exe("bin/bootstrap", "x")), wantErr: ErrInvalid, bootstrapOnly: true},
		{name: "bootstrap with other case", zip: zipOf(exe("Bootstrap", "x")), wantErr: ErrInvalid, bootstrapOnly: true},
		{name: "bootstrap is a directory", zip: zipOf(dir("bootstrap/")), wantErr: ErrInvalid, wantMsg: "is a directory; it must be a regular file", bootstrapOnly: true},
		{name: "bootstrap is an implied directory", zip: zipOf(exe("bootstrap/run", "x")), wantErr: ErrInvalid, wantMsg: "is a directory", bootstrapOnly: true},
		{name: "bootstrap is a symlink", zip: zipOf(exe("bin/run", "x"), symlink("bootstrap", "bin/run")), wantErr: ErrInvalid, wantMsg: "is a symlink; it must be a regular file", bootstrapOnly: true},

		// Corrupt archives.
		{name: "not a zip", zip: func(testing.TB) []byte { return []byte("this is not a zip file at all") }, wantErr: ErrInvalid, wantMsg: "not a readable zip archive"},
		{name: "empty input", zip: func(testing.TB) []byte { return nil }, wantErr: ErrInvalid},
		{name: "truncated to half", zip: func(t testing.TB) []byte { z := validZip(t); return z[:len(z)/2] }, wantErr: ErrInvalid},
		{name: "truncated by 10 bytes", zip: func(t testing.TB) []byte { z := validZip(t); return z[:len(z)-10] }, wantErr: ErrInvalid},
		{name: "truncated data with intact directory", zip: truncatedData, wantErr: ErrInvalid},
		{name: "corrupt compressed data", zip: corruptDeflate, wantErr: ErrInvalid},
		{name: "bad CRC", zip: rawZipOf(func(testing.TB) []raw {
			r := storedRaw("bootstrap", []byte("echo hi"))
			r.hdr.CRC32 ^= 0xdeadbeef
			return []raw{r}
		}), wantErr: ErrInvalid, wantMsg: "checksum mismatch"},
		{name: "zero CRC with content", zip: rawZipOf(func(testing.TB) []raw {
			r := storedRaw("bootstrap", []byte("echo hi"))
			r.hdr.CRC32 = 0
			return []raw{r}
		}), wantErr: ErrInvalid, wantMsg: "checksum mismatch"},
		{name: "unsupported compression method", zip: rawZipOf(func(testing.TB) []raw {
			r := storedRaw("bootstrap", []byte("echo hi"))
			r.hdr.Method = 12 // bzip2
			return []raw{r}
		}), wantErr: ErrInvalid, wantMsg: "unsupported compression method 12"},
		{name: "encrypted entry", zip: rawZipOf(func(testing.TB) []raw {
			r := storedRaw("bootstrap", []byte("echo hi"))
			r.hdr.Flags |= 0x1
			return []raw{r}
		}), wantErr: ErrInvalid, wantMsg: "encrypted"},
		{name: "directory entry with content", zip: func(t testing.TB) []byte {
			return handZip(handEntry{name: "bootstrap", data: []byte("x")}, handEntry{name: "d/", data: []byte("hidden")})
		}, wantErr: ErrInvalid, wantMsg: `directory entry "d/" has content`},
		{name: "Unix directory mode without trailing slash, with content", zip: func(t testing.TB) []byte {
			return handZip(handEntry{name: "bootstrap", data: []byte("x")}, handEntry{name: "d", data: []byte("hidden"), unixMode: 0o040755})
		}, wantErr: ErrInvalid, wantMsg: `directory entry "d" has content`},

		// Zip slip.
		{name: "slip ../x", zip: zipOf(boot, file("../x", "evil")), wantErr: ErrInvalid, wantMsg: `entry "../x" escapes the package`},
		{name: "slip /abs", zip: zipOf(boot, file("/etc/cron.d/x", "evil")), wantErr: ErrInvalid, wantMsg: "absolute path"},
		{name: "slip a/../../x", zip: zipOf(boot, file("a/../../x", "evil")), wantErr: ErrInvalid, wantMsg: "escapes the package"},
		{name: "dotdot inside the package", zip: zipOf(boot, file("a/../b", "x")), wantErr: ErrInvalid, wantMsg: "escapes the package"},
		{name: "slip ..\\x", zip: zipOf(boot, file(`..\x`, "evil")), wantErr: ErrInvalid, wantMsg: "backslash"},
		{name: "slip a\\..\\..\\x", zip: zipOf(boot, file(`a\..\..\x`, "evil")), wantErr: ErrInvalid, wantMsg: "backslash"},
		{name: "slip C:\\x", zip: zipOf(boot, file(`C:\Windows\x`, "evil")), wantErr: ErrInvalid, wantMsg: "backslash"},
		{name: "NUL in name", zip: zipOf(boot, file("a\x00b", "x")), wantErr: ErrInvalid, wantMsg: "control character"},
		{name: "newline in name", zip: zipOf(boot, file("a\nb", "x")), wantErr: ErrInvalid, wantMsg: "control character"},
		{name: "path element too long", zip: zipOf(boot, file(strings.Repeat("a", 256), "x")), wantErr: ErrInvalid, wantMsg: "longer than 255"},
		{name: "name too long", zip: zipOf(boot, file(strings.Repeat("a/", 2100)+"x", "x")), wantErr: ErrInvalid, wantMsg: "longer than 4096"},
		{name: "file named .", zip: zipOf(boot, file(".", "x")), wantErr: ErrInvalid, wantMsg: "without a name"},

		// Symlinks.
		{name: "symlink to absolute path", zip: zipOf(boot, symlink("passwd", "/etc/passwd")), wantErr: ErrInvalid, wantMsg: `symlink "passwd" points to absolute path "/etc/passwd"`},
		{name: "symlink escaping from root", zip: zipOf(boot, symlink("up", "../x")), wantErr: ErrInvalid, wantMsg: `symlink "up" points outside the package`},
		{name: "symlink escaping from a subdirectory", zip: zipOf(boot, symlink("a/b/up", "../../../etc")), wantErr: ErrInvalid, wantMsg: "points outside the package"},
		{name: "symlink with dotdot after a name", zip: zipOf(boot, symlink("a/l", "x/../y")), wantErr: ErrInvalid, wantMsg: "only allowed at the start"},
		{name: "symlink chain climbing out", zip: zipOf(boot, symlink("d/root", ".."), symlink("d/esc", "root/../..")), wantErr: ErrInvalid, wantMsg: "only allowed at the start"},
		{name: "symlink with empty target", zip: zipOf(boot, symlink("l", "")), wantErr: ErrInvalid, wantMsg: "empty target"},
		{name: "symlink with backslash target", zip: zipOf(boot, symlink("l", `..\..\etc`)), wantErr: ErrInvalid, wantMsg: "backslash"},
		{name: "symlink target too long", zip: zipOf(boot, symlink("l", strings.Repeat("a/", 2100))), wantErr: ErrInvalid, wantMsg: "longer than 4095"},
		{name: "entry below a symlink", zip: zipOf(boot, dir("lib/"), symlink("l", "lib"), file("l/x", "x")), wantErr: ErrInvalid, wantMsg: `entry "l/x" is inside "l", which is a symlink`},
		{name: "entry below an absolute symlink", zip: zipOf(boot, symlink("etc", "/etc"), file("etc/passwd", "x")), wantErr: ErrInvalid},
		{name: "symlink with trailing slash", zip: zipOf(boot, symlink("l/", "")), wantErr: ErrInvalid},

		// Special files.
		{name: "character device", zip: zipOf(boot, special("null", fs.ModeDevice|fs.ModeCharDevice)), wantErr: ErrInvalid, wantMsg: `entry "null" is a character device`},
		{name: "block device", zip: zipOf(boot, special("sda", fs.ModeDevice)), wantErr: ErrInvalid, wantMsg: "block device"},
		{name: "fifo", zip: zipOf(boot, special("pipe", fs.ModeNamedPipe)), wantErr: ErrInvalid, wantMsg: "named pipe"},
		{name: "socket", zip: zipOf(boot, special("sock", fs.ModeSocket)), wantErr: ErrInvalid, wantMsg: "socket"},

		// Duplicates and conflicts.
		{name: "duplicate file", zip: zipOf(boot, file("a", "1"), file("a", "2")), wantErr: ErrInvalid, wantMsg: `duplicate entry "a"`},
		{name: "duplicate bootstrap", zip: zipOf(boot, exe("bootstrap", "evil")), wantErr: ErrInvalid, wantMsg: `duplicate entry "bootstrap"`},
		{name: "duplicate after cleaning", zip: zipOf(boot, file("a/b", "1"), file("a//./b", "2")), wantErr: ErrInvalid, wantMsg: "duplicate entry"},
		{name: "duplicate directory", zip: zipOf(boot, dir("d/"), dir("d/")), wantErr: ErrInvalid, wantMsg: "duplicate entry"},
		{name: "file and directory of one name", zip: zipOf(boot, file("a", "1"), dir("a/")), wantErr: ErrInvalid},
		{name: "file used as a directory", zip: zipOf(boot, file("a", "1"), file("a/b", "2")), wantErr: ErrInvalid, wantMsg: `which is a file, not a directory`},
		{name: "directory replaced by a file", zip: zipOf(boot, file("a/b", "2"), file("a", "1")), wantErr: ErrInvalid, wantMsg: "other entries are stored inside it"},
		{name: "symlink over an implied directory", zip: zipOf(boot, file("a/b", "2"), symlink("a", "/etc")), wantErr: ErrInvalid},

		// Limits.
		{name: "zip over the size limit", zip: validZip, lim: Limits{MaxZipBytes: 100}, wantErr: ErrTooLarge, wantMsg: "the limit is 100 bytes"},
		{name: "zip bomb", zip: rawZipOf(func(t testing.TB) []raw {
			return []raw{storedRaw("bootstrap", []byte("x")), deflatedZeros(t, "bomb", 4<<20)}
		}), lim: Limits{MaxUnpackedBytes: 1 << 20}, wantErr: ErrTooLarge, wantMsg: "over the limit of 1048576 bytes"},
		{name: "many files over the unpacked limit", zip: zipOf(exe("bootstrap", "12345"), file("a", "67890"), file("b", "1")), lim: Limits{MaxUnpackedBytes: 10}, wantErr: ErrTooLarge},
		{name: "symlink target over the unpacked limit", zip: zipOf(exe("bootstrap", "12345"), symlink("l", "bootstrap")), lim: Limits{MaxUnpackedBytes: 8}, wantErr: ErrTooLarge},
		{name: "overlapping entries (one body, many names)", zip: overlappingBomb, lim: Limits{MaxUnpackedBytes: 3 << 20}, wantErr: ErrTooLarge},
		{name: "too many entries", zip: manyEntries(11), lim: Limits{MaxEntries: 10}, wantErr: ErrTooLarge, wantMsg: "11 entries; the limit is 10"},
		{name: "too many implied directories", zip: zipOf(boot, file("a/b/c/d/e/f", "x")), lim: Limits{MaxEntries: 4}, wantErr: ErrTooLarge, wantMsg: "more than 4 files and directories"},

		// Headers that lie about sizes.
		{name: "header claims 1 TiB, data is small", zip: rawZipOf(func(t testing.TB) []raw {
			r := deflatedRaw(t, "bootstrap", []byte("echo hi"))
			r.hdr.UncompressedSize64 = 1 << 40
			return []raw{r}
		}), wantErr: ErrInvalid, wantMsg: "truncated"},
		{name: "header claims 1 byte, data inflates to 4 MiB", zip: rawZipOf(func(t testing.TB) []raw {
			r := deflatedZeros(t, "bootstrap", 4<<20)
			r.hdr.UncompressedSize64 = 1
			return []raw{r}
		}), wantErr: ErrInvalid, wantMsg: "does not match its declared size"},
		{name: "header claims 1 TiB for a real bomb", zip: rawZipOf(func(t testing.TB) []raw {
			r := deflatedZeros(t, "bootstrap", 4<<20)
			r.hdr.UncompressedSize64 = 1 << 40
			return []raw{r}
		}), lim: Limits{MaxUnpackedBytes: 1 << 20}, wantErr: ErrTooLarge},
		{name: "compressed size past the end of the zip", zip: rawZipOf(func(t testing.TB) []raw {
			r := deflatedRaw(t, "bootstrap", []byte("echo hi"))
			r.hdr.CompressedSize64 = 1 << 40
			return []raw{r}
		}), wantErr: ErrInvalid, wantMsg: "past the end of the zip"},
		{name: "stored entry shorter than declared", zip: rawZipOf(func(testing.TB) []raw {
			r := storedRaw("bootstrap", []byte("echo hi"))
			r.hdr.UncompressedSize64 = 100
			return []raw{r}
		}), wantErr: ErrInvalid},
	}
}

// truncatedData cuts the body of the last entry short while keeping a valid
// central directory that still points at it.
func truncatedData(t testing.TB) []byte {
	body := bytes.Repeat([]byte("0123456789abcdef"), 64)
	r := storedRaw("bootstrap", body)
	r.data = body[:len(body)/2] // header still says the full length
	r.hdr.CompressedSize64 = uint64(len(r.data))
	return makeRawZip(t, r)
}

// corruptDeflate flips bytes in the middle of a deflated body.
func corruptDeflate(t testing.TB) []byte {
	body := []byte(strings.Repeat("the quick brown fox jumps over the lazy dog ", 500))
	r := deflatedRaw(t, "bootstrap", body)
	for i := len(r.data) / 3; i < len(r.data)/3+8; i++ {
		r.data[i] ^= 0xff
	}
	return makeRawZip(t, r)
}

// overlappingBomb points many central directory entries at one deflated
// body, so the zip stays small while each entry inflates to 1 MiB.
func overlappingBomb(t testing.TB) []byte {
	z := deflatedZeros(t, "bootstrap", 1<<20)
	es := []handEntry{{name: "bootstrap", method: zip.Deflate, data: z.data, usize: 1 << 20, crc: z.hdr.CRC32, hasCRC: true}}
	for i := 1; i < 10; i++ {
		es = append(es, handEntry{name: fmt.Sprintf("f%d", i), method: zip.Deflate, usize: 1 << 20, crc: es[0].crc, hasCRC: true, sameAs: 1})
	}
	return handZip(es...)
}

// handEntry is an entry for handZip, which writes the zip format by hand so
// that tests can build what zip.Writer refuses to.
type handEntry struct {
	name     string
	method   uint16
	data     []byte // stored bytes
	usize    uint32 // uncompressed size; len(data) when zero
	crc      uint32 // CRC-32 of the uncompressed data; computed from data unless hasCRC
	hasCRC   bool
	unixMode uint32 // Unix mode in the external attributes (creator Unix) when non-zero
	sameAs   int    // when > 0, reuse the local header and data of entry sameAs-1
}

func handZip(entries ...handEntry) []byte {
	var out, cd bytes.Buffer
	offsets := make([]int, len(entries))
	for i, e := range entries {
		if e.usize == 0 {
			e.usize = uint32(len(e.data))
		}
		if !e.hasCRC {
			e.crc = crc32.ChecksumIEEE(e.data)
		}
		csize := uint32(len(e.data))
		if e.sameAs > 0 {
			offsets[i] = offsets[e.sameAs-1]
			csize = uint32(len(entries[e.sameAs-1].data))
		} else {
			offsets[i] = out.Len()
			b := le32(nil, 0x04034b50)
			b = le16(b, 20)
			b = le16(b, 0)
			b = le16(b, e.method)
			b = le32(b, 0) // time, date
			b = le32(b, e.crc)
			b = le32(b, csize)
			b = le32(b, e.usize)
			b = le16(b, uint16(len(e.name)))
			b = le16(b, 0)
			out.Write(b)
			out.WriteString(e.name)
			out.Write(e.data)
		}
		made := uint16(20) // MS-DOS
		attrs := uint32(0)
		if e.unixMode != 0 {
			made = 3<<8 | 20
			attrs = e.unixMode << 16
		}
		b := le32(nil, 0x02014b50)
		b = le16(b, made)
		b = le16(b, 20)
		b = le16(b, 0)
		b = le16(b, e.method)
		b = le32(b, 0) // time, date
		b = le32(b, e.crc)
		b = le32(b, csize)
		b = le32(b, e.usize)
		b = le16(b, uint16(len(e.name)))
		b = le32(b, 0) // extra and comment lengths
		b = le32(b, 0) // disk number, internal attributes
		b = le32(b, attrs)
		b = le32(b, uint32(offsets[i]))
		cd.Write(b)
		cd.WriteString(e.name)
	}
	cdOffset := out.Len()
	out.Write(cd.Bytes())
	b := le32(nil, 0x06054b50)
	b = le32(b, 0) // disk numbers
	b = le16(b, uint16(len(entries)))
	b = le16(b, uint16(len(entries)))
	b = le32(b, uint32(cd.Len()))
	b = le32(b, uint32(cdOffset))
	b = le16(b, 0)
	out.Write(b)
	return out.Bytes()
}

func le16(b []byte, v uint16) []byte { return append(b, byte(v), byte(v>>8)) }
func le32(b []byte, v uint32) []byte {
	return append(b, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
}

func manyEntries(n int) func(testing.TB) []byte {
	return func(t testing.TB) []byte {
		es := []ent{boot}
		for i := 1; i < n; i++ {
			es = append(es, file(fmt.Sprintf("f%03d", i), ""))
		}
		return makeZip(t, es...)
	}
}

func checkErr(t *testing.T, err, wantErr error, wantMsg string) {
	t.Helper()
	switch {
	case wantErr == nil && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case wantErr != nil && !errors.Is(err, wantErr):
		t.Fatalf("error = %v, want %v", err, wantErr)
	case wantErr != nil && wantMsg != "" && !strings.Contains(err.Error(), wantMsg):
		t.Fatalf("error = %q, want it to contain %q", err, wantMsg)
	}
}

func TestInspect(t *testing.T) {
	for _, tc := range packageCases() {
		t.Run(tc.name, func(t *testing.T) {
			z := tc.zip(t)
			info, err := Inspect(z, tc.lim, true)
			checkErr(t, err, tc.wantErr, tc.wantMsg)
			if err != nil {
				if errors.Is(err, ErrInvalid) == errors.Is(err, ErrTooLarge) {
					t.Errorf("error %v must wrap exactly one of ErrInvalid and ErrTooLarge", err)
				}
				return
			}
			sum := sha256.Sum256(z)
			if info.SHA256Hex != hex.EncodeToString(sum[:]) || info.SHA256Base64 != base64.StdEncoding.EncodeToString(sum[:]) {
				t.Errorf("digests = %s / %s", info.SHA256Hex, info.SHA256Base64)
			}
			if info.Size != int64(len(z)) {
				t.Errorf("Size = %d, want %d", info.Size, len(z))
			}
		})
	}
}

func TestInspectWithoutBootstrap(t *testing.T) {
	for _, tc := range packageCases() {
		t.Run(tc.name, func(t *testing.T) {
			wantErr := tc.wantErr
			if tc.bootstrapOnly {
				wantErr = nil
			}
			_, err := Inspect(tc.zip(t), tc.lim, false)
			checkErr(t, err, wantErr, "")
		})
	}
}

// TestUnpackCases unpacks every case: refused ones must leave nothing
// behind, accepted ones must agree with Inspect.
func TestUnpackCases(t *testing.T) {
	for _, tc := range packageCases() {
		t.Run(tc.name, func(t *testing.T) {
			z := tc.zip(t)
			wantErr := tc.wantErr
			if tc.bootstrapOnly {
				wantErr = nil
			}
			parent, dst := newDst(t)
			info, err := Unpack(z, dst, tc.lim)
			checkErr(t, err, wantErr, tc.wantMsg)
			if err != nil {
				if names := listDir(t, parent); len(names) != 0 {
					t.Fatalf("failed Unpack left %v behind", names)
				}
				return
			}
			if names := listDir(t, parent); len(names) != 1 || names[0] != "pkg" {
				t.Fatalf("parent holds %v, want [pkg]", names)
			}
			inspected, err := Inspect(z, tc.lim, false)
			if err != nil {
				t.Fatalf("Inspect: %v", err)
			}
			if info != inspected {
				t.Errorf("Unpack info %+v != Inspect info %+v", info, inspected)
			}
			checkTree(t, dst)
		})
	}
}

// checkTree checks the invariants of an unpacked package: read-only modes
// without special bits, only files, directories and symlinks, and every
// symlink resolving inside dst.
func checkTree(t testing.TB, dst string) {
	t.Helper()
	root, err := os.OpenRoot(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	var size int64
	err = filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dst, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		m := fi.Mode()
		switch {
		case m.IsDir():
			if m != fs.ModeDir|0o555 {
				t.Errorf("%s: mode %v, want dr-xr-xr-x", rel, m)
			}
		case m.IsRegular():
			if m != 0o444 && m != 0o555 {
				t.Errorf("%s: mode %v, want 0444 or 0555", rel, m)
			}
			if rel == "bootstrap" && m != 0o555 {
				t.Errorf("bootstrap: mode %v, want 0555", m)
			}
			size += fi.Size()
		case m&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			size += int64(len(target))
			if _, err := root.Stat(rel); err != nil && strings.Contains(err.Error(), "escapes") {
				t.Errorf("symlink %s -> %s escapes the package: %v", rel, target, err)
			}
		default:
			t.Errorf("%s: unexpected mode %v", rel, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestUnpackResult(t *testing.T) {
	z := makeZip(t,
		ent{name: "bootstrap", body: "#!/bin/sh\n"}, // no Unix mode at all
		ent{name: "bin/tool", body: "tool", mode: 0o755 | fs.ModeSetuid | fs.ModeSetgid},
		ent{name: "lib/data", body: "data", mode: 0o666 | fs.ModeSticky},
		ent{name: "lib/bootstrap", body: "not the entry point", mode: 0o644},
		dir("empty/"),
		ent{name: "sticky/", mode: fs.ModeDir | fs.ModeSticky | 0o777},
		symlink("lib/tool", "../bin/tool"),
		symlink("self", "."),
	)
	_, dst := newDst(t)
	info, err := Unpack(z, dst, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]fs.FileMode{
		".":             fs.ModeDir | 0o555,
		"bootstrap":     0o555,
		"bin":           fs.ModeDir | 0o555,
		"bin/tool":      0o555,
		"lib":           fs.ModeDir | 0o555,
		"lib/data":      0o444,
		"lib/bootstrap": 0o444,
		"lib/tool":      fs.ModeSymlink | 0o777,
		"empty":         fs.ModeDir | 0o555,
		"sticky":        fs.ModeDir | 0o555,
		"self":          fs.ModeSymlink | 0o777,
	}
	got := map[string]fs.FileMode{}
	err = filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dst, p)
		got[rel] = fi.Mode()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, m := range want {
		if got[name] != m {
			t.Errorf("%s: mode %v, want %v", name, got[name], m)
		}
	}
	if len(got) != len(want) {
		t.Errorf("tree has %d entries, want %d: %v", len(got), len(want), got)
	}
	for name, body := range map[string]string{"bootstrap": "#!/bin/sh\n", "bin/tool": "tool", "lib/tool": "tool", "self/lib/data": "data"} {
		b, err := os.ReadFile(filepath.Join(dst, name))
		if err != nil || string(b) != body {
			t.Errorf("%s = %q, %v; want %q", name, b, err, body)
		}
	}
	if target, _ := os.Readlink(filepath.Join(dst, "lib/tool")); target != "../bin/tool" {
		t.Errorf("lib/tool -> %q", target)
	}
	if info.Files != 6 {
		t.Errorf("Files = %d, want 6", info.Files)
	}
	if want := int64(len("#!/bin/sh\n") + 4 + 4 + len("not the entry point") + len("../bin/tool") + 1); info.UnpackedSize != want {
		t.Errorf("UnpackedSize = %d, want %d", info.UnpackedSize, want)
	}
}

func TestUnpackDestination(t *testing.T) {
	z := validZip(t)
	t.Run("exists", func(t *testing.T) {
		parent, dst := newDst(t)
		if err := os.Mkdir(dst, 0o755); err != nil {
			t.Fatal(err)
		}
		_, err := Unpack(z, dst, Limits{})
		if !errors.Is(err, fs.ErrExist) {
			t.Fatalf("error = %v, want fs.ErrExist", err)
		}
		if names := listDir(t, parent); len(names) != 1 {
			t.Fatalf("parent holds %v", names)
		}
	})
	t.Run("missing parent", func(t *testing.T) {
		_, dst := newDst(t)
		_, err := Unpack(z, filepath.Join(dst, "sub"), Limits{})
		if err == nil || errors.Is(err, ErrInvalid) {
			t.Fatalf("error = %v, want a platform error", err)
		}
		if strings.Contains(err.Error(), dst) {
			t.Errorf("error %q contains a host path", err)
		}
	})
}

// countingSink counts the bytes written to the files of the wrapped sink.
type countingSink struct {
	sink
	written *int64
}

func (s countingSink) create(name string, perm fs.FileMode) (io.WriteCloser, error) {
	w, err := s.sink.create(name, perm)
	if err != nil {
		return nil, err
	}
	return countingWriter{w, s.written}, nil
}

type countingWriter struct {
	io.WriteCloser
	n *int64
}

func (w countingWriter) Write(p []byte) (int, error) {
	n, err := w.WriteCloser.Write(p)
	*w.n += int64(n)
	return n, err
}

// TestUnpackBombWritesAtMostLimit checks that a zip bomb is stopped before
// more than the limit reaches the disk.
func TestUnpackBombWritesAtMostLimit(t *testing.T) {
	const limit = 1 << 20
	tests := []struct {
		name string
		zip  []byte
	}{
		{"one entry", makeRawZip(t, storedRaw("bootstrap", []byte("x")), deflatedZeros(t, "bomb", 4<<20))},
		{"entry ending one byte over", makeRawZip(t, deflatedZeros(t, "bomb", limit+1))},
		{"many entries", makeRawZip(t,
			deflatedZeros(t, "a", limit/2),
			deflatedZeros(t, "b", limit/2),
			deflatedZeros(t, "c", limit/2))},
		{"overlapping entries", overlappingBomb(t)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			parent, dst := newDst(t)
			var written int64
			wrap := func(s sink) sink { return countingSink{s, &written} }
			_, err := unpack(tc.zip, sha256.Sum256(tc.zip), dst, Limits{MaxUnpackedBytes: limit}, wrap)
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error = %v, want ErrTooLarge", err)
			}
			if written > limit {
				t.Errorf("wrote %d bytes, limit %d", written, limit)
			}
			if names := listDir(t, parent); len(names) != 0 {
				t.Errorf("left %v behind", names)
			}
		})
	}
}

// TestErrorsHaveNoHostPaths makes sure Unpack's messages name entries, not
// the directories it writes to.
func TestErrorsHaveNoHostPaths(t *testing.T) {
	for _, tc := range packageCases() {
		if tc.wantErr == nil {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			parent, dst := newDst(t)
			_, err := Unpack(tc.zip(t), dst, tc.lim)
			if err != nil && (strings.Contains(err.Error(), parent) || strings.Contains(err.Error(), os.TempDir())) {
				t.Errorf("error %q contains a host path", err)
			}
		})
	}
}

func TestCRCCheckedOnStoredEntry(t *testing.T) {
	// A correct CRC computed by hand must pass: guards against the
	// zero-CRC check rejecting good data.
	body := []byte("echo hi")
	r := storedRaw("bootstrap", body)
	if r.hdr.CRC32 != crc32.ChecksumIEEE(body) {
		t.Fatal("bad test helper")
	}
	if _, err := Inspect(makeRawZip(t, r), Limits{}, true); err != nil {
		t.Fatal(err)
	}
}

// failingSink fails every write, like a full disk.
type failingSink struct{ sink }

func (s failingSink) create(name string, perm fs.FileMode) (io.WriteCloser, error) {
	w, err := s.sink.create(name, perm)
	if err != nil {
		return nil, err
	}
	return failingWriter{w}, nil
}

type failingWriter struct{ io.WriteCloser }

func (failingWriter) Write([]byte) (int, error) {
	return 0, stripPath(&fs.PathError{Op: "write", Path: "/host/secret/path", Err: syscall.ENOSPC})
}

func TestUnpackWriteFailure(t *testing.T) {
	z := validZip(t)
	parent, dst := newDst(t)
	_, err := unpack(z, sha256.Sum256(z), dst, Limits{}, func(s sink) sink { return failingSink{s} })
	if err == nil || errors.Is(err, ErrInvalid) || errors.Is(err, ErrTooLarge) {
		t.Fatalf("error = %v, want a platform error", err)
	}
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), `"bootstrap"`) || strings.Contains(err.Error(), "/host") {
		t.Errorf("error = %q, want ENOSPC naming the entry and no host path", err)
	}
	if names := listDir(t, parent); len(names) != 0 {
		t.Errorf("left %v behind", names)
	}
}
