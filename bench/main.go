// Command bench measures moat end to end with the AWS SDK for Go v2 Lambda
// client on loopback, always against a floor and, where given, a peer in
// the same run: warm invoke latency and throughput (moat, a floor server
// that answers Invoke at once, AWS's runtime interface emulator with -rie),
// interleaved round by round; cold starts at 128 and 1,769 MB with and
// without the sandbox pool, against the same bootstrap started bare on the
// host; idle instances, ListFunctions with many functions, moat's memory;
// with -scale, 1,000 idle instances and a throttled burst; with -sensor,
// the runtime sensor's cost; with -urls, function URLs against Invoke and
// plain net/http (urls.go); with -event-generator, an external detection
// run (eventgen.go). It starts the moat binary it is given with fresh data
// dirs and stops it at the end.
//
//	go run ./bench -moat bin/moat -zip internal/cli/examples/echo-go.zip -rie /path/to/aws-lambda-rie
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
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
	duration := flag.Duration("duration", 5*time.Second, "length of each warm run")
	rounds := flag.Int("rounds", 3, "interleaved rounds per configuration (warm runs, and -sensor)")
	colds := flag.Int("cold", 30, "cold starts to measure per memory size and configuration")
	rie := flag.String("rie", "", "path of AWS's runtime interface emulator (aws-lambda-rie), measured as a peer")
	functions := flag.Int("functions", 1000, "functions to deploy for the ListFunctions run")
	warmInstances := flag.Int("instances", 100, "idle warm instances for the per-instance cost")
	scale := flag.Bool("scale", false, "also run the scale checks: many idle instances, and a throttled burst at concurrency 64")
	sensor := flag.Bool("sensor", false, "measure the runtime sensor instead: throughput with it off, in monitor and in enforce mode, alert latency, memory")
	urls := flag.Bool("urls", false, "measure function URLs instead: a URL request against the direct Invoke of the same warm function and a plain net/http handler")
	eventGenerator := flag.String("event-generator", "", "run each syscall action of this falcosecurity/event-generator binary (built by you) in its own invocation of a network-isolated instance, and print what moat saw of it")
	flag.Parse()
	fmt.Println(machine())
	var err error
	switch {
	case *eventGenerator != "":
		err = runEventGenerator(*moatBin, *eventGenerator)
	case *urls:
		err = runURLs(*moatBin, *zipPath, *rounds, *duration)
	case *sensor:
		err = runSensor(*moatBin, *zipPath, *rounds, *duration)
	default:
		err = run(config{moat: *moatBin, zip: *zipPath, dur: *duration, rounds: *rounds, colds: *colds, rie: *rie,
			functions: *functions, instances: *warmInstances, scale: *scale})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type config struct {
	moat, zip, rie       string
	dur                  time.Duration
	rounds, colds        int
	functions, instances int
	scale                bool
}

// machine describes where the numbers come from.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	memKB := 0
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		fmt.Sscanf(string(b), "MemTotal: %d kB", &memKB)
	}
	return fmt.Sprintf("machine: %s, %d CPUs (%s), %.0f GiB, Linux %s, %s",
		time.Now().UTC().Format(time.RFC3339), numCPU(), model, float64(memKB)/(1<<20), strings.TrimSpace(string(kernel)), runtime.Version())
}

type server struct {
	cmd      *exec.Cmd
	url      string
	client   *lambda.Client
	key      credentials.Key
	urlAddr  string // where function URLs are served
	stopOnce sync.Once
}

func start(moatBin, dir string, extra ...string) (*server, error) {
	cmd := exec.Command(moatBin, append([]string{"up", "--listen", "127.0.0.1:0", "--url-listen", "127.0.0.1:0", "--data-dir", dir}, extra...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout = os.Stdout
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	addr, urlAddr := make(chan string, 1), make(chan string, 1)
	go func() {
		// "moat is ready ... listen=ADDR", after "... url_listen=ADDR"
		re := regexp.MustCompile(`\b(url_)?listen=(\S+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			for _, m := range re.FindAllStringSubmatch(sc.Text(), -1) {
				ch := addr
				if m[1] != "" {
					ch = urlAddr
				}
				select {
				case ch <- strings.Trim(m[2], `"`):
				default:
				}
			}
		}
	}()
	s := &server{cmd: cmd}
	select {
	case a := <-addr:
		s.url = "http://" + a
		select {
		case u := <-urlAddr:
			s.urlAddr = u
		default:
		}
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
	s.client = newClient(s.url, k.AccessKeyID, k.SecretAccessKey)
	return s, nil
}

// newClient is the SDK's Lambda client as every measured target gets it:
// one shared transport, no retries.
func newClient(url, keyID, secret string) *lambda.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 256, 256
	return lambda.New(lambda.Options{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String(url),
		Credentials:      awscreds.NewStaticCredentialsProvider(keyID, secret, ""),
		HTTPClient:       &http.Client{Transport: tr},
		RetryMaxAttempts: 1,
	})
}

