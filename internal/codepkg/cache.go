package codepkg

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Cache keeps one unpacked, read-only copy of each code package on this node,
// at Root/<sha256hex>. A directory there is always complete: it appears by
// rename once fully unpacked and disappears by rename before it is deleted.
//
// The zero value needs Root and Fetch set. A Cache must not be copied after
// first use. It does not track which instances use a package: callers must
// not Remove a package that a running instance has mounted.
type Cache struct {
	Root string // created 0755 if missing
	// Fetch returns the zip bytes of a package (from the object store).
	// Dir checks them against the hash before unpacking.
	Fetch  func(ctx context.Context, sha256hex string) ([]byte, error)
	Limits Limits

	mu       sync.Mutex
	inflight map[string]*cacheCall // guarded by mu

	// testHookWait, when set, is called when a Dir call starts waiting for
	// another one that is loading the same package.
	testHookWait func()
}

// cacheCall is one load of a package that concurrent Dir calls share.
// dir and err are written before done is closed.
type cacheCall struct {
	done chan struct{}
	dir  string
	err  error
}

// Dir returns the directory holding the unpacked package with the given
// sha256 (64 lowercase hex digits), fetching and unpacking it first if this
// node does not have it. Concurrent calls for the same hash share one fetch
// and unpack; if that one is cancelled by its caller's ctx, the others retry.
//
// It returns an error wrapping ErrInvalid for a malformed hash, for fetched
// bytes whose sha256 differs from the hash, or for a package Unpack refuses;
// ErrTooLarge for a package over c.Limits; and otherwise the errors of Fetch
// and of the file system.
func (c *Cache) Dir(ctx context.Context, sha256hex string) (string, error) {
	if err := checkHash(sha256hex); err != nil {
		return "", err
	}
	if c.Root == "" {
		return "", errors.New("code cache: no Root directory")
	}
	dir := filepath.Join(c.Root, sha256hex)
	for {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		if ok, err := isDir(dir); err != nil {
			return "", err
		} else if ok {
			return dir, nil
		}

		c.mu.Lock()
		if call, ok := c.inflight[sha256hex]; ok {
			c.mu.Unlock()
			if c.testHookWait != nil {
				c.testHookWait()
			}
			select {
			case <-call.done:
			case <-ctx.Done():
				return "", ctx.Err()
			}
			if isContextErr(call.err) && ctx.Err() == nil {
				continue // the loading caller gave up; this one still wants it
			}
			return call.dir, call.err
		}
		call := &cacheCall{done: make(chan struct{})}
		if c.inflight == nil {
			c.inflight = make(map[string]*cacheCall)
		}
		c.inflight[sha256hex] = call
		c.mu.Unlock()

		c.load(ctx, sha256hex, dir, call)
		return call.dir, call.err
	}
}

// load fills call by fetching and unpacking one package, then releases the
// callers waiting on it, even if Fetch panics.
func (c *Cache) load(ctx context.Context, sha256hex, dir string, call *cacheCall) {
	defer func() {
		c.mu.Lock()
		delete(c.inflight, sha256hex)
		c.mu.Unlock()
		close(call.done)
	}()
	// Seen by the waiting callers only if Fetch panics.
	call.err = errors.New("code cache: loading the package was aborted")
	// A call that finished between our isDir and taking the lock has
	// already renamed the package into place.
	ok, err := isDir(dir)
	if err == nil && !ok {
		err = c.fetchAndUnpack(ctx, sha256hex, dir)
	}
	if err == nil {
		call.dir = dir
	}
	call.err = err
}

func (c *Cache) fetchAndUnpack(ctx context.Context, sha256hex, dir string) error {
	if c.Fetch == nil {
		return errors.New("code cache: no Fetch function")
	}
	data, err := c.Fetch(ctx, sha256hex)
	if err != nil {
		return fmt.Errorf("fetch code %s: %w", sha256hex, err)
	}
	digest := sha256.Sum256(data)
	if got := hex.EncodeToString(digest[:]); got != sha256hex {
		return fmt.Errorf("%w: code package %s: fetched bytes have sha256 %s", ErrInvalid, sha256hex, got)
	}
	if err := os.MkdirAll(c.Root, 0o755); err != nil {
		return fmt.Errorf("code cache: create root: %w", stripPath(err))
	}
	if _, err := unpack(data, digest, dir, c.Limits, nil); err != nil {
		return fmt.Errorf("code package %s: %w", sha256hex, err)
	}
	return nil
}

// Remove deletes the cached copy of a package, if there is one. The
// directory is first renamed out of the way, so Dir never sees it half
// deleted. It returns an error wrapping ErrInvalid for a malformed hash.
func (c *Cache) Remove(sha256hex string) error {
	if err := checkHash(sha256hex); err != nil {
		return err
	}
	var suffix [8]byte
	rand.Read(suffix[:])
	trash := filepath.Join(c.Root, "."+sha256hex+".rm-"+hex.EncodeToString(suffix[:]))
	// Same parent directory: renaming a read-only directory is allowed.
	if err := os.Rename(filepath.Join(c.Root, sha256hex), trash); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("remove code %s: %w", sha256hex, stripPath(err))
	}
	if err := removeTree(trash); err != nil {
		return fmt.Errorf("remove code %s: %w", sha256hex, err)
	}
	return nil
}

// Sweep deletes what an interrupted Dir or Remove left in Root: temporary
// unpack directories and renamed-away packages. Call it when the node
// starts, before any Dir call; complete packages are kept.
func (c *Cache) Sweep() error {
	des, err := os.ReadDir(c.Root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sweep code cache: %w", stripPath(err))
	}
	var errs []error
	for _, de := range des {
		name := de.Name()
		if !strings.HasPrefix(name, ".") || checkHash(name[1:min(len(name), 65)]) != nil {
			continue // not ours
		}
		rest := name[min(len(name), 65):]
		if !strings.HasPrefix(rest, ".tmp-") && !strings.HasPrefix(rest, ".rm-") {
			continue
		}
		if err := removeTree(filepath.Join(c.Root, name)); err != nil {
			errs = append(errs, fmt.Errorf("sweep code cache: %w", err))
		}
	}
	return errors.Join(errs...)
}

// checkHash accepts exactly 64 lowercase hex digits, so that a hash is safe
// to use as a path element.
func checkHash(s string) error {
	ok := len(s) == 2*sha256.Size
	for i := 0; ok && i < len(s); i++ {
		ok = '0' <= s[i] && s[i] <= '9' || 'a' <= s[i] && s[i] <= 'f'
	}
	if !ok {
		return fmt.Errorf("%w: code sha256 %.80q is not 64 lowercase hex digits", ErrInvalid, s)
	}
	return nil
}

// isDir reports whether p is a directory (not following symlinks). A
// missing p is (false, nil); anything else that is not a directory is an error.
func isDir(p string) (bool, error) {
	fi, err := os.Lstat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("code cache: %w", stripPath(err))
	case !fi.IsDir():
		return false, fmt.Errorf("code cache: entry for %s is a %v, not a directory", filepath.Base(p), fi.Mode().Type())
	}
	return true, nil
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
