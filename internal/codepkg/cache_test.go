package codepkg

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

func hashOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// fakeStore is an object store holding zips by the hash they are stored
// under (which tests may make wrong on purpose).
type fakeStore struct {
	objects map[string][]byte
	fetches atomic.Int32
}

func (s *fakeStore) fetch(_ context.Context, h string) ([]byte, error) {
	s.fetches.Add(1)
	b, ok := s.objects[h]
	if !ok {
		return nil, errNoObject
	}
	return b, nil
}

var errNoObject = errors.New("no such object")

func newCache(t *testing.T, fetch func(context.Context, string) ([]byte, error)) *Cache {
	t.Helper()
	root := filepath.Join(t.TempDir(), "code")
	t.Cleanup(func() {
		if err := removeTree(root); err != nil {
			t.Errorf("clean up: %v", err)
		}
	})
	return &Cache{Root: root, Fetch: fetch}
}

func TestCacheDir(t *testing.T) {
	z := validZip(t)
	h := hashOf(z)
	store := &fakeStore{objects: map[string][]byte{h: z}}
	c := newCache(t, store.fetch)

	dir, err := c.Dir(t.Context(), h)
	if err != nil {
		t.Fatal(err)
	}
	if dir != filepath.Join(c.Root, h) {
		t.Errorf("dir = %s, want Root/<hash>", dir)
	}
	if fi, err := os.Stat(filepath.Join(dir, "bootstrap")); err != nil || fi.Mode() != 0o555 {
		t.Fatalf("bootstrap: %v, %v", fi, err)
	}
	checkTree(t, dir)
	again, err := c.Dir(t.Context(), h)
	if err != nil || again != dir {
		t.Fatalf("second Dir = %s, %v", again, err)
	}
	if n := store.fetches.Load(); n != 1 {
		t.Errorf("fetched %d times, want 1", n)
	}
	if names := listDir(t, c.Root); len(names) != 1 {
		t.Errorf("cache root holds %v, want only the package", names)
	}
}

func TestCacheDirConcurrent(t *testing.T) {
	const callers = 8
	z := validZip(t)
	h := hashOf(z)
	release := make(chan struct{})
	var fetches atomic.Int32
	c := newCache(t, func(ctx context.Context, got string) ([]byte, error) {
		fetches.Add(1)
		<-release
		return z, nil
	})
	waiting := make(chan struct{}, callers)
	c.testHookWait = func() { waiting <- struct{}{} }

	var wg sync.WaitGroup
	dirs := make([]string, callers)
	errs := make([]error, callers)
	for i := range callers {
		wg.Go(func() { dirs[i], errs[i] = c.Dir(t.Context(), h) })
	}
	// One caller loads; the others must all be waiting on it before the
	// fetch is allowed to finish.
	for range callers - 1 {
		<-waiting
	}
	close(release)
	wg.Wait()

	for i := range callers {
		if errs[i] != nil || dirs[i] != filepath.Join(c.Root, h) {
			t.Errorf("caller %d: %q, %v", i, dirs[i], errs[i])
		}
	}
	if n := fetches.Load(); n != 1 {
		t.Errorf("fetched %d times, want 1", n)
	}
}

// TestCacheLeaderCancelled checks that a caller waiting on a load whose own
// caller gave up loads the package itself.
func TestCacheLeaderCancelled(t *testing.T) {
	z := validZip(t)
	h := hashOf(z)
	started := make(chan struct{}, 2)
	var fetches atomic.Int32
	c := newCache(t, func(ctx context.Context, _ string) ([]byte, error) {
		started <- struct{}{}
		if fetches.Add(1) == 1 {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return z, nil
	})
	waiting := make(chan struct{}, 1)
	c.testHookWait = func() { waiting <- struct{}{} }

	leaderCtx, cancel := context.WithCancel(t.Context())
	var leaderErr, followerErr error
	var followerDir string
	var wg sync.WaitGroup
	wg.Go(func() { _, leaderErr = c.Dir(leaderCtx, h) })
	<-started
	wg.Go(func() { followerDir, followerErr = c.Dir(t.Context(), h) })
	<-waiting
	cancel()
	wg.Wait()

	if !errors.Is(leaderErr, context.Canceled) {
		t.Errorf("leader error = %v, want context.Canceled", leaderErr)
	}
	if followerErr != nil || followerDir != filepath.Join(c.Root, h) {
		t.Errorf("follower: %q, %v", followerDir, followerErr)
	}
	if n := fetches.Load(); n != 2 {
		t.Errorf("fetched %d times, want 2", n)
	}
}

func TestCacheDirRefuses(t *testing.T) {
	good := validZip(t)
	other := makeZip(t, exe("bootstrap", "other"))
	bad := makeZip(t, boot, file("../escape", "x"))
	tests := []struct {
		name    string
		hash    string
		objects map[string][]byte
		wantErr error
		fetches int32
	}{
		{"hash mismatch", hashOf(good), map[string][]byte{hashOf(good): other}, ErrInvalid, 1},
		{"package refused by Unpack", hashOf(bad), map[string][]byte{hashOf(bad): bad}, ErrInvalid, 1},
		{"fetch error", hashOf(good), nil, errNoObject, 1},
		{"empty hash", "", nil, ErrInvalid, 0},
		{"uppercase hash", strings.ToUpper(hashOf(good)), nil, ErrInvalid, 0},
		{"short hash", hashOf(good)[:63], nil, ErrInvalid, 0},
		{"non-hex hash", strings.Repeat("g", 64), nil, ErrInvalid, 0},
		{"traversal", "../../../../../../etc/passwd", nil, ErrInvalid, 0},
		{"traversal of hash length", "../" + hashOf(good)[:61], nil, ErrInvalid, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := &fakeStore{objects: tc.objects}
			c := newCache(t, store.fetch)
			dir, err := c.Dir(t.Context(), tc.hash)
			if !errors.Is(err, tc.wantErr) || dir != "" {
				t.Fatalf("Dir = %q, %v; want error %v", dir, err, tc.wantErr)
			}
			if n := store.fetches.Load(); n != tc.fetches {
				t.Errorf("fetched %d times, want %d", n, tc.fetches)
			}
			if _, err := os.Stat(c.Root); err == nil {
				if names := listDir(t, c.Root); len(names) != 0 {
					t.Errorf("cache root holds %v after a refusal", names)
				}
			}
		})
	}
}

