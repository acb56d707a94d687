package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

var urlCommand = &command{
	name:    "url",
	group:   groupFunctions,
	args:    "NAME [--auth none|iam] [--cors-origin O]... [--delete] [flags]",
	summary: "show, make or remove a function's URL",
	help: `
Without flags, print the function URL of NAME ($LATEST, or --qualifier
ALIAS). --auth makes one (or changes it): none lets anyone who reaches
moat's URL listener call it, iam takes only requests signed (SigV4,
service lambda) with moat's key. --cors-origin and --cors-method (repeat
them) answer browsers' preflights. --delete removes it: the address stops
answering at once.`,
	run: runURL,
}

// listFlag collects a repeated flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func runURL(ctx context.Context, c *cmdCtx) error {
	c.clientFlags()
	c.outputFlag()
	qualifier := c.fs.String("qualifier", "", "the alias the URL invokes (default $LATEST)")
	auth := c.fs.String("auth", "", "make or change the URL: `none` or iam")
	del := c.fs.Bool("delete", false, "remove the URL")
	var origins, methods listFlag
	c.fs.Var(&origins, "cors-origin", "allow browsers from `ORIGIN` (https://app.example, or *); repeat for more")
	c.fs.Var(&methods, "cors-method", "allow `METHOD` from those origins (GET, POST, ..., or *); repeat for more")
	pos, err := c.parseN(1, 1)
	if err != nil {
		return err
	}
	name := pos[0]
	var authType types.FunctionUrlAuthType
	switch *auth {
	case "":
	case "none", "NONE":
		authType = types.FunctionUrlAuthTypeNone
	case "iam", "AWS_IAM":
		authType = types.FunctionUrlAuthTypeAwsIam
	default:
		return usagef("--auth must be none or iam, not %q", *auth)
	}
	if *del && (*auth != "" || len(origins) > 0 || len(methods) > 0) {
		return usagef("--delete takes no other settings")
	}
	if (len(origins) > 0 || len(methods) > 0) && *auth == "" {
		return usagef("--cors-origin and --cors-method go with --auth")
	}
	cfg, err := c.config()
	if err != nil {
		return err
	}
	cl := c.lambdaClient(cfg)
	var q *string
	if *qualifier != "" {
		q = qualifier
	}
	if *del {
		if _, err := cl.DeleteFunctionUrlConfig(ctx, &lambda.DeleteFunctionUrlConfigInput{FunctionName: &name, Qualifier: q}); err != nil {
			return err
		}
		_, err := fmt.Fprintf(c.stdout, "deleted the URL of %s\n", name)
		return err
	}
	var cors *types.Cors
	if len(origins) > 0 || len(methods) > 0 {
		cors = &types.Cors{AllowOrigins: origins, AllowMethods: methods}
	}
	var view urlView
	switch {
	case *auth != "":
		out, err := cl.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{FunctionName: &name, Qualifier: q, AuthType: authType, Cors: cors})
		var conflict *types.ResourceConflictException
		if errors.As(err, &conflict) {
			up, uerr := cl.UpdateFunctionUrlConfig(ctx, &lambda.UpdateFunctionUrlConfigInput{FunctionName: &name, Qualifier: q, AuthType: authType, Cors: cors})
			if uerr != nil {
				return uerr
			}
			view = urlView{aws.ToString(up.FunctionUrl), string(up.AuthType), aws.ToString(up.FunctionArn)}
			break
		}
		if err != nil {
			return err
		}
		view = urlView{aws.ToString(out.FunctionUrl), string(out.AuthType), aws.ToString(out.FunctionArn)}
	default:
		out, err := cl.GetFunctionUrlConfig(ctx, &lambda.GetFunctionUrlConfigInput{FunctionName: &name, Qualifier: q})
		if err != nil {
			return err
		}
		view = urlView{aws.ToString(out.FunctionUrl), string(out.AuthType), aws.ToString(out.FunctionArn)}
	}
	if c.json() {
		return printJSON(c.stdout, view)
	}
	_, err = fmt.Fprintf(c.stdout, "%s  (%s, %s)\n", view.FunctionURL, view.AuthType, view.FunctionArn)
	return err
}

// urlView is url's --output json shape.
type urlView struct {
	FunctionURL string `json:"FunctionUrl"`
	AuthType    string `json:"AuthType"`
	FunctionArn string `json:"FunctionArn"`
}
