package store

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestStoreReopenKeepsData writes to every bucket and stream, closes the
// store, opens it again on the same directory and reads everything back.
func TestStoreReopenKeepsData(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()

	s := openStore(t, ctx, dir)
	if _, err := s.Functions.Put(ctx, "fn.hello", []byte(`{"name":"hello"}`)); err != nil {
		t.Fatalf("put function record: %v", err)
	}
	code := []byte("PK\x05\x06 not really a zip, the store does not care")
	if _, err := s.Code.PutBytes(ctx, "0123abcd", code); err != nil {
		t.Fatalf("put code: %v", err)
	}
	published := map[string]string{
		SubjectAsync + ".hello":    `{"event":1}`,
		SubjectLogs + ".hello":     `{"message":"START RequestId: x"}`,
		SubjectDest + ".done":      `{"requestContext":{"condition":"Success"}}`,
		SubjectDest + ".other":     `{"requestContext":{"condition":"RetriesExhausted"}}`,
		SubjectAsync + ".goodbye":  `{"event":2}`,
		SubjectLogs + ".unrelated": `{"message":"REPORT RequestId: y"}`,
	}
	for subj, data := range published {
		if _, err := s.JS.Publish(ctx, subj, []byte(data)); err != nil {
			t.Fatalf("publish %s: %v", subj, err)
		}
	}
	s.Close()

	s = openStore(t, ctx, dir)
	defer s.Close()
	e, err := s.Functions.Get(ctx, "fn.hello")
	if err != nil || string(e.Value()) != `{"name":"hello"}` {
		t.Fatalf("function record after reopen: %v %q", err, valueOf(e))
	}
	got, err := s.Code.GetBytes(ctx, "0123abcd")
	if err != nil || string(got) != string(code) {
		t.Fatalf("code after reopen: %v %q", err, got)
	}
	streams := map[string]jetstream.Stream{StreamAsync: s.Async, StreamLogs: s.Logs, StreamDest: s.Dest}
	for subj, data := range published {
		var st jetstream.Stream
		switch {
		case strings.HasPrefix(subj, SubjectAsync+"."):
			st = s.Async
		case strings.HasPrefix(subj, SubjectLogs+"."):
			st = s.Logs
		default:
			st = s.Dest
		}
		m, err := st.GetLastMsgForSubject(ctx, subj)
		if err != nil {
			t.Fatalf("%s after reopen: %v", subj, err)
		}
		if string(m.Data) != data {
			t.Errorf("%s after reopen: %q, want %q", subj, m.Data, data)
		}
	}
	for name, st := range streams {
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatalf("stream %s info: %v", name, err)
		}
		if info.State.Msgs != 2 {
			t.Errorf("stream %s holds %d messages after reopen, want 2", name, info.State.Msgs)
		}
		if info.Config.Storage != jetstream.FileStorage {
			t.Errorf("stream %s is not file-backed", name)
		}
	}
	if info, _ := s.Async.Info(ctx); info.Config.Retention != jetstream.WorkQueuePolicy || info.Config.Discard != jetstream.DiscardNew {
		t.Errorf("async stream: retention %v discard %v, want work queue and discard new", info.Config.Retention, info.Config.Discard)
	}
	if _, err := os.Stat(filepath.Join(dir, "jetstream")); err != nil {
		t.Errorf("no JetStream directory under the data dir: %v", err)
	}
}

// TestStoreEmbeddedServerDoesNotListen checks that the embedded NATS server
// opens no port: only the moat process may reach its storage.
func TestStoreEmbeddedServerDoesNotListen(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The probe must see a listener when there is one.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	seen := len(ownListeningSockets(t))
	ln.Close()
	if seen == 0 {
		t.Fatal("the socket probe does not see this process's own listener")
	}

	before := ownListeningSockets(t)
	s := openStore(t, ctx, t.TempDir())
	defer s.Close()
	if s.srv == nil {
		t.Fatal("no embedded server")
	}
	if a := s.srv.Addr(); a != nil {
		t.Errorf("embedded server listens for clients on %v", a)
	}
	if a := s.srv.ClusterAddr(); a != nil {
		t.Errorf("embedded server listens for routes on %v", a)
	}
	if a := s.srv.MonitorAddr(); a != nil {
		t.Errorf("embedded server serves monitoring on %v", a)
	}
	after := ownListeningSockets(t)
	for inode, addr := range after {
		if _, ok := before[inode]; !ok {
			t.Errorf("a TCP socket of this process listens on %s since the store opened", addr)
		}
	}
	// The store works all the same, over its in-process connection.
	if _, err := s.Functions.Put(ctx, "fn.probe", []byte("x")); err != nil {
		t.Fatalf("put over the in-process connection: %v", err)
	}
}