func TestCacheRemove(t *testing.T) {
	z := validZip(t)
	h := hashOf(z)
	store := &fakeStore{objects: map[string][]byte{h: z}}
	c := newCache(t, store.fetch)

	if err := c.Remove(h); err != nil {
		t.Fatalf("Remove of a missing package: %v", err)
	}
	dir, err := c.Dir(t.Context(), h)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Remove(h); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("package still there: %v", err)
	}
	if names := listDir(t, c.Root); len(names) != 0 {
		t.Errorf("cache root holds %v after Remove", names)
	}
	if err := c.Remove(h); err != nil {
		t.Fatalf("second Remove: %v", err)
	}
	if _, err := c.Dir(t.Context(), h); err != nil {
		t.Fatal(err)
	}
	if n := store.fetches.Load(); n != 2 {
		t.Errorf("fetched %d times, want 2 (once before and once after Remove)", n)
	}
	if err := c.Remove("../x"); !errors.Is(err, ErrInvalid) {
		t.Errorf("Remove(../x) = %v, want ErrInvalid", err)
	}
}

func TestCacheSweep(t *testing.T) {
	z := validZip(t)
	h := hashOf(z)
	store := &fakeStore{objects: map[string][]byte{h: z}}
	c := newCache(t, store.fetch)
	if err := c.Sweep(); err != nil {
		t.Fatalf("Sweep of a missing root: %v", err)
	}
	if _, err := c.Dir(t.Context(), h); err != nil {
		t.Fatal(err)
	}
	// Leftovers of a crash: a half-unpacked temp dir with a read-only
	// subdirectory, and a package renamed away by an unfinished Remove.
	tmp := filepath.Join(c.Root, "."+h+".tmp-123")
	if err := os.MkdirAll(filepath.Join(tmp, "lib"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(tmp, "lib"), 0o555); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(c.Root, "."+h+".rm-abc"), 0o555); err != nil {
		t.Fatal(err)
	}
	for _, keep := range []string{".keep", ".tmp-x", "other"} {
		if err := os.WriteFile(filepath.Join(c.Root, keep), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Sweep(); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(listDir(t, c.Root), " ")
	if want := ".keep .tmp-x " + h + " other"; got != want {
		t.Errorf("after Sweep root holds %q, want %q", got, want)
	}
}

// TestCacheFetchPanics checks that callers waiting on a load whose Fetch
// panics get an error instead of hanging or an empty directory.
func TestCacheFetchPanics(t *testing.T) {
	h := hashOf(validZip(t))
	started, release := make(chan struct{}), make(chan struct{})
	c := newCache(t, func(context.Context, string) ([]byte, error) {
		close(started)
		<-release
		panic("fetch blew up")
	})
	waiting := make(chan struct{}, 1)
	c.testHookWait = func() { waiting <- struct{}{} }

	var recovered any
	var followerDir string
	var followerErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		defer func() { recovered = recover() }()
		c.Dir(t.Context(), h)
	})
	<-started
	wg.Go(func() { followerDir, followerErr = c.Dir(t.Context(), h) })
	<-waiting
	close(release)
	wg.Wait()

	if recovered == nil {
		t.Error("the panic did not reach the loading caller")
	}
	if followerErr == nil || followerDir != "" {
		t.Errorf("follower got %q, %v; want an error", followerDir, followerErr)
	}
}
