package codepkg

import (
	"errors"
	"testing"
)

// fuzzLimits keep each fuzz input cheap.
var fuzzLimits = Limits{MaxZipBytes: 1 << 20, MaxUnpackedBytes: 4 << 20, MaxEntries: 200}

func addSeeds(f *testing.F) {
	for _, tc := range packageCases() {
		z := tc.zip(f)
		if len(z) <= int(fuzzLimits.MaxZipBytes) {
			f.Add(z)
		}
	}
}

// refused reports whether err is one of the two errors a refused package
// may give.
func refused(err error) bool {
	return errors.Is(err, ErrInvalid) || errors.Is(err, ErrTooLarge)
}

func FuzzInspect(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, z []byte) {
		for _, boot := range []bool{false, true} {
			info, err := Inspect(z, fuzzLimits, boot)
			if err != nil {
				if !refused(err) {
					t.Fatalf("Inspect error %v wraps neither ErrInvalid nor ErrTooLarge", err)
				}
				continue
			}
			if info.Size != int64(len(z)) || info.SHA256Hex != hashOf(z) || info.UnpackedSize > fuzzLimits.MaxUnpackedBytes {
				t.Fatalf("bad info %+v", info)
			}
		}
	})
}

func FuzzUnpack(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, z []byte) {
		parent, dst := newDst(t)
		info, err := Unpack(z, dst, fuzzLimits)
		_, inspectErr := Inspect(z, fuzzLimits, false)
		if (err == nil) != (inspectErr == nil) {
			t.Fatalf("Unpack: %v; Inspect: %v", err, inspectErr)
		}
		if err != nil {
			if !refused(err) {
				t.Fatalf("Unpack error %v wraps neither ErrInvalid nor ErrTooLarge", err)
			}
			if names := listDir(t, parent); len(names) != 0 {
				t.Fatalf("failed Unpack left %v behind", names)
			}
			return
		}
		if names := listDir(t, parent); len(names) != 1 || names[0] != "pkg" {
			t.Fatalf("Unpack wrote %v next to the package", names)
		}
		if info.UnpackedSize > fuzzLimits.MaxUnpackedBytes {
			t.Fatalf("unpacked %d bytes", info.UnpackedSize)
		}
		checkTree(t, dst)
	})
}
