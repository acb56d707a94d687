// Command bench measures moat end to end with the AWS SDK for Go v2 Lambda
// client on loopback: warm invoke latency and throughput, cold starts,
// ListFunctions with many functions, and moat's memory. It starts the moat
// binary it is given with a fresh data dir and stops it at the end.
//
//	go run ./bench -moat bin/moat -zip internal/cli/examples/echo-go.zip
package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"moat.dev/moat/internal/credentials"
)

func main() {
	moatBin := flag.String("moat", "bin/moat", "moat binary")
	zipPath := flag.String("zip", "internal/cli/examples/echo-go.zip", "zip of the echo example")
	duration := flag.Duration("duration", 10*time.Second, "length of each warm run")
	colds := flag.Int("cold", 30, "cold starts to measure")
	functions := flag.Int("functions", 1000, "functions to deploy for the ListFunctions run")
	warmInstances := flag.Int("instances", 100, "idle warm instances for the per-instance cost")
	sensor := flag.Bool("sensor", false, "measure the runtime sensor instead: throughput with it off, in monitor and in enforce mode, alert latency, memory")
	rounds := flag.Int("rounds", 5, "with -sensor: interleaved rounds per configuration")
	flag.Parse()
	if *sensor {
		if err := runSensor(*moatBin, *zipPath, *rounds, *duration); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*moatBin, *zipPath, *duration, *colds, *functions, *warmInstances); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type server struct {
	cmd    *exec.Cmd
	url    string
	client *lambda.Client
	key    credentials.Key
}

func start(moatBin, dir string, extra ...string) (*server, error) {
	cmd := exec.Command(moatBin, append([]string{"up", "--listen", "127.0.0.1:0", "--data-dir", dir}, extra...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout = os.Stdout
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	addr := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`listen=(\S+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
	}()
	s := &server{cmd: cmd}
	select {
	case a := <-addr:
		s.url = "http://" + strings.Trim(a, `"`)
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		return nil, errors.New("moat did not report its address")
	}
	keys, err := credentials.Load(filepath.Join(dir, "credentials"))
	if err != nil {
		return nil, err
	}
	k := keys[credentials.Profile]
	s.key = k
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 256, 256
	s.client = lambda.New(lambda.Options{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String(s.url),
		Credentials:      awscreds.NewStaticCredentialsProvider(k.AccessKeyID, k.SecretAccessKey, ""),
		HTTPClient:       &http.Client{Transport: tr},
		RetryMaxAttempts: 1,
	})
	return s, nil
}

func (s *server) rssKB() int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			n, _ := strconv.Atoi(strings.Fields(line)[1])
			return n
		}
	}
	return 0
}

