package cli

import (
	"context"
	"embed"
	"errors"
	"io/fs"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// embedded holds the example code packages that `make examples` writes into
// examples/ before moat is built. The directory always exists (it holds a
// committed README), so moat builds without them; the zips are optional.
//
//go:embed examples
var embedded embed.FS

func bundledExamplesFS() fs.FS {
	sub, err := fs.Sub(embedded, "examples")
	if err != nil {
		panic(err) // the directory is part of the source tree
	}
	return sub
}

// bundledExample is a code package in the binary and the function it is
// deployed as.
type bundledExample struct {
	file, function, handler, description string
}

var bundledExamples = []bundledExample{
	{"echo-go.zip", "echo", "bootstrap", "moat example: returns its event (examples/echo-go)"},
	{"shell-runtime.zip", "hello-shell", "function.handler", "moat example: a custom runtime in sh (examples/shell-runtime)"},
}

// deployExamples creates the bundled example functions that do not exist
// yet. Failures are logged, never fatal: the node runs on without them.
func (a *app) deployExamples(ctx context.Context, log *slog.Logger, cfg clientConfig) {
	cl := a.lambdaClient(cfg)
	found := 0
	for _, ex := range bundledExamples {
		zip, err := fs.ReadFile(a.examples, ex.file)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		found++
		l := log.With("function", ex.function)
		if err != nil {
			l.Warn("read bundled example", "err", err)
			continue
		}
		_, err = cl.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(ex.function)})
		if err == nil {
			l.Info("example function already exists; left as it is")
			continue
		}
		if !isNotFound(err) {
			if ctx.Err() == nil {
				l.Warn("deploy example", "err", errorLine("deploy", err))
			}
			continue
		}
		_, err = cl.CreateFunction(ctx, &lambda.CreateFunctionInput{
			FunctionName: aws.String(ex.function),
			Code:         &types.FunctionCode{ZipFile: zip},
			Role:         aws.String(defaultRole),
			Runtime:      types.RuntimeProvidedal2023,
			Handler:      aws.String(ex.handler),
			Description:  aws.String(ex.description),
			MemorySize:   aws.Int32(128),
			Timeout:      aws.Int32(10),
			PackageType:  types.PackageTypeZip,
		})
		if err != nil {
			if ctx.Err() == nil {
				l.Warn("deploy example", "err", errorLine("deploy", err))
			}
			continue
		}
		l.Info("example function deployed", "try", "moat invoke "+ex.function+` --payload '{"hello":"world"}'`)
	}
	if found == 0 {
		log.Warn("this moat binary has no bundled examples; build it with 'make up' (or 'make examples' first)")
	}
}
