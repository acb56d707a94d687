// Command echo-go is the smallest useful Lambda function: it returns the
// event it receives, byte for byte. moat uses it as its benchmark function,
// so it does nothing else.
package main

import (
	"context"
	"encoding/json"

	"github.com/aws/aws-lambda-go/lambda"
)

func echo(_ context.Context, event json.RawMessage) (json.RawMessage, error) {
	return event, nil
}

func main() {
	lambda.Start(echo)
}
