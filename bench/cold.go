package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"moat.dev/moat/internal/runtimeapi"
)

// coldPause separates cold starts, so each finds the sandbox pool refilled
// (it refills once no instance is starting): cold starts that are not a
// burst. A burst larger than the pool pays the on-demand figures.
const coldPause = 250 * time.Millisecond

// runCold measures cold starts, a new function each time so no instance is
// warm, at 128 and 1,769 MB, on a node with the sandbox pool (pool) and
// one without (nopool), taking turns; and the floor: the same bootstrap
// exec'd on the host with no sandbox, served by the Runtime API package
// over loopback, from the exec to its first response.
func runCold(cfg config, pool, nopool *server, zipBytes []byte, dir string) error {
	boot, err := unpackBootstrap(zipBytes, filepath.Join(dir, "floor"))
	if err != nil {
		return err
	}
	reInit := regexp.MustCompile(`Init Duration: ([0-9.]+) ms`)
	reDur := regexp.MustCompile(`\tDuration: ([0-9.]+) ms`)
	type coldRes struct{ e2e, init, first []time.Duration }
	res := map[string]*coldRes{}
	mems := []int32{128, 1769}
	nodes := []struct {
		name string
		s    *server
	}{{"pool", pool}, {"no pool", nopool}}
	for i := 0; i < cfg.colds; i++ {
		for _, mem := range mems {
			for _, n := range nodes {
				name := fmt.Sprintf("cold-%d-%d-%d", mem, len(n.name), i)
				if err := n.s.create(name, mem, zipBytes); err != nil {
					return err
				}
				time.Sleep(coldPause)
				t0 := time.Now()
				out, err := n.s.client.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String(name), Payload: benchPayload, LogType: types.LogTypeTail})
				if err != nil {
					return err
				}
				e2e := time.Since(t0)
				if out.FunctionError != nil {
					return fmt.Errorf("cold start of %s: %s", name, out.Payload)
				}
				k := fmt.Sprintf("%s/%d", n.name, mem)
				if res[k] == nil {
					res[k] = &coldRes{}
				}
				r := res[k]
				r.e2e = append(r.e2e, e2e)
				tail, _ := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
				if m := reInit.FindSubmatch(tail); m != nil {
					r.init = append(r.init, msDur(string(m[1])))
				}
				if m := reDur.FindSubmatch(tail); m != nil {
					r.first = append(r.first, msDur(string(m[1])))
				}
			}
		}
		// The floor, between the rounds of moat's.
		d, err := bareStart(boot)
		if err != nil {
			return fmt.Errorf("floor cold start: %w", err)
		}
		k := "floor"
		if res[k] == nil {
			res[k] = &coldRes{}
		}
		res[k].e2e = append(res[k].e2e, d)
	}
	floor := res["floor"]
	fmt.Printf("cold start, echo example, %d each, %s apart, interleaved (client call to first response):\n", cfg.colds, coldPause)
	fmt.Printf("  floor (the bootstrap exec'd bare on the host, to its first response): p50 %s p99 %s\n", pct(floor.e2e, 50), pct(floor.e2e, 99))
	for _, mem := range mems {
		for _, n := range nodes {
			r := res[fmt.Sprintf("%s/%d", n.name, mem)]
			fmt.Printf("  %4d MB %-7s p50 %s p99 %s (%.2fx floor, +%s); Init Duration p50 %s, first invoke p50 %s\n",
				mem, n.name, pct(r.e2e, 50), pct(r.e2e, 99), float64(median(r.e2e))/float64(median(floor.e2e)),
				ms(median(r.e2e)-median(floor.e2e)), pct(r.init, 50), pct(r.first, 50))
		}
	}
	return nil
}

// bareStart execs boot with no sandbox and returns the time from the exec
// to its first response.
func bareStart(boot string) (time.Duration, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	api := runtimeapi.New()
	srv := &http.Server{Handler: api}
	go srv.Serve(ln)
	defer func() {
		api.Close()
		srv.Close()
	}()
	cmd := exec.Command(boot)
	cmd.Env = []string{"AWS_LAMBDA_RUNTIME_API=" + ln.Addr().String(), "_HANDLER=bootstrap", "AWS_LAMBDA_FUNCTION_NAME=floor",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128", "AWS_LAMBDA_FUNCTION_VERSION=$LATEST"}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	select {
	case <-api.Ready():
	case <-time.After(10 * time.Second):
		return 0, fmt.Errorf("no invocation/next within 10s")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := api.Invoke(ctx, &runtimeapi.Invocation{RequestID: "floor", Payload: benchPayload, Deadline: time.Now().Add(10 * time.Second),
		InvokedARN: "arn:aws:lambda:us-east-1:000000000000:function:floor"})
	if err != nil {
		return 0, err
	}
	d := time.Since(t0)
	if out.IsError() || string(out.Payload) != string(benchPayload) {
		return 0, fmt.Errorf("bad response %q", out.Payload)
	}
	return d, nil
}
