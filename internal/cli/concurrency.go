package cli

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

var concurrencyCommand = &command{
	name:    "concurrency",
	group:   groupFunctions,
	args:    "NAME [N | --delete] [flags]",
	summary: "show, reserve or release a function's concurrency",
	help: `
Without N, print the function's reserved concurrency. With N, reserve N
concurrent invocations for it, which also caps it at N (0 stops all
invocations). --delete releases the reservation.`,
	run: runConcurrency,
}

// concurrencyView is concurrency's --output json shape; null means none is
// reserved.
type concurrencyView struct {
	ReservedConcurrentExecutions *int32 `json:"ReservedConcurrentExecutions"`
}

func runConcurrency(ctx context.Context, c *cmdCtx) error {
	c.clientFlags()
	c.outputFlag()
	del := c.fs.Bool("delete", false, "release the reserved concurrency")
	pos, err := c.parseN(1, 2)
	if err != nil {
		return err
	}
	name := pos[0]
	var n *int32
	if len(pos) == 2 {
		v, err := strconv.ParseInt(pos[1], 10, 32)
		if err != nil || v < 0 {
			return usagef("N must be a whole number from 0 up, not %q", pos[1])
		}
		n = aws.Int32(int32(v))
	}
	if n != nil && *del {
		return usagef("give N or --delete, not both")
	}
	cfg, err := c.config()
	if err != nil {
		return err
	}
	cl := c.lambdaClient(cfg)

	var reserved *int32
	switch {
	case *del:
		if _, err := cl.DeleteFunctionConcurrency(ctx, &lambda.DeleteFunctionConcurrencyInput{FunctionName: &name}); err != nil {
			return err
		}
	case n != nil:
		out, err := cl.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: &name, ReservedConcurrentExecutions: n})
		if err != nil {
			return err
		}
		reserved = out.ReservedConcurrentExecutions
	default:
		out, err := cl.GetFunctionConcurrency(ctx, &lambda.GetFunctionConcurrencyInput{FunctionName: &name})
		if err != nil {
			return err
		}
		reserved = out.ReservedConcurrentExecutions
	}
	if c.json() {
		return printJSON(c.stdout, concurrencyView{reserved})
	}
	if reserved == nil {
		_, err = fmt.Fprintf(c.stdout, "%s: no reserved concurrency\n", name)
	} else {
		_, err = fmt.Fprintf(c.stdout, "%s: reserved concurrency %d\n", name, *reserved)
	}
	return err
}

var asyncConfigCommand = &command{
	name:    "async-config",
	group:   groupFunctions,
	args:    "NAME [--max-retries N] [--max-age S] [--on-failure ARN] [--on-success ARN] | --delete",
	summary: "show or set how asynchronous invocations are retried and where results go",
	help: `
Configure the function's asynchronous (Event) invocations: how many times a
failed event is retried (0 to 2), how old an event may get before it is
dropped (60 to 21600 seconds), and the destinations that receive a record of
each success or final failure. Read delivered records with 'moat destination'.

With no flags, print the current configuration. With flags, replace the
configuration (PutFunctionEventInvokeConfig): settings not given take their
defaults. --delete removes it.`,
	run: runAsyncConfig,
}

// asyncConfigView is async-config's --output json shape.
type asyncConfigView struct {
	FunctionArn              string `json:"FunctionArn,omitempty"`
	MaximumRetryAttempts     *int32 `json:"MaximumRetryAttempts,omitempty"`
	MaximumEventAgeInSeconds *int32 `json:"MaximumEventAgeInSeconds,omitempty"`
	OnSuccess                string `json:"OnSuccess,omitempty"`
	OnFailure                string `json:"OnFailure,omitempty"`
	LastModified             string `json:"LastModified,omitempty"`
}

