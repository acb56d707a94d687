package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// The -urls mode: function URLs against the direct Invoke of the same
// warm function, and against a plain Go net/http handler on the same
// machine (what an HTTP server costs with no function behind it), taking
// turns round after round.

func runURLs(moatBin, zipPath string, rounds int, dur time.Duration) error {
	zip, err := readZip(zipPath)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "moat-bench-urls-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	s, err := start(moatBin, dir)
	if err != nil {
		return err
	}
	defer s.stop()
	if s.urlAddr == "" {
		return errors.New("moat did not report its function URL listener")
	}
	if err := s.create("echo", 1769, zip); err != nil {
		return err
	}
	ctx := context.Background()
	out, err := s.client.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("echo"), AuthType: types.FunctionUrlAuthTypeNone})
	if err != nil {
		return err
	}
	base := aws.ToString(out.FunctionUrl)
	// Plain net/http, answering what an echo would.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	plain := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	})}
	go plain.Serve(ln)
	defer plain.Close()
	plainURL := "http://" + ln.Addr().String() + "/"

	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 256, 256
	urlAddr := s.urlAddr
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if strings.Contains(addr, ".lambda-url.") {
			addr = urlAddr // the URL's host name, on loopback
		}
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	hc := &http.Client{Transport: tr}
	get := func(u string) func() error {
		return func() error {
			resp, err := hc.Post(u, "application/json", bytes.NewReader(benchPayload))
			if err != nil {
				return err
			}
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode != 200 {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
			return err
		}
	}
	targets := []struct {
		name string
		fn   func() error
	}{
		{"net/http", get(plainURL)},
		{"invoke", func() error { return echo(s.client, "echo") }},
		{"url", get(base + "bench")},
	}
	for _, t := range targets {
		for range 200 {
			if err := t.fn(); err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
		}
	}
	load(8, time.Second, targets[1].fn) // eight instances warm
	res := warmResults{}
	for range rounds {
		for _, c := range []int{1, 8} {
			for _, t := range targets {
				lat, errs, elapsed := load(c, dur, t.fn)
				res.add(fmt.Sprintf("%s/%d", t.name, c), lat, errs, elapsed)
			}
		}
	}
	fmt.Printf("function URL vs Invoke vs plain net/http, echo example (1,769 MB), %d rounds of %s, interleaved; medians of the rounds:\n", rounds, dur)
	for _, c := range []int{1, 8} {
		inv := res[fmt.Sprintf("invoke/%d", c)]
		pl := res[fmt.Sprintf("net/http/%d", c)]
		for _, t := range targets {
			w := res[fmt.Sprintf("%s/%d", t.name, c)]
			line := fmt.Sprintf("  c=%d %-8s %6.0f/s p50 %s p99 %s errors %d", c, t.name, medianF(w.rate), ms(median(w.p50)), ms(median(w.p99)), w.errs)
			if t.name == "url" {
				line += fmt.Sprintf(" | vs invoke: p50 %+.3fms, %.2fx throughput | vs net/http: %.2fx throughput",
					float64(median(w.p50)-median(inv.p50))/float64(time.Millisecond), medianF(w.rate)/medianF(inv.rate), medianF(w.rate)/medianF(pl.rate))
			}
			fmt.Println(line)
		}
	}
	return nil
}
