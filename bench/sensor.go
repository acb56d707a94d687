package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"moat.dev/moat/internal/codepkg"
	"moat.dev/moat/internal/seccomp"
	"moat.dev/moat/internal/sensor"
)

// runSensor measures what the runtime sensor costs and how fast it
// alerts. Three configurations: sensor off (--no-sensor), the sensor in
// monitor mode, and the function in enforce mode with an approved
// profile. Only one node runs at a time — a loaded sensor's tracepoints
// run for every process on the host, so a "sensor off" node beside a
// monitoring one would pay part of the cost — and the configurations take
// turns round after round, so that the machine's noise falls on all of
// them; medians and ratios come from the same run.
func runSensor(moatBin, zipPath string, rounds int, dur time.Duration) error {
	zip, err := os.ReadFile(zipPath)
	if err != nil {
		return fmt.Errorf("read echo zip (run make build first): %w", err)
	}
	suspicious, err := buildFunction("testdata/functions/suspicious")
	if err != nil {
		return err
	}
	ctx := context.Background()
	payload := []byte(`{"hello":"moat","n":12345}`)
	invoke := func(s *server) error {
		out, err := s.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo"), Payload: payload})
		if err != nil {
			return err
		}
		if out.FunctionError != nil || !bytes.Equal(out.Payload, payload) {
			return fmt.Errorf("bad response %q", out.Payload)
		}
		return nil
	}
	// node starts a fresh node of one configuration with the echo
	// function warm (and, for enforce, its profile learned, approved and
	// enforced).
	node := func(name string) (*server, func(), error) {
		dir, err := os.MkdirTemp("", "moat-bench-sensor-")
		if err != nil {
			return nil, nil, err
		}
		extra := []string{"--learn-invocations", "20"}
		if name == "sensor off" || name == "host only" {
			extra = append(extra, "--no-sensor")
		}
		s, err := start(moatBin, dir, extra...)
		if err != nil {
			os.RemoveAll(dir)
			return nil, nil, err
		}
		stop := func() {
			s.cmd.Process.Signal(os.Interrupt)
			s.cmd.Wait()
			os.RemoveAll(dir)
		}
		_, err = s.client.CreateFunction(ctx, &lambda.CreateFunctionInput{
			FunctionName: aws.String("echo"), Runtime: types.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
			Role: aws.String("arn:aws:iam::000000000000:role/bench"), MemorySize: aws.Int32(1769),
			Code: &types.FunctionCode{ZipFile: zip},
		})
		if err == nil && name == "enforce" {
			for i := 0; i < 30 && err == nil; i++ {
				err = invoke(s)
			}
			time.Sleep(500 * time.Millisecond) // the window closes once the last records are in
			if err == nil {
				_, err = s.signed("POST", "/moat/v1/profiles/echo/approve", nil)
			}
			if err == nil {
				_, err = s.signed("PUT", "/2015-03-31/functions/echo/configuration", []byte(`{"Sandbox":{"Mode":"enforce"}}`))
			}
		}
		for i := 0; i < 200 && err == nil; i++ {
			err = invoke(s)
		}
		if err != nil {
			stop()
			return nil, nil, fmt.Errorf("%s: set up: %w", name, err)
		}
		return s, stop, nil
	}

	// "host only": the node runs without its sensor while this process
	// holds one loaded and attached, watching nothing: the cost every
	// process on the host pays for a loaded sensor, apart from the
	// monitor's own work.
	names := []string{"sensor off", "host only", "monitor", "enforce"}
	fmt.Printf("moat sensor bench: %s, %d CPUs, %d rounds of %s per configuration and concurrency, one node at a time, interleaved\n",
		time.Now().UTC().Format(time.RFC3339), numCPU(), rounds, dur)
	rates := map[string][]float64{}
	p50 := map[string][]time.Duration{}
	rss := map[string][]int{}
	for r := 0; r < rounds; r++ {
		for _, name := range names {
			var held *sensor.Sensor
			if name == "host only" {
				if held, err = sensor.Load(sensor.Options{SeccompAllowed: seccomp.Default().Allow}); err != nil {
					return fmt.Errorf("host only: %w", err)
				}
			}
			s, stop, err := node(name)
			if err != nil {
				return err
			}
			for _, conc := range []int{1, 8} {
				lat, errs, elapsed := load(conc, dur, func() error { return invoke(s) })
				if errs > 0 {
					stop()
					return fmt.Errorf("%s: %d errors", name, errs)
				}
				key := fmt.Sprintf("%s c=%d", name, conc)
				rates[key] = append(rates[key], float64(len(lat))/elapsed.Seconds())
				p50[key] = append(p50[key], median(lat))
			}
			rss[name] = append(rss[name], s.rssKB())
			stop()
			if held != nil {
				held.Close()
			}
		}
	}
	for _, conc := range []int{1, 8} {
		base := medianF(rates[fmt.Sprintf("sensor off c=%d", conc)])
		for _, name := range names {
			key := fmt.Sprintf("%s c=%d", name, conc)
			m := medianF(rates[key])
			fmt.Printf("warm invoke c=%d %-10s median %.0f/s (rounds %s), p50 latency median %s, throughput vs off %+.1f%%\n",
				conc, name, m, fmtRates(rates[key]), medianD(p50[key]), (m/base-1)*100)
		}
	}
	for _, name := range names {
		fmt.Printf("moat RSS after the runs, %s: median %d KB\n", name, medianI(rss[name]))
	}

	// Alert latency: from the syscall (the evidence event's kernel
	// timestamp) to the alert read back from the stream.
	mon, stop, err := node("monitor")
	if err != nil {
		return err
	}
	defer stop()
	if _, err := mon.client.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("suspicious"), Runtime: types.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
		Role: aws.String("arn:aws:iam::000000000000:role/bench"), Code: &types.FunctionCode{ZipFile: suspicious},
	}); err != nil {
		return fmt.Errorf("deploy suspicious: %w", err)
	}
	lats, err := alertLatency(ctx, mon, 200)
	if err != nil {
		return err
	}
	fmt.Printf("alert latency, syscall to alert read from the stream (%d alerts): p50 %s p99 %s max %s\n",
		len(lats), pct(lats, 50), pct(lats, 99), pct(lats, 100))
	return nil
}

