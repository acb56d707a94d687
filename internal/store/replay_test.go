package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestReplay(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := openStore(t, ctx, t.TempDir())
	t.Cleanup(s.Close)
	publish := func(subject, data string) {
		t.Helper()
		if _, err := s.JS.Publish(ctx, subject, []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	read := func(ctx context.Context, rp Replay) ([]string, error) {
		var got []string
		err := rp.Run(ctx, s.JS, func(seq uint64, data []byte) error {
			got = append(got, fmt.Sprintf("%d:%s", seq, data))
			return nil
		})
		return got, err
	}
	subject := SubjectDest + ".q"

	// Nothing stored: returns at once.
	if got, err := read(ctx, Replay{Stream: StreamDest, Subject: subject}); err != nil || len(got) != 0 {
		t.Fatalf("empty: %v, %v", got, err)
	}
	publish(subject, "a")
	publish(SubjectDest+".other", "x")
	publish(subject, "b")
	mid := time.Now()
	time.Sleep(2 * time.Millisecond) // the stream's clock is the server's
	publish(subject, "c")

	got, err := read(ctx, Replay{Stream: StreamDest, Subject: subject})
	if err != nil || fmt.Sprint(got) != "[1:a 3:b 4:c]" {
		t.Fatalf("all: %v, %v", got, err)
	}
	got, err = read(ctx, Replay{Stream: StreamDest, Subject: subject, Since: mid})
	if err != nil || fmt.Sprint(got) != "[4:c]" {
		t.Fatalf("since: %v, %v", got, err)
	}
	got, err = read(ctx, Replay{Stream: StreamDest, Subject: SubjectDest + ".>"})
	if err != nil || len(got) != 4 {
		t.Fatalf("wildcard: %v, %v", got, err)
	}

	// fn's error ends the replay and comes back unchanged.
	stop := errors.New("stop")
	n := 0
	err = Replay{Stream: StreamDest, Subject: subject}.Run(ctx, s.JS, func(uint64, []byte) error { n++; return stop })
	if err != stop || n != 1 {
		t.Fatalf("fn error: %v after %d messages", err, n)
	}

	// Following: what is stored, then what comes, until ctx ends, which
	// Run returns.
	fctx, fcancel := context.WithCancel(ctx)
	seen := make(chan string, 8)
	done := make(chan error, 1)
	go func() {
		done <- Replay{Stream: StreamDest, Subject: subject, Follow: true}.Run(fctx, s.JS, func(_ uint64, data []byte) error {
			seen <- string(data)
			return nil
		})
	}()
	for _, want := range []string{"a", "b", "c"} {
		if got := <-seen; got != want {
			t.Fatalf("follow: got %q, want %q", got, want)
		}
	}
	publish(subject, "d")
	select {
	case got := <-seen:
		if got != "d" {
			t.Fatalf("follow: got %q, want d", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("follow: a new message was not delivered")
	}
	fcancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("follow ended with %v, want context.Canceled", err)
	}

	// The consumers are gone once their replays returned.
	info, err := s.Dest.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Consumers != 0 {
		t.Errorf("%d consumers left behind", info.State.Consumers)
	}

	// A stream that does not exist is an error that names it.
	if _, err := read(ctx, Replay{Stream: "MOAT_NONE", Subject: "x"}); err == nil {
		t.Error("replay of a missing stream succeeded")
	}
}