func TestStoreOpenNeedsDataDirOrURL(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := Open(ctx, Options{})
	if err == nil {
		s.Close()
		t.Fatal("Open without a data dir or URL succeeded")
	}
	if !strings.Contains(err.Error(), "data dir is required") {
		t.Fatalf("error does not say what is missing: %v", err)
	}
}

func openStore(t *testing.T, ctx context.Context, dir string) *Store {
	t.Helper()
	s, err := Open(ctx, Options{DataDir: dir})
	if err != nil {
		t.Fatalf("open store on %s: %v", dir, err)
	}
	return s
}

func valueOf(e jetstream.KeyValueEntry) []byte {
	if e == nil {
		return nil
	}
	return e.Value()
}

// ownListeningSockets returns the TCP sockets in LISTEN state that this
// process holds open, by inode, with their local address as the kernel
// prints it.
func ownListeningSockets(t *testing.T) map[string]string {
	t.Helper()
	listening := map[string]string{}
	for _, name := range []string{"/proc/self/net/tcp", "/proc/self/net/tcp6"} {
		f, err := os.Open(name)
		if errors.Is(err, os.ErrNotExist) {
			continue // no IPv6 on this host
		}
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			// sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...
			fields := strings.Fields(sc.Text())
			if len(fields) >= 10 && fields[3] == "0A" {
				listening[fields[9]] = fields[1]
			}
		}
		f.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	own := map[string]string{}
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err != nil {
			continue // closed since the directory was read
		}
		inode, ok := strings.CutPrefix(link, "socket:[")
		if !ok {
			continue
		}
		inode = strings.TrimSuffix(inode, "]")
		if addr, ok := listening[inode]; ok {
			own[inode] = addr
		}
	}
	return own
}

// TestStoreOpensCompressedCodeBucket opens a data directory whose code
// bucket was created S2-compressed, as moat created it before: Open must
// turn compression off without losing or corrupting the packages written
// compressed.
func TestStoreOpensCompressedCodeBucket(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()

	s := openStore(t, ctx, dir)
	if _, err := s.JS.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket: BucketCode, Storage: jetstream.FileStorage, Replicas: 1, Compression: true,
	}); err != nil {
		t.Fatalf("make the code bucket compressed: %v", err)
	}
	s.Close()

	// The embedded server loads the bucket as it is on disk, so this
	// session still writes compressed blocks. 9 MiB seal the first 8 MiB
	// block, which the server then compresses in the background.
	s = openStore(t, ctx, dir)
	big := bytes.Repeat([]byte("moat code package "), 9<<20/18)
	if _, err := s.Code.PutBytes(ctx, "big", big); err != nil {
		t.Fatalf("put code: %v", err)
	}
	blk := filepath.Join(dir, "jetstream", "jetstream", "$G", "streams", "OBJ_"+BucketCode, "msgs", "1.blk")
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for compressed := false; !compressed; {
		select {
		case <-deadline:
			t.Fatalf("%s was not compressed in 30s", blk)
		case <-tick.C:
		}
		if fi, err := os.Stat(blk); err == nil && fi.Size() < 1<<20 {
			compressed = true
		}
	}
	s.Close()

	s = openStore(t, ctx, dir)
	defer s.Close()
	st, err := s.Code.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.IsCompressed() {
		t.Error("the code bucket is still compressed after Open")
	}
	got, err := s.Code.GetBytes(ctx, "big")
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("code written compressed, read back: %d bytes, %v; want %d bytes", len(got), err, len(big))
	}
	more := bytes.Repeat([]byte("another package "), 1<<20/16)
	if _, err := s.Code.PutBytes(ctx, "more", more); err != nil {
		t.Fatalf("put code after reopening: %v", err)
	}
	if got, err := s.Code.GetBytes(ctx, "more"); err != nil || !bytes.Equal(got, more) {
		t.Fatalf("code written uncompressed, read back: %d bytes, %v", len(got), err)
	}
}