func run(moatBin, zipPath string, dur time.Duration, colds, functions, warmInstances int) error {
	zip, err := os.ReadFile(zipPath)
	if err != nil {
		return fmt.Errorf("read echo zip (run make build first): %w", err)
	}
	dir, err := os.MkdirTemp("", "moat-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	s, err := start(moatBin, dir)
	if err != nil {
		return err
	}
	defer func() {
		s.cmd.Process.Signal(os.Interrupt)
		s.cmd.Wait()
	}()
	ctx := context.Background()
	create := func(name string, mem int32) error {
		_, err := s.client.CreateFunction(ctx, &lambda.CreateFunctionInput{
			FunctionName: aws.String(name), Runtime: types.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
			Role: aws.String("arn:aws:iam::000000000000:role/bench"), MemorySize: aws.Int32(mem),
			Code: &types.FunctionCode{ZipFile: zip},
		})
		return err
	}
	if err := create("echo", 1769); err != nil {
		return fmt.Errorf("deploy echo: %w", err)
	}
	payload := []byte(`{"hello":"moat","n":12345}`)
	invoke := func(name string) error {
		out, err := s.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(name), Payload: payload})
		if err != nil {
			return err
		}
		if out.FunctionError != nil || string(out.Payload) != string(payload) {
			return fmt.Errorf("bad response %q", out.Payload)
		}
		return nil
	}
	fmt.Printf("moat bench: %s, %d CPUs, moat pid %d\n", time.Now().UTC().Format(time.RFC3339), numCPU(), s.cmd.Process.Pid)

	// Warm runs.
	for i := 0; i < 200; i++ { // warm up the instance and connections
		if err := invoke("echo"); err != nil {
			return err
		}
	}
	for _, c := range []int{1, 8} {
		lat, errs, elapsed := load(c, dur, func() error { return invoke("echo") })
		fmt.Printf("warm invoke c=%d: %d invokes in %.1fs = %.0f/s, errors %d, p50 %s p99 %s\n",
			c, len(lat), elapsed.Seconds(), float64(len(lat))/elapsed.Seconds(), errs, pct(lat, 50), pct(lat, 99))
	}

	// Cold starts: a new function each time, so no instance is warm.
	var e2e, initD, invD []time.Duration
	reInit := regexp.MustCompile(`Init Duration: ([0-9.]+) ms`)
	reDur := regexp.MustCompile(`\tDuration: ([0-9.]+) ms`)
	for i := 0; i < colds; i++ {
		name := fmt.Sprintf("cold-%d", i)
		if err := create(name, 128); err != nil {
			return err
		}
		t0 := time.Now()
		out, err := s.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(name), Payload: payload, LogType: types.LogTypeTail})
		if err != nil {
			return err
		}
		e2e = append(e2e, time.Since(t0))
		tail, _ := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
		if m := reInit.FindSubmatch(tail); m != nil {
			initD = append(initD, ms(string(m[1])))
		}
		if m := reDur.FindSubmatch(tail); m != nil {
			invD = append(invD, ms(string(m[1])))
		}
	}
	fmt.Printf("cold start (%d): end-to-end p50 %s p99 %s; spawn+runtime init p50 %s; first invoke p50 %s\n",
		colds, pct(e2e, 50), pct(e2e, 99), pct(initD, 50), pct(invD, 50))

	// Per-instance host cost: many idle warm instances.
	rss0 := s.rssKB()
	for i := 0; i < warmInstances; i++ {
		name := fmt.Sprintf("warm-%d", i)
		if err := create(name, 128); err != nil {
			return err
		}
		if err := invoke(name); err != nil {
			return err
		}
	}
	rss1 := s.rssKB()
	fmt.Printf("idle warm instances: %d, moat RSS %d KB -> %d KB: %.0f KB per instance (host side, moat process)\n",
		warmInstances, rss0, rss1, float64(rss1-rss0)/float64(warmInstances))

	// Many functions.
	have := colds + warmInstances + 1
	for i := have; i < functions; i++ {
		if err := create(fmt.Sprintf("fn-%04d", i), 128); err != nil {
			return err
		}
	}
	var list []time.Duration
	for i := 0; i < 300; i++ {
		t0 := time.Now()
		if _, err := s.client.ListFunctions(ctx, &lambda.ListFunctionsInput{}); err != nil {
			return err
		}
		list = append(list, time.Since(t0))
	}
	var full []time.Duration
	for i := 0; i < 20; i++ {
		t0 := time.Now()
		p := lambda.NewListFunctionsPaginator(s.client, &lambda.ListFunctionsInput{})
		n := 0
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				return err
			}
			n += len(out.Functions)
		}
		if n < functions {
			return fmt.Errorf("listed %d functions, want %d", n, functions)
		}
		full = append(full, time.Since(t0))
	}
	fmt.Printf("ListFunctions with %d functions: one page (50) p50 %s p99 %s; all pages p50 %s\n",
		functions, pct(list, 50), pct(list, 99), pct(full, 50))
	fmt.Printf("moat RSS with %d functions and %d warm instances: %d KB\n", functions, warmInstances, s.rssKB())
	time.Sleep(idleWait)
	fmt.Printf("moat RSS after %s idle: %d KB\n", idleWait, s.rssKB())
	return nil
}

// idleWait is how long moat sits idle before its idle RSS is read.
const idleWait = 30 * time.Second

func ms(s string) time.Duration {
	f, _ := strconv.ParseFloat(s, 64)
	return time.Duration(f * float64(time.Millisecond))
}

// load runs fn from c goroutines for d and returns every latency.
func load(c int, d time.Duration, fn func() error) ([]time.Duration, int64, time.Duration) {
	var mu sync.Mutex
	var all []time.Duration
	var errs atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	stop := start.Add(d)
	for i := 0; i < c; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 1<<14)
			for time.Now().Before(stop) {
				t0 := time.Now()
				if err := fn(); err != nil {
					errs.Add(1)
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return all, errs.Load(), time.Since(start)
}

func pct(d []time.Duration, p int) string {
	if len(d) == 0 {
		return "n/a"
	}
	s := slices.Clone(d)
	slices.Sort(s)
	v := s[min(len(s)-1, len(s)*p/100)]
	return fmt.Sprintf("%.3fms", float64(v)/float64(time.Millisecond))
}

func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "processor\t:")
}

var _ = io.Discard
