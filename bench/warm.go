package main

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/lambda"
)

// A target is one thing the warm runs measure with the same client.
type target struct {
	name   string
	client *lambda.Client
	fn     string // function name to invoke
}

// floorServer answers every Invoke at once with its payload, as an echo
// function would, and nothing else: no signature check, no function. It is
// what the client and loopback cost alone.
func floorServer() (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil || r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/invocations") {
			http.Error(w, "floor server answers Invoke only", http.StatusBadRequest)
			return
		}
		w.Header().Set("X-Amz-Executed-Version", "$LATEST")
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() { srv.Close() }, nil
}

// startRIE runs AWS's runtime interface emulator with the echo bootstrap
// from zipBytes, unpacked into dir. It answers at
// /2015-03-31/functions/function/invocations.
func startRIE(rie string, zipBytes []byte, dir string) (url string, stop func(), err error) {
	boot, err := unpackBootstrap(zipBytes, dir)
	if err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(rie, "--runtime-interface-emulator-address", addr, boot)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=1769", "AWS_LAMBDA_FUNCTION_NAME=function", "_HANDLER=bootstrap"}
	cmd.Dir = filepath.Dir(boot)
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start rie: %w", err)
	}
	stop = func() {
		cmd.Process.Kill()
		cmd.Wait()
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, errors.New("rie did not listen within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return "http://" + addr, stop, nil
}

// unpackBootstrap writes the zip's bootstrap into dir and returns its path.
func unpackBootstrap(zipBytes []byte, dir string) (string, error) {
	zr, err := zip.NewReader(bytes.NewReader(zipBytes), int64(len(zipBytes)))
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	for _, f := range zr.File {
		if f.Name != "bootstrap" {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return "", err
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return "", err
		}
		p := filepath.Join(dir, "bootstrap")
		return p, os.WriteFile(p, b, 0o755)
	}
	return "", errors.New("the zip has no bootstrap")
}

type warmResult struct {
	rate     []float64
	p50, p99 []time.Duration
	errs     int64
}

// warmResults are the rounds of each target and concurrency ("moat/8").
type warmResults map[string]*warmResult

// add records one round of k: its latencies, errors and length.
func (res warmResults) add(k string, lat []time.Duration, errs int64, elapsed time.Duration) {
	w := res[k]
	if w == nil {
		w = &warmResult{}
		res[k] = w
	}
	w.rate = append(w.rate, float64(len(lat))/elapsed.Seconds())
	w.p50 = append(w.p50, pctD(lat, 50))
	w.p99 = append(w.p99, pctD(lat, 99))
	w.errs += errs
}

// runWarm measures warm invokes at concurrency 1 and 8 against moat, the
// floor server and the emulator, taking turns round after round so the
// machine's noise falls on all of them, and prints medians over the
// rounds with their ratios to the floor and to the emulator.
func runWarm(cfg config, s *server, zipBytes []byte, dir string) error {
	floorURL, stopFloor, err := floorServer()
	if err != nil {
		return err
	}
	defer stopFloor()
	targets := []target{
		{"floor", newClient(floorURL, "AKIDFLOOR", "floor"), "echo"},
		{"moat", s.client, "echo"},
	}
	if cfg.rie != "" {
		url, stop, err := startRIE(cfg.rie, zipBytes, filepath.Join(dir, "rie"))
		if err != nil {
			return err
		}
		defer stop()
		targets = append(targets, target{"rie", newClient(url, "AKIDRIE", "rie"), "function"})
	}
	for _, t := range targets {
		for i := 0; i < 200; i++ { // the instance and connections warm
			if err := echo(t.client, t.fn); err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
		}
	}
	concs := []int{1, 8}
	// Eight instances warm too (moat scales out to them at c=8).
	load(8, time.Second, func() error { return echo(s.client, "echo") })
	res := warmResults{}
	for r := 0; r < cfg.rounds; r++ {
		for _, c := range concs {
			for _, t := range targets {
				if t.name == "rie" && c > 1 {
					continue // the emulator serves one invocation at a time and breaks beyond
				}
				var first atomic.Value
				lat, errs, elapsed := load(c, cfg.dur, func() error {
					err := echo(t.client, t.fn)
					if err != nil {
						first.CompareAndSwap(nil, err.Error())
					}
					return err
				})
				if errs > 0 {
					fmt.Printf("  (%s c=%d: %d errors, the first: %v)\n", t.name, c, errs, first.Load())
				}
				res.add(fmt.Sprintf("%s/%d", t.name, c), lat, errs, elapsed)
			}
		}
	}
	fmt.Printf("warm invoke, echo example (1,769 MB), %d rounds of %s per target and concurrency, interleaved; medians of the rounds (rie: c=1 only, it serves one invocation at a time):\n", cfg.rounds, cfg.dur)
	for _, c := range concs {
		floor := res[fmt.Sprintf("floor/%d", c)]
		rie := res[fmt.Sprintf("rie/%d", c)]
		for _, t := range targets {
			w := res[fmt.Sprintf("%s/%d", t.name, c)]
			if w == nil {
				continue
			}
			line := fmt.Sprintf("  c=%d %-5s %6.0f/s p50 %s p99 %s errors %d", c, t.name, medianF(w.rate), ms(median(w.p50)), ms(median(w.p99)), w.errs)
			if t.name != "floor" {
				line += fmt.Sprintf(" | vs floor: %.2fx throughput, p50 +%s", medianF(w.rate)/medianF(floor.rate), ms(median(w.p50)-median(floor.p50)))
			}
			if rie != nil && t.name == "moat" {
				line += fmt.Sprintf(" | vs rie: %.2fx throughput, p50 %.2fx", medianF(w.rate)/medianF(rie.rate), float64(median(w.p50))/float64(median(rie.p50)))
			}
			fmt.Println(line)
		}
	}
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3fms", float64(d)/float64(time.Millisecond)) }