// fds is how many descriptors the moat process holds.
func (s *server) fds() int {
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", s.cmd.Process.Pid))
	return len(ents)
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

func run(cfg config) error {
	zip, err := os.ReadFile(cfg.zip)
	if err != nil {
		return fmt.Errorf("read echo zip (run make build first): %w", err)
	}
	dir, err := os.MkdirTemp("", "moat-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	s, err := start(cfg.moat, filepath.Join(dir, "pool"))
	if err != nil {
		return err
	}
	defer s.stop()
	fmt.Printf("moat pid %d (--sandbox-pool 2, the default)\n", s.cmd.Process.Pid)
	if err := s.create("echo", 1769, zip); err != nil {
		return fmt.Errorf("deploy echo: %w", err)
	}
	if err := runWarm(cfg, s, zip, dir); err != nil {
		return err
	}
	cold, err := start(cfg.moat, filepath.Join(dir, "nopool"), "--sandbox-pool", "0")
	if err != nil {
		return err
	}
	defer cold.stop()
	if err := runCold(cfg, s, cold, zip, dir); err != nil {
		return err
	}
	cold.stop()
	if err := runMany(cfg, s, zip); err != nil {
		return err
	}
	if cfg.scale {
		return runScale(cfg, filepath.Join(dir, "scale"))
	}
	return nil
}

// create deploys the zip as a provided.al2023 function.
func (s *server) create(name string, mem int32, zip []byte) error {
	_, err := s.client.CreateFunction(context.Background(), &lambda.CreateFunctionInput{
		FunctionName: aws.String(name), Runtime: types.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
		Role: aws.String("arn:aws:iam::000000000000:role/bench"), MemorySize: aws.Int32(mem),
		Code: &types.FunctionCode{ZipFile: zip},
	})
	return err
}

// stop ends the moat process (once).
func (s *server) stop() {
	s.stopOnce.Do(func() {
		s.cmd.Process.Signal(os.Interrupt)
		s.cmd.Wait()
	})
}

// runMany measures the per-instance host cost with many idle warm
// instances, then ListFunctions with many functions, and moat's RSS.
func runMany(cfg config, s *server, zip []byte) error {
	ctx := context.Background()
	rss0 := s.rssKB()
	fds0 := s.fds()
	for i := 0; i < cfg.instances; i++ {
		name := fmt.Sprintf("warm-%d", i)
		if err := s.create(name, 128, zip); err != nil {
			return err
		}
		if err := echo(s.client, name); err != nil {
			return err
		}
	}
	rss1, fds1 := s.rssKB(), s.fds()
	fmt.Printf("idle warm instances: %d, moat RSS %d KB -> %d KB: %.0f KB per instance; open fds %d -> %d: %.1f per instance (host side, moat process)\n",
		cfg.instances, rss0, rss1, float64(rss1-rss0)/float64(cfg.instances), fds0, fds1, float64(fds1-fds0)/float64(cfg.instances))
	for i := cfg.instances + 1; i < cfg.functions; i++ {
		if err := s.create(fmt.Sprintf("fn-%04d", i), 128, zip); err != nil {
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
		if n < cfg.functions {
			return fmt.Errorf("listed %d functions, want %d", n, cfg.functions)
		}
		full = append(full, time.Since(t0))
	}
	fmt.Printf("ListFunctions with %d functions: one page (50) p50 %s p99 %s; all pages p50 %s\n",
		cfg.functions, pct(list, 50), pct(list, 99), pct(full, 50))
	fmt.Printf("moat RSS with %d functions and %d warm instances: %d KB\n", cfg.functions, cfg.instances, s.rssKB())
	time.Sleep(idleWait)
	fmt.Printf("moat RSS after %s idle: %d KB\n", idleWait, s.rssKB())
	return nil
}

var benchPayload = []byte(`{"hello":"moat","n":12345}`)

// echo invokes an echo function once and checks its answer.
func echo(c *lambda.Client, name string) error {
	out, err := c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String(name), Payload: benchPayload})
	if err != nil {
		return err
	}
	if out.FunctionError != nil || string(out.Payload) != string(benchPayload) {
		return fmt.Errorf("bad response %q", out.Payload)
	}
	return nil
}

// idleWait is how long moat sits idle before its idle RSS is read.
const idleWait = 30 * time.Second

func msDur(s string) time.Duration {
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
	return ms(pctD(d, p))
}

// pctD is the p-th percentile of d (0 for none).
func pctD(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

func readZip(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read echo zip (run make build first): %w", err)
	}
	return b, nil
}

func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "processor\t:")
}
