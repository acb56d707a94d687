package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"

	"moat.dev/moat/internal/codepkg"
)

// defaultRole is the execution role recorded for functions created without
// --role. Lambda requires one; moat grants permissions by its own policy.
const defaultRole = "arn:aws:iam::000000000000:role/moat-function"

var deployCommand = &command{
	name:    "deploy",
	group:   groupFunctions,
	args:    "NAME DIR|ZIP [flags]",
	summary: "create a function, or update its code and configuration",
	help: `
Deploy the code in DIR, zipped with its files' exec bits kept, or the zip
file ZIP, as the function NAME.

A new function is created with the flags' values, or their defaults. For an
existing one the sandbox settings (below) are applied first, then the code
is replaced (UpdateFunctionCode), then the configuration flags given on
this command line are applied (UpdateFunctionConfiguration); flags left out
keep their current values. Sandbox settings moat refuses (an invalid grant,
a host name that does not resolve) leave an existing function as it was,
and a new one is not kept.
--env replaces the function's whole environment.

--egress and --ephemeral are moat's own sandbox settings, sent after a new
function is created and before an existing one is updated. --egress replaces the list of destinations
its instances may reach: CIDR:PORTS[/PROTO] or HOST:PORTS[/PROTO], such as
198.51.100.0/24:443, api.example.com:443 or [2001:db8::1]:8000-8100/udp.
Repeat it for more; --egress none (the default) leaves them only loopback.
moat resolves host names when the settings are applied and pins them: the
instances have no DNS. --ephemeral per-invocation gives every invocation a
fresh instance; reuse (the default) keeps warm instances, as Lambda does.
Given one of the two, an existing function keeps its current value of the
other (its grants are sent again, and their host names pinned again).
moat checks the settings; if it refuses them, the function has been
created or updated all the same, without them, and moat exits 1.

Custom runtimes start the file named bootstrap at the root of the package.`,
	run: runDeploy,
}

func runDeploy(ctx context.Context, c *cmdCtx) error {
	c.clientFlags()
	c.outputFlag()
	memory := c.fs.Int("memory", 128, "memory limit in `MB`")
	timeout := c.fs.Int("timeout", 3, "invocation timeout in `seconds`")
	var env envFlag
	c.fs.Var(&env, "env", "set the environment variable `KEY=VALUE`; repeat for more")
	handler := c.fs.String("handler", "bootstrap", "handler `name`, given to the runtime as _HANDLER")
	runtime := c.fs.String("runtime", string(types.RuntimeProvidedal2023), "runtime `identifier`")
	description := c.fs.String("description", "", "`text` describing the function")
	ephemeral := c.fs.Int("ephemeral-storage", 512, "size of /tmp in `MB`")
	role := c.fs.String("role", defaultRole, "execution role `ARN` recorded with the function")
	var egress egressFlag
	c.fs.Var(&egress, "egress", "let instances reach `GRANT` (CIDR:PORTS[/PROTO] or HOST:PORTS[/PROTO]); repeat for more, or none")
	ephemeralMode := c.fs.String("ephemeral", "", "`per-invocation|reuse`: a fresh instance for every invocation, or warm instances reused (the default)")
	mode := c.fs.String("mode", "", "`monitor|enforce`: alert on behaviour outside the approved profile (the default), or also refuse it in the kernel")
	onDenial := c.fs.String("on-denial", "", "`report|recycle`: report what the sandbox refuses (the default), or also kill escape attempts on the spot and destroy the instance after the invocation")
	pos, err := c.parseN(2, 2)
	if err != nil {
		return err
	}
	sandbox, err := sandboxFlags(c, *ephemeralMode, *mode, *onDenial, egress)
	if err != nil {
		return err
	}
	name := pos[0]
	code, err := readCode(pos[1])
	if err != nil {
		return err
	}
	cfg, err := c.config()
	if err != nil {
		return err
	}
	cl := c.lambdaClient(cfg)

	var envVars *types.Environment
	if env.vars != nil {
		envVars = &types.Environment{Variables: env.vars}
	}
	_, err = cl.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: &name})
	if isNotFound(err) {
		out, err := cl.CreateFunction(ctx, &lambda.CreateFunctionInput{
			FunctionName:     &name,
			Code:             &types.FunctionCode{ZipFile: code},
			Role:             role,
			Runtime:          types.Runtime(*runtime),
			Handler:          handler,
			Description:      description,
			MemorySize:       aws.Int32(int32(*memory)),
			Timeout:          aws.Int32(int32(*timeout)),
			EphemeralStorage: &types.EphemeralStorage{Size: aws.Int32(int32(*ephemeral))},
			Environment:      envVars,
			PackageType:      types.PackageTypeZip,
		})
		if err != nil {
			return err
		}
		view := viewOf[functionView](out)
		if sandbox != nil {
			if view, err = c.applySandbox(ctx, cfg, name, *sandbox, false); err != nil {
				// Leave nothing behind: a function without the walls
				// it was deployed with is not what was asked for.
				_, derr := cl.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: &name})
				return sandboxNotApplied(name, true, err, derr)
			}
		}
		return c.printDeployed("created", view, sandbox != nil)
	}
	if err != nil {
		return err
	}

	// The sandbox settings go first: moat checks them (and resolves the
	// host names of --egress) before anything else changes, so that a
	// refusal leaves the function as it was.
	var sbView *functionView
	if sandbox != nil {
		v, err := c.applySandbox(ctx, cfg, name, *sandbox, true)
		if err != nil {
			return sandboxNotApplied(name, false, err, nil)
		}
		sbView = &v
	}
	codeOut, err := cl.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: &name, ZipFile: code})
	if err != nil {
		return err
	}
	view := viewOf[functionView](codeOut)
	if sbView != nil {
		view.Sandbox = sbView.Sandbox
	}
	in := &lambda.UpdateFunctionConfigurationInput{FunctionName: &name}
	changed := false
	set := func(flag string, apply func()) {
		if c.isSet(flag) {
			apply()
			changed = true
		}
	}
	set("memory", func() { in.MemorySize = aws.Int32(int32(*memory)) })
	set("timeout", func() { in.Timeout = aws.Int32(int32(*timeout)) })
	set("env", func() { in.Environment = envVars })
	set("handler", func() { in.Handler = handler })
	set("runtime", func() { in.Runtime = types.Runtime(*runtime) })
	set("description", func() { in.Description = description })
	set("ephemeral-storage", func() { in.EphemeralStorage = &types.EphemeralStorage{Size: aws.Int32(int32(*ephemeral))} })
	set("role", func() { in.Role = role })
	if changed {
		out, err := cl.UpdateFunctionConfiguration(ctx, in)
		if err != nil {
			return err
		}
		sb := view.Sandbox
		view = viewOf[functionView](out)
		if view.Sandbox == nil {
			view.Sandbox = sb
		}
	}
	return c.printDeployed("updated", view, sandbox != nil)
}

