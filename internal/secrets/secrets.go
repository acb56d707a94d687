// Package secrets owns moat's envelope encryption: the node master key on
// disk and the sealing of small secrets (function environment variables)
// under per-record data keys wrapped by that master key.
//
// It never logs, caches or returns plaintext except to the caller of Open,
// and never writes a key file that others than its owner can read.
package secrets

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// KeySize is the size of master and data keys: AES-256.
const KeySize = 32

// Sentinel errors returned by Open.
var (
	// ErrUnknownKey: the blob was sealed under a master key this keyring
	// does not hold (another node's key, or a rotated-out key).
	ErrUnknownKey = errors.New("sealed with an unknown master key")
	// ErrOpen: authentication failed. The blob was tampered with, or it is
	// opened with a different context (aad) than it was sealed with.
	ErrOpen = errors.New("cannot open sealed data: tampered or sealed for another context")
)

// Sealed is an envelope-encrypted blob: Data is sealed with a per-record
// data key, which is itself sealed with a master key.
type Sealed struct {
	KeyID      string `json:"KeyId"`      // which master key wrapped the data key
	WrappedKey []byte `json:"WrappedKey"` // AES-256-GCM(master, data key), nonce-prefixed
	Data       []byte `json:"Data"`       // AES-256-GCM(data key, plaintext), nonce-prefixed
}

// Domain separation for the two layers, so a wrapped key can never be
// presented as data or the other way round.
const (
	aadWrap = "moat/secrets/v1/data-key\x00"
	aadData = "moat/secrets/v1/data\x00"
)

// Keyring holds the master key new blobs are sealed with, and optionally
// earlier master keys that blobs may still be sealed with. It is safe for
// concurrent use and immutable after construction.
type Keyring struct {
	primary string // KeyID of the sealing key
	keys    map[string]cipher.AEAD
}

// KeyID names a master key without revealing it: the first 8 bytes of its
// SHA-256, in hex.
func KeyID(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:8])
}

// NewKeyring returns a keyring that seals with primary and opens blobs sealed
// with primary or any of previous. Every key must be KeySize bytes.
func NewKeyring(primary []byte, previous ...[]byte) (*Keyring, error) {
	k := &Keyring{keys: make(map[string]cipher.AEAD, 1+len(previous))}
	for i, key := range append([][]byte{primary}, previous...) {
		if len(key) != KeySize {
			return nil, fmt.Errorf("new keyring: master key %d is %d bytes, want %d", i, len(key), KeySize)
		}
		aead, err := newGCM(key)
		if err != nil {
			return nil, fmt.Errorf("new keyring: %w", err)
		}
		id := KeyID(key)
		if i == 0 {
			k.primary = id
		}
		if _, dup := k.keys[id]; !dup {
			k.keys[id] = aead
		}
	}
	return k, nil
}

// KeyID returns the ID of the key new blobs are sealed with.
func (k *Keyring) KeyID() string { return k.primary }

// Seal encrypts plaintext under a fresh random data key and wraps that key
// with the primary master key. aad binds the blob to its context (for
// example the function it belongs to): Open must be given the same aad.
func (k *Keyring) Seal(plaintext, aad []byte) (*Sealed, error) {
	dataKey := make([]byte, KeySize)
	if _, err := rand.Read(dataKey); err != nil {
		return nil, fmt.Errorf("seal: data key: %w", err)
	}
	defer clear(dataKey)
	dek, err := newGCM(dataKey)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	data, err := sealWith(dek, plaintext, bind(aadData, aad))
	if err != nil {
		return nil, fmt.Errorf("seal: data: %w", err)
	}
	wrapped, err := sealWith(k.keys[k.primary], dataKey, bind(aadWrap, aad))
	if err != nil {
		return nil, fmt.Errorf("seal: wrap data key: %w", err)
	}
	return &Sealed{KeyID: k.primary, WrappedKey: wrapped, Data: data}, nil
}

