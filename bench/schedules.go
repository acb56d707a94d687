package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	stypes "github.com/aws/aws-sdk-go-v2/service/scheduler/types"
)

// The -schedules mode: how long after its scheduled time a tick's
// invocation has finished (tick -> ticker -> async queue -> warm echo ->
// on-success destination record), against the floor of the same path
// without the scheduler: an Event Invoke sent by the client, from the
// moment it is sent to its record. n schedules share each tick's second;
// the two kinds take turns round after round.

func runSchedules(moatBin, zipPath string, rounds, n int) error {
	zip, err := readZip(zipPath)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "moat-bench-schedules-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	s, err := start(moatBin, dir)
	if err != nil {
		return err
	}
	defer s.stop()
	if err := s.create("echo", 1769, zip); err != nil {
		return err
	}
	ctx := context.Background()
	if _, err := s.client.PutFunctionEventInvokeConfig(ctx, &lambda.PutFunctionEventInvokeConfigInput{
		FunctionName:      aws.String("echo"),
		DestinationConfig: &types.DestinationConfig{OnSuccess: &types.OnSuccess{Destination: aws.String("arn:aws:sqs:us-east-1:000000000000:done")}},
	}); err != nil {
		return err
	}
	sc := scheduler.New(scheduler.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.url),
		Credentials: awscreds.NewStaticCredentialsProvider(s.key.AccessKeyID, s.key.SecretAccessKey, "")})

	// Every record reaches the destination; a reader follows it and
	// reports when each one finished.
	type done struct {
		key string
		at  time.Time
	}
	records := make(chan done, 4096)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	resp, err := s.do(rctx, "GET", "/moat/v1/destinations/done?follow=1", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	go func() {
		dec := json.NewDecoder(bufio.NewReader(resp.Body))
		for {
			var rec struct {
				Timestamp      string `json:"timestamp"`
				RequestPayload struct {
					Key string `json:"key"`
				} `json:"requestPayload"`
			}
			if err := dec.Decode(&rec); err != nil {
				close(records)
				return
			}
			at, _ := time.Parse("2006-01-02T15:04:05.000Z", rec.Timestamp)
			records <- done{rec.RequestPayload.Key, at}
		}
	}()
	wait := func(want map[string]time.Time, into *[]time.Duration) error {
		deadline := time.After(60 * time.Second)
		for len(want) > 0 {
			select {
			case r, ok := <-records:
				if !ok {
					return fmt.Errorf("destination stream ended")
				}
				if t0, ok := want[r.key]; ok {
					*into = append(*into, r.at.Sub(t0))
					delete(want, r.key)
				}
			case <-deadline:
				return fmt.Errorf("%d records missing", len(want))
			}
		}
		return nil
	}
	// Warm the function up: the figures are of the path, not of a cold start.
	warm := map[string]time.Time{"warm": time.Now()}
	if _, err := s.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo"), InvocationType: types.InvocationTypeEvent,
		Payload: []byte(`{"key":"warm"}`)}); err != nil {
		return err
	}
	var ignore []time.Duration
	if err := wait(warm, &ignore); err != nil {
		return err
	}

	var viaSchedule, viaInvoke []time.Duration
	for r := range rounds {
		// n one-time schedules, all for the same second.
		tick := time.Now().UTC().Add(2 * time.Second).Truncate(time.Second).Add(time.Second)
		want := map[string]time.Time{}
		for i := range n {
			key := "s" + strconv.Itoa(r) + "-" + strconv.Itoa(i)
			if _, err := sc.CreateSchedule(ctx, &scheduler.CreateScheduleInput{
				Name: aws.String(key), ScheduleExpression: aws.String("at(" + tick.Format("2006-01-02T15:04:05") + ")"),
				ActionAfterCompletion: stypes.ActionAfterCompletionDelete,
				FlexibleTimeWindow:    &stypes.FlexibleTimeWindow{Mode: stypes.FlexibleTimeWindowModeOff},
				Target: &stypes.Target{Arn: aws.String("arn:aws:lambda:us-east-1:000000000000:function:echo"),
					RoleArn: aws.String("arn:aws:iam::000000000000:role/bench"), Input: aws.String(`{"key":"` + key + `"}`)},
			}); err != nil {
				return err
			}
			want[key] = tick
		}
		if err := wait(want, &viaSchedule); err != nil {
			return fmt.Errorf("schedules, round %d: %w", r, err)
		}
		// The same number of Event invocations, sent at once.
		want = map[string]time.Time{}
		for i := range n {
			key := "i" + strconv.Itoa(r) + "-" + strconv.Itoa(i)
			want[key] = time.Now()
			if _, err := s.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo"), InvocationType: types.InvocationTypeEvent,
				Payload: []byte(`{"key":"` + key + `"}`)}); err != nil {
				return err
			}
		}
		if err := wait(want, &viaInvoke); err != nil {
			return fmt.Errorf("invokes, round %d: %w", r, err)
		}
	}
	fmt.Printf("schedule tick -> function done (%d ticks in one second, %d rounds): p50 %s p99 %s max %s\n",
		n, rounds, pct(viaSchedule, 50), pct(viaSchedule, 99), pct(viaSchedule, 100))
	fmt.Printf("Event Invoke sent -> function done (%d at once, %d rounds):       p50 %s p99 %s max %s\n",
		n, rounds, pct(viaInvoke, 50), pct(viaInvoke, 99), pct(viaInvoke, 100))
	return nil
}