// sandboxFlags returns what --ephemeral, --mode, --on-denial and --egress ask for, or
// nil when none was given.
func sandboxFlags(c *cmdCtx, ephemeral, mode, onDenial string, egress egressFlag) (*sandboxChange, error) {
	var ch sandboxChange
	if c.isSet("on-denial") {
		switch onDenial {
		case onDenialReport, onDenialRecycle:
		default:
			return nil, usagef("--on-denial must be %s or %s, not %q", onDenialReport, onDenialRecycle, onDenial)
		}
		ch.onDenial = &onDenial
	}
	if c.isSet("mode") {
		switch mode {
		case modeMonitor, modeEnforce:
		default:
			return nil, usagef("--mode must be %s or %s, not %q", modeMonitor, modeEnforce, mode)
		}
		ch.mode = &mode
	}
	if c.isSet("ephemeral") {
		switch ephemeral {
		case ephemeralPerInvocation:
		case ephemeralReuse:
			ephemeral = ""
		default:
			return nil, usagef("--ephemeral must be %s or %s, not %q", ephemeralPerInvocation, ephemeralReuse, ephemeral)
		}
		ch.ephemeral = &ephemeral
	}
	if egress.set {
		ch.egress = append([]string{}, egress.grants...)
	}
	if ch.ephemeral == nil && ch.egress == nil && ch.mode == nil && ch.onDenial == nil {
		return nil, nil
	}
	return &ch, nil
}

// printDeployed reports the deployed function; withSandbox adds its
// sandbox settings, as moat applied them.
func (c *cmdCtx) printDeployed(what string, v functionView, withSandbox bool) error {
	if c.json() {
		return printJSON(c.stdout, v)
	}
	msg := fmt.Sprintf("%s %s (%d bytes, sha256 %s)\n", what, v.FunctionName, v.CodeSize, orDash(v.CodeSha256))
	if withSandbox {
		msg += sandboxLine(v.Sandbox) + "\n"
	}
	_, err := io.WriteString(c.stdout, msg)
	return err
}

// readCode returns the zip to upload for path: the zipped tree if it is a
// directory, else the file itself, which must be a zip.
func readCode(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, usagef("%v", err)
	}
	if fi.IsDir() {
		b, err := codepkg.Zip(path)
		if err != nil {
			return nil, fmt.Errorf("zip %s: %w", path, err)
		}
		return b, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if !bytes.HasPrefix(b, []byte("PK\x03\x04")) && !bytes.HasPrefix(b, []byte("PK\x05\x06")) {
		return nil, usagef("%s is neither a directory nor a zip file", path)
	}
	return b, nil
}

