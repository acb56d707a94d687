// Package credentials owns the node's access keys and the file that holds
// them. The file is in the AWS shared-credentials format, so the AWS CLI and
// SDKs read the same keys with --profile moat (or AWS_PROFILE=moat).
//
// It never overwrites an existing file, never uses one that group or others
// can access, and never puts a secret in an error.
package credentials

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Profile is the profile that holds the node's key.
const Profile = "moat"

// Key is an access key pair.
type Key struct {
	AccessKeyID, SecretAccessKey string
}

// Errors Ensure returns, wrapped, for conditions the operator must fix.
var (
	// ErrNoProfile: the file exists but has no usable [moat] profile.
	ErrNoProfile = errors.New("no usable profile")
	// ErrInsecureFile: group or others have access to the file.
	ErrInsecureFile = errors.New("credentials file is accessible by group or others")
)

// maxFileSize bounds what Ensure and Load read; a credentials file is a few
// hundred bytes.
const maxFileSize = 1 << 20

// Ensure makes sure path holds a [moat] profile and returns its key.
//
// If the file is missing, Ensure creates it (mode 0600, and any missing
// parent directories 0700) holding a newly generated key. It never
// overwrites an existing file: one without a usable [moat] profile is an
// error wrapping ErrNoProfile, and one that group or others can access is an
// error wrapping ErrInsecureFile. A malformed file is an error wrapping a
// *SyntaxError.
func Ensure(path string) (Key, error) {
	k, err := readProfile(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	return create(path)
}

// Load parses the shared-credentials file at path and returns all its
// profiles. It does not check the file's mode; Ensure does.
func Load(path string) (map[string]Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open credentials: %w", err)
	}
	defer f.Close()
	return parseFile(f, path)
}

func parseFile(f *os.File, path string) (map[string]Key, error) {
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read credentials %s: %w", path, err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("read credentials %s: larger than %d bytes", path, maxFileSize)
	}
	profiles, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("parse credentials %s: %w", path, err)
	}
	return profiles, nil
}

// readProfile reads the [moat] key from an existing file, checking the mode
// of the file it actually opened. A missing file is an error wrapping
// fs.ErrNotExist.
func readProfile(path string) (Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return Key{}, fmt.Errorf("open credentials: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Key{}, fmt.Errorf("stat credentials: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return Key{}, fmt.Errorf("credentials %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return Key{}, fmt.Errorf("%w: %s has mode %04o; its secret may have leaked, so moat refuses it: "+
			"run `chmod 600 %s` (and rotate the key if others could read it)", ErrInsecureFile, path, perm, path)
	}
	profiles, err := parseFile(f, path)
	if err != nil {
		return Key{}, err
	}
	k, ok := profiles[Profile]
	if !ok {
		names := make([]string, 0, len(profiles))
		for name := range profiles {
			names = append(names, "["+name+"]")
		}
		slices.Sort(names)
		held := "no profiles"
		if len(names) > 0 {
			held = "only " + strings.Join(names, ", ")
		}
		return Key{}, fmt.Errorf("%w: %s holds %s and no [%s]; moat never overwrites an existing file: "+
			"add a [%s] profile with aws_access_key_id and aws_secret_access_key, or move the file away to have one generated",
			ErrNoProfile, path, held, Profile, Profile)
	}
	var missing []string
	if k.AccessKeyID == "" {
		missing = append(missing, "aws_access_key_id")
	}
	if k.SecretAccessKey == "" {
		missing = append(missing, "aws_secret_access_key")
	}
	if len(missing) > 0 {
		return Key{}, fmt.Errorf("%w: the [%s] profile in %s has no %s", ErrNoProfile, Profile, path, strings.Join(missing, " or "))
	}
	return k, nil
}

// create writes a new key to path without ever replacing a file: the key is
// written to a private temporary file which is then hard-linked into place,
// so a crash leaves no half-written file and a concurrent Ensure that wins
// the race is the one whose key both use.
func create(path string) (Key, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Key{}, fmt.Errorf("create credentials directory: %w", err)
	}
	k, err := newKey(rand.Reader)
	if err != nil {
		return Key{}, err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return Key{}, fmt.Errorf("create credentials: %w", err)
	}
	defer os.Remove(tmp.Name())
	// CreateTemp makes the file 0600 already; say so where it matters.
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return Key{}, fmt.Errorf("create credentials: %w", err)
	}
	if _, err := tmp.Write(encode(k)); err != nil {
		tmp.Close()
		return Key{}, fmt.Errorf("write credentials: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return Key{}, fmt.Errorf("write credentials: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return Key{}, fmt.Errorf("write credentials: %w", err)
	}
	err = os.Link(tmp.Name(), path)
	if err != nil && !errors.Is(err, fs.ErrExist) {
		// The file system has no hard links: create the file exclusively.
		err = writeExclusive(path, encode(k))
	}
	if errors.Is(err, fs.ErrExist) {
		// Another process created it first: use its key, on the same terms.
		return readProfile(path)
	}
	if err != nil {
		return Key{}, fmt.Errorf("create credentials: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		// Make the new name durable; a failure here loses nothing that
		// matters more than the error would.
		_ = d.Sync()
		d.Close()
	}
	return k, nil
}

// writeExclusive creates path, which must not exist, holding data.
func writeExclusive(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}

// newKey draws a key from r: an access key id of "AKIA" and 16 base32
// characters (80 bits), and a secret of 40 base64 characters (240 bits), the
// shapes AWS uses.
func newKey(r io.Reader) (Key, error) {
	var id [10]byte
	var secret [30]byte
	if _, err := io.ReadFull(r, id[:]); err != nil {
		return Key{}, fmt.Errorf("generate access key: %w", err)
	}
	if _, err := io.ReadFull(r, secret[:]); err != nil {
		return Key{}, fmt.Errorf("generate access key: %w", err)
	}
	return Key{
		AccessKeyID:     "AKIA" + base32.StdEncoding.EncodeToString(id[:]),
		SecretAccessKey: base64.StdEncoding.EncodeToString(secret[:]),
	}, nil
}

// encode renders the file Ensure writes.
func encode(k Key) []byte {
	return []byte("# The access key of this moat node, in the AWS shared-credentials format.\n" +
		"# Use it with the AWS CLI and SDKs: --profile " + Profile + " (or AWS_PROFILE=" + Profile + ")\n" +
		"# with AWS_SHARED_CREDENTIALS_FILE pointing here. Keep this file private (mode 0600).\n" +
		"[" + Profile + "]\n" +
		keyAccessKeyID + " = " + k.AccessKeyID + "\n" +
		keySecretAccessKey + " = " + k.SecretAccessKey + "\n")
}