func medianI(v []int) int {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// alertLatency follows the alert stream while invoking the suspicious
// function's "environ-self" action n times.
func alertLatency(ctx context.Context, s *server, n int) ([]time.Duration, error) {
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	resp, err := s.do(fctx, "GET", "/moat/v1/alerts?function=suspicious&follow=1&since=1s", nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	got := make(chan time.Duration, n*4)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 8<<20)
		for sc.Scan() {
			now := time.Now()
			var a struct {
				Rule     string `json:"rule"`
				Evidence []struct {
					Time time.Time `json:"time"`
				} `json:"evidence"`
			}
			if json.Unmarshal(sc.Bytes(), &a) != nil || a.Rule != "environ-read" || len(a.Evidence) == 0 {
				continue
			}
			got <- now.Sub(a.Evidence[len(a.Evidence)-1].Time)
		}
	}()
	var out []time.Duration
	for i := 0; i < n; i++ {
		if _, err := s.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("suspicious"), Payload: []byte(`{"action":"environ-self"}`)}); err != nil {
			return nil, err
		}
		select {
		case d := <-got:
			out = append(out, d)
		case <-time.After(5 * time.Second):
			return nil, fmt.Errorf("no alert for invocation %d", i)
		}
	}
	return out, nil
}

// request builds a SigV4-signed request to moat's own API.
func (s *server) request(ctx context.Context, method, path string, body []byte) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, s.url+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(body)
	err = v4.NewSigner().SignHTTP(ctx, aws.Credentials{AccessKeyID: s.key.AccessKeyID, SecretAccessKey: s.key.SecretAccessKey},
		req, hex.EncodeToString(sum[:]), "lambda", "us-east-1", time.Now())
	return req, err
}

// do sends a signed request to moat's own API.
func (s *server) do(ctx context.Context, method, path string, body []byte) (*http.Response, error) {
	req, err := s.request(ctx, method, path, body)
	if err != nil {
		return nil, err
	}
	return http.DefaultClient.Do(req)
}

// signed sends a signed request and returns the body of a 2xx answer.
func (s *server) signed(method, path string, body []byte) ([]byte, error) {
	resp, err := s.do(context.Background(), method, path, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	return b, nil
}

// buildFunction builds a Go test function of this module into a zip.
func buildFunction(pkg string) ([]byte, error) {
	dir, err := os.MkdirTemp("", "moat-bench-fn-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := goBuild("./"+pkg, filepath.Join(dir, "bootstrap")); err != nil {
		return nil, err
	}
	return codepkg.Zip(dir)
}

// goBuild builds a Go package of this module as a static Lambda
// bootstrap.
func goBuild(pkg, out string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-tags", "lambda.norpc", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func medianD(d []time.Duration) string {
	return fmt.Sprintf("%.3fms", float64(median(d))/float64(time.Millisecond))
}

func medianF(f []float64) float64 {
	s := slices.Clone(f)
	slices.Sort(s)
	return s[len(s)/2]
}

func fmtRates(f []float64) string {
	parts := make([]string, len(f))
	for i, v := range f {
		parts[i] = fmt.Sprintf("%.0f", v)
	}
	return strings.Join(parts, " ")
}