// Open authenticates and decrypts s, which must have been sealed with the
// same aad. It returns ErrUnknownKey when the keyring lacks the master key
// s names, and ErrOpen when s was tampered with or aad differs.
func (k *Keyring) Open(s *Sealed, aad []byte) ([]byte, error) {
	if s == nil {
		return nil, fmt.Errorf("open sealed data: %w", ErrOpen)
	}
	master, ok := k.keys[s.KeyID]
	if !ok {
		return nil, fmt.Errorf("open sealed data: key %q (this node has %q): %w", s.KeyID, k.primary, ErrUnknownKey)
	}
	dataKey, err := openWith(master, s.WrappedKey, bind(aadWrap, aad))
	if err != nil {
		return nil, fmt.Errorf("open sealed data: unwrap data key: %w", ErrOpen)
	}
	defer clear(dataKey)
	if len(dataKey) != KeySize {
		return nil, fmt.Errorf("open sealed data: data key is %d bytes: %w", len(dataKey), ErrOpen)
	}
	dek, err := newGCM(dataKey)
	if err != nil {
		return nil, fmt.Errorf("open sealed data: %w", err)
	}
	pt, err := openWith(dek, s.Data, bind(aadData, aad))
	if err != nil {
		return nil, fmt.Errorf("open sealed data: %w", ErrOpen)
	}
	return pt, nil
}

func bind(domain string, aad []byte) []byte {
	b := make([]byte, 0, len(domain)+len(aad))
	return append(append(b, domain...), aad...)
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// sealWith returns nonce || AEAD(plaintext).
func sealWith(aead cipher.AEAD, plaintext, aad []byte) ([]byte, error) {
	out := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(out); err != nil {
		return nil, err
	}
	return aead.Seal(out, out, plaintext, aad), nil
}

func openWith(aead cipher.AEAD, blob, aad []byte) ([]byte, error) {
	n := aead.NonceSize()
	if len(blob) < n+aead.Overhead() {
		return nil, errors.New("blob too short")
	}
	return aead.Open(nil, blob[:n], blob[n:], aad)
}

// LoadOrCreateMasterKey reads the master key at path, or creates a new random
// one there (mode 0600, hex-encoded) when the file does not exist. An
// existing file is never overwritten. The file must be a regular file that
// neither group nor others can read or write; it may hold the key as 64 hex
// digits (surrounding whitespace ignored) or as 32 raw bytes.
func LoadOrCreateMasterKey(path string) (*Keyring, error) {
	key, err := readKeyFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, err = createKeyFile(path)
	}
	if err != nil {
		return nil, err
	}
	defer clear(key)
	return NewKeyring(key)
}

// ReadMasterKeyFile reads an operator-supplied key file with the same format
// and permission rules as LoadOrCreateMasterKey, but never creates one.
func ReadMasterKeyFile(path string) ([]byte, error) { return readKeyFile(path) }

func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read master key: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read master key: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("read master key: %s is not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("read master key: %s has mode %#o: group and others must have no access (chmod 600)", path, perm)
	}
	const maxLen = 4 * KeySize // hex, with room for whitespace
	buf, err := io.ReadAll(io.LimitReader(f, maxLen+1))
	if err != nil {
		return nil, fmt.Errorf("read master key: %w", err)
	}
	defer clear(buf)
	if len(buf) > maxLen {
		return nil, fmt.Errorf("read master key: %s is too long for a %d-byte key", path, KeySize)
	}
	key, err := ParseMasterKey(buf)
	if err != nil {
		return nil, fmt.Errorf("read master key: %s: %w", path, err)
	}
	return key, nil
}

// ParseMasterKey accepts a key as 64 hex digits (surrounding whitespace
// ignored) or as 32 raw bytes, for keys an operator supplies through an
// environment variable or a file.
func ParseMasterKey(b []byte) ([]byte, error) {
	if t := bytes.TrimSpace(b); len(t) == 2*KeySize {
		key := make([]byte, KeySize)
		if _, err := hex.Decode(key, t); err == nil {
			return key, nil
		}
	}
	if len(b) == KeySize {
		return bytes.Clone(b), nil
	}
	return nil, fmt.Errorf("parse master key: want %d hex digits or %d raw bytes", 2*KeySize, KeySize)
}

// createKeyFile writes a new key to a private temporary file and links it
// into place, so the key appears complete or not at all and a file another
// process created meanwhile is kept.
func createKeyFile(path string) ([]byte, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create master key: %w", err)
	}
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("create master key: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".master-key-*")
	if err != nil {
		return nil, fmt.Errorf("create master key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("create master key: %w", err)
	}
	enc := make([]byte, hex.EncodedLen(KeySize)+1)
	hex.Encode(enc, key)
	enc[len(enc)-1] = '\n'
	_, err = tmp.Write(enc)
	clear(enc)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("create master key: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return readKeyFile(path) // another process won the race
		}
		return nil, fmt.Errorf("create master key: %w", err)
	}
	return key, nil
}