func runAsyncConfig(ctx context.Context, c *cmdCtx) error {
	c.clientFlags()
	c.outputFlag()
	qualifier := c.fs.String("qualifier", "", "configure this `version or alias` only")
	maxRetries := c.fs.Int("max-retries", 2, "retries of a failed event, `N` from 0 to 2")
	maxAge := c.fs.Int("max-age", 21600, "drop events older than `seconds` (60 to 21600)")
	onFailure := c.fs.String("on-failure", "", "destination `ARN` for events that finally failed")
	onSuccess := c.fs.String("on-success", "", "destination `ARN` for events that succeeded")
	del := c.fs.Bool("delete", false, "remove the configuration")
	pos, err := c.parseN(1, 1)
	if err != nil {
		return err
	}
	name := pos[0]
	setting := c.isSet("max-retries") || c.isSet("max-age") || c.isSet("on-failure") || c.isSet("on-success")
	if *del && setting {
		return usagef("--delete takes no other settings")
	}
	if c.isSet("max-retries") && (*maxRetries < 0 || *maxRetries > 2) {
		return usagef("--max-retries must be 0, 1 or 2")
	}
	if c.isSet("max-age") && (*maxAge < 60 || *maxAge > 21600) {
		return usagef("--max-age must be from 60 to 21600 seconds")
	}
	var q *string
	if *qualifier != "" {
		q = qualifier
	}
	cfg, err := c.config()
	if err != nil {
		return err
	}
	cl := c.lambdaClient(cfg)

	var view asyncConfigView
	switch {
	case *del:
		if _, err := cl.DeleteFunctionEventInvokeConfig(ctx, &lambda.DeleteFunctionEventInvokeConfigInput{FunctionName: &name, Qualifier: q}); err != nil {
			return err
		}
		if c.json() {
			return printJSON(c.stdout, struct{}{})
		}
		_, err := fmt.Fprintf(c.stdout, "%s: asynchronous invocation configuration removed\n", name)
		return err
	case setting:
		in := &lambda.PutFunctionEventInvokeConfigInput{FunctionName: &name, Qualifier: q}
		if c.isSet("max-retries") {
			in.MaximumRetryAttempts = aws.Int32(int32(*maxRetries))
		}
		if c.isSet("max-age") {
			in.MaximumEventAgeInSeconds = aws.Int32(int32(*maxAge))
		}
		if *onFailure != "" || *onSuccess != "" {
			in.DestinationConfig = &types.DestinationConfig{}
			if *onFailure != "" {
				in.DestinationConfig.OnFailure = &types.OnFailure{Destination: onFailure}
			}
			if *onSuccess != "" {
				in.DestinationConfig.OnSuccess = &types.OnSuccess{Destination: onSuccess}
			}
		}
		out, err := cl.PutFunctionEventInvokeConfig(ctx, in)
		if err != nil {
			return err
		}
		view = asyncView(out.FunctionArn, out.MaximumRetryAttempts, out.MaximumEventAgeInSeconds, out.DestinationConfig, out.LastModified)
	default:
		out, err := cl.GetFunctionEventInvokeConfig(ctx, &lambda.GetFunctionEventInvokeConfigInput{FunctionName: &name, Qualifier: q})
		if err != nil {
			return err
		}
		view = asyncView(out.FunctionArn, out.MaximumRetryAttempts, out.MaximumEventAgeInSeconds, out.DestinationConfig, out.LastModified)
	}
	if c.json() {
		return printJSON(c.stdout, view)
	}
	t := newTable(c.stdout, "FUNCTION", "MAX RETRIES", "MAX AGE", "ON SUCCESS", "ON FAILURE")
	t.row(name, optInt(view.MaximumRetryAttempts), optInt(view.MaximumEventAgeInSeconds),
		orDash(view.OnSuccess), orDash(view.OnFailure))
	return t.flush()
}

func asyncView(arn *string, retries, age *int32, dest *types.DestinationConfig, modified *time.Time) asyncConfigView {
	v := asyncConfigView{FunctionArn: aws.ToString(arn), MaximumRetryAttempts: retries, MaximumEventAgeInSeconds: age}
	if dest != nil {
		if dest.OnSuccess != nil {
			v.OnSuccess = aws.ToString(dest.OnSuccess.Destination)
		}
		if dest.OnFailure != nil {
			v.OnFailure = aws.ToString(dest.OnFailure.Destination)
		}
	}
	if modified != nil {
		v.LastModified = modified.UTC().Format(time.RFC3339)
	}
	return v
}

func optInt(p *int32) string {
	if p == nil {
		return "-"
	}
	return strconv.Itoa(int(*p))
}
