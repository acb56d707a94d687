package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmw "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

var invokeCommand = &command{
	name:    "invoke",
	group:   groupFunctions,
	args:    "NAME [flags]",
	summary: "invoke a function and print its response",
	help: `
Invoke the function NAME and print its response payload on stdout.

The event is --payload: inline JSON, @FILE for a file's contents, or - to
read standard input; without it the event is empty. It must be JSON, and is
checked before anything is sent.

If the function fails (X-Amz-Function-Error), its error payload is printed
and moat exits 1. --async queues the event (InvocationType Event) and prints
the request id; --dry-run only checks that the caller may invoke.
--output json prints the response and its metadata as one JSON object.`,
	run: runInvoke,
}

// invokeView is invoke's --output json shape.
type invokeView struct {
	StatusCode      int32  `json:"StatusCode"`
	RequestId       string `json:"RequestId,omitempty"`
	ExecutedVersion string `json:"ExecutedVersion,omitempty"`
	FunctionError   string `json:"FunctionError,omitempty"`
	LogResult       string `json:"LogResult,omitempty"` // decoded
	Payload         any    `json:"Payload,omitempty"`   // the JSON value, or a string when not JSON
}

func runInvoke(ctx context.Context, c *cmdCtx) error {
	c.clientFlags()
	c.outputFlag()
	qualifier := c.fs.String("qualifier", "", "invoke this `version or alias`")
	payloadArg := c.fs.String("payload", "", "the event: `JSON`, @FILE or - for stdin")
	async := c.fs.Bool("async", false, "queue the event and return at once (InvocationType Event)")
	dryRun := c.fs.Bool("dry-run", false, "check permission and parameters only (InvocationType DryRun)")
	tail := c.fs.Bool("tail", false, "print the last 4 KB of the invocation's log on stderr")
	clientContext := c.fs.String("client-context", "", "client context `JSON` given to the function")
	pos, err := c.parseN(1, 1)
	if err != nil {
		return err
	}
	if *async && *dryRun {
		return usagef("--async and --dry-run exclude each other")
	}
	if *tail && (*async || *dryRun) {
		return usagef("--tail needs a synchronous invocation")
	}
	in := &lambda.InvokeInput{FunctionName: &pos[0], InvocationType: types.InvocationTypeRequestResponse}
	switch {
	case *async:
		in.InvocationType = types.InvocationTypeEvent
	case *dryRun:
		in.InvocationType = types.InvocationTypeDryRun
	}
	if *qualifier != "" {
		in.Qualifier = qualifier
	}
	if *tail {
		in.LogType = types.LogTypeTail
	}
	if c.isSet("payload") {
		if in.Payload, err = readPayload(*payloadArg, c.stdin); err != nil {
			return err
		}
	}
	if *clientContext != "" {
		if err := checkJSON([]byte(*clientContext)); err != nil {
			return usagef("--client-context: %v", err)
		}
		in.ClientContext = aws.String(base64.StdEncoding.EncodeToString([]byte(*clientContext)))
	}
	cfg, err := c.config()
	if err != nil {
		return err
	}
	out, err := c.lambdaClient(cfg).Invoke(ctx, in)
	if err != nil {
		return err
	}

	requestID, _ := awsmw.GetRequestIDMetadata(out.ResultMetadata)
	var logTail string
	if out.LogResult != nil {
		b, err := base64.StdEncoding.DecodeString(*out.LogResult)
		if err != nil {
			return fmt.Errorf("decode log tail: %w", err)
		}
		logTail = string(b)
	}
	fnErr := aws.ToString(out.FunctionError)

	if c.json() {
		v := invokeView{
			StatusCode:      out.StatusCode,
			RequestId:       requestID,
			ExecutedVersion: aws.ToString(out.ExecutedVersion),
			FunctionError:   fnErr,
			LogResult:       logTail,
		}
		if len(out.Payload) > 0 {
			if json.Valid(out.Payload) {
				v.Payload = json.RawMessage(out.Payload)
			} else {
				v.Payload = string(out.Payload)
			}
		}
		if err := printJSON(c.stdout, v); err != nil {
			return err
		}
	} else {
		if logTail != "" {
			fmt.Fprint(c.stderr, logTail)
			if logTail[len(logTail)-1] != '\n' {
				fmt.Fprintln(c.stderr)
			}
		}
		switch {
		case *async:
			fmt.Fprintln(c.stdout, requestID)
		case len(out.Payload) > 0:
			c.stdout.Write(out.Payload)
			if !bytes.HasSuffix(out.Payload, []byte("\n")) {
				fmt.Fprintln(c.stdout)
			}
		}
	}
	if fnErr != "" {
		return &exitError{code: 1, msg: fmt.Sprintf("moat: Invoke: function error (%s)", fnErr)}
	}
	return nil
}
