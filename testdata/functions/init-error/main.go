// Command init-error is a Lambda bootstrap that fails during init: it
// panics before it ever calls the Runtime API, the way a function whose
// configuration is missing does.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
)

func setup() error {
	return errors.New("init-error: setup failed on purpose")
}

func main() {
	fmt.Fprintln(os.Stderr, "init-error: starting")
	if err := setup(); err != nil {
		panic(err)
	}
	lambda.Start(func() error { return nil })
}
