package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

const (
	scaleInstances = 1000
	burstRequests  = 10000
	burstConc      = 64
	burstReserved  = 16
	burstSleepMs   = 100
)

// runScale checks moat at scale on a fresh node: 1,000 idle warm
// instances (host-side memory and descriptors per instance), then 10,000
// requests at concurrency 64 against a function that sleeps 100 ms with
// reserved concurrency 16: every request must end, either answered or
// refused with 429 at once, and moat's memory must stay bounded.
func runScale(cfg config, dir string) error {
	s, err := start(cfg.moat, dir, "--max-concurrency", "2000")
	if err != nil {
		return err
	}
	defer s.stop()
	zip, err := readZip(cfg.zip)
	if err != nil {
		return err
	}
	rss0, fds0 := s.rssKB(), s.fds()
	t0 := time.Now()
	for i := 0; i < scaleInstances; i++ {
		name := fmt.Sprintf("idle-%04d", i)
		if err := s.create(name, 128, zip); err != nil {
			return err
		}
		if err := echo(s.client, name); err != nil {
			return fmt.Errorf("instance %d: %w", i, err)
		}
	}
	rss1, fds1 := s.rssKB(), s.fds()
	fmt.Printf("scale: %d idle warm instances on one node in %s; moat RSS %d KB -> %d KB (%.0f KB per instance), fds %d -> %d (%.1f per instance)\n",
		scaleInstances, time.Since(t0).Round(time.Second), rss0, rss1, float64(rss1-rss0)/scaleInstances, fds0, fds1, float64(fds1-fds0)/scaleInstances)

	behave, err := buildFunction("testdata/functions/behave")
	if err != nil {
		return err
	}
	ctx := context.Background()
	if err := s.create("sleepy", 128, behave); err != nil {
		return err
	}
	if _, err := s.client.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{
		FunctionName: aws.String("sleepy"), ReservedConcurrentExecutions: aws.Int32(burstReserved)}); err != nil {
		return err
	}
	payload := []byte(fmt.Sprintf(`{"action":"sleep","sleep_ms":%d}`, burstSleepMs))
	var next, ok, throttled, failed atomic.Int64
	var mu sync.Mutex
	var okLat, throttleLat []time.Duration
	var maxRSS atomic.Int64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if r := int64(s.rssKB()); r > maxRSS.Load() {
				maxRSS.Store(r)
			}
			select {
			case <-stopSampling:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	var firstErr atomic.Value
	var wg sync.WaitGroup
	t1 := time.Now()
	for g := 0; g < burstConc; g++ {
		wg.Go(func() {
			for next.Add(1) <= burstRequests {
				rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				t := time.Now()
				_, err := s.client.Invoke(rctx, &lambda.InvokeInput{FunctionName: aws.String("sleepy"), Payload: payload})
				d := time.Since(t)
				cancel()
				var tm *types.TooManyRequestsException
				mu.Lock()
				switch {
				case err == nil:
					ok.Add(1)
					okLat = append(okLat, d)
				case errors.As(err, &tm):
					throttled.Add(1)
					throttleLat = append(throttleLat, d)
				default:
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	took := time.Since(t1)
	close(stopSampling)
	<-sampled
	fmt.Printf("scale: %d requests at concurrency %d, handler sleeps %d ms, reserved concurrency %d, in %s: %d answered (p50 %s p99 %s), %d throttled with 429 (p50 %s p99 %s), %d failed otherwise; moat RSS max %d KB, after %d KB\n",
		burstRequests, burstConc, burstSleepMs, burstReserved, took.Round(time.Millisecond), ok.Load(), pct(okLat, 50), pct(okLat, 99),
		throttled.Load(), pct(throttleLat, 50), pct(throttleLat, 99), failed.Load(), maxRSS.Load(), s.rssKB())
	if n := ok.Load() + throttled.Load() + failed.Load(); n != burstRequests || failed.Load() > 0 {
		return fmt.Errorf("scale: %d of %d requests ended, %d failed (first: %v)", n, burstRequests, failed.Load(), firstErr.Load())
	}
	return nil
}