func isNotFound(err error) bool {
	var nf *types.ResourceNotFoundException
	var ae smithy.APIError
	return errors.As(err, &nf) || errors.As(err, &ae) && ae.ErrorCode() == "ResourceNotFoundException"
}

var lsCommand = &command{
	name:    "ls",
	group:   groupFunctions,
	args:    "[flags]",
	summary: "list functions",
	help: `
List every function ($LATEST configurations), following all pages.
EGRESS is the number of egress grants of each (see 'moat deploy -h');
'moat get NAME' shows them.`,
	run: func(ctx context.Context, c *cmdCtx) error {
		c.clientFlags()
		c.outputFlag()
		if _, err := c.parseN(0, 0); err != nil {
			return err
		}
		cfg, err := c.config()
		if err != nil {
			return err
		}
		fns, err := c.listFunctions(ctx, cfg)
		if err != nil {
			return err
		}
		if c.json() {
			return printJSON(c.stdout, map[string]any{"Functions": fns})
		}
		t := newTable(c.stdout, "NAME", "RUNTIME", "MEMORY", "TIMEOUT", "CODE SIZE", "LAST MODIFIED", "EGRESS")
		for _, f := range fns {
			egress := 0
			if f.Sandbox != nil {
				egress = len(f.Sandbox.Egress)
			}
			t.row(f.FunctionName, orDash(f.Runtime), fmt.Sprintf("%d MB", f.MemorySize),
				fmt.Sprintf("%d s", f.Timeout), f.CodeSize, orDash(f.LastModified), egress)
		}
		return t.flush()
	},
}

// listFunctions returns every function's $LATEST configuration, following
// all pages (ListFunctions). It asks moat directly rather than through the
// SDK, which would drop their Sandbox.
func (c *cmdCtx) listFunctions(ctx context.Context, cfg clientConfig) ([]functionView, error) {
	const op = "ListFunctions"
	fns := []functionView{}
	marker := ""
	for {
		q := url.Values{}
		if marker != "" {
			q.Set("Marker", marker)
		}
		b, err := c.moatCall(ctx, cfg, op, http.MethodGet, "/2015-03-31/functions", q, nil)
		if err != nil {
			return nil, err
		}
		var page struct {
			Functions  []functionView
			NextMarker string
		}
		if err := decodeResponse(op, b, &page); err != nil {
			return nil, err
		}
		fns = append(fns, page.Functions...)
		// A marker that does not move on would loop for ever.
		if page.NextMarker == "" || page.NextMarker == marker {
			return fns, nil
		}
		marker = page.NextMarker
	}
}

var rmCommand = &command{
	name:    "rm",
	group:   groupFunctions,
	args:    "NAME [flags]",
	summary: "delete a function, or one of its versions",
	help: `
Delete the function NAME with all its versions and aliases, or with
--qualifier only that published version.`,
	run: func(ctx context.Context, c *cmdCtx) error {
		c.clientFlags()
		qualifier := c.fs.String("qualifier", "", "delete only this `version`")
		pos, err := c.parseN(1, 1)
		if err != nil {
			return err
		}
		cfg, err := c.config()
		if err != nil {
			return err
		}
		in := &lambda.DeleteFunctionInput{FunctionName: &pos[0]}
		what := pos[0]
		if *qualifier != "" {
			in.Qualifier = qualifier
			what += ":" + *qualifier
		}
		if _, err := c.lambdaClient(cfg).DeleteFunction(ctx, in); err != nil {
			return err
		}
		_, err = fmt.Fprintf(c.stdout, "deleted %s\n", what)
		return err
	},
}

var publishCommand = &command{
	name:    "publish",
	group:   groupFunctions,
	args:    "NAME [flags]",
	summary: "publish an immutable version of a function",
	help: `
Publish the current code and configuration of NAME ($LATEST) as a new
numbered, immutable version and print its number.`,
	run: func(ctx context.Context, c *cmdCtx) error {
		c.clientFlags()
		c.outputFlag()
		description := c.fs.String("description", "", "`text` describing the version")
		pos, err := c.parseN(1, 1)
		if err != nil {
			return err
		}
		cfg, err := c.config()
		if err != nil {
			return err
		}
		in := &lambda.PublishVersionInput{FunctionName: &pos[0]}
		if *description != "" {
			in.Description = description
		}
		out, err := c.lambdaClient(cfg).PublishVersion(ctx, in)
		if err != nil {
			return err
		}
		if c.json() {
			return printJSON(c.stdout, viewOf[functionView](out))
		}
		_, err = fmt.Fprintln(c.stdout, aws.ToString(out.Version))
		return err
	},
}
