package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/aws/smithy-go"
)

var getCommand = &command{
	name:    "get",
	group:   groupFunctions,
	args:    "NAME [flags]",
	summary: "show a function's configuration, sandbox and isolation",
	help: `
Show the function NAME ($LATEST, or --qualifier's version or alias): its
configuration, the names of its environment variables, its reserved
concurrency, its sandbox settings (ephemeral, and each egress grant with the
addresses moat pinned its host name to, then every resolved grant) and the
isolation this node gives its instances: the walls applied, and those
missing with the reason.

--output json prints the GetFunction response as moat sends it, environment
variable values included.`,
	run: runGet,
}

// getView is the part of a GetFunction response that get's text output
// shows.
type getView struct {
	Configuration struct {
		functionView
		Environment *struct {
			Variables map[string]string `json:"Variables"`
			Error     *struct {
				ErrorCode string `json:"ErrorCode"`
				Message   string `json:"Message"`
			} `json:"Error"`
		} `json:"Environment"`
	} `json:"Configuration"`
	Concurrency *struct {
		ReservedConcurrentExecutions *int `json:"ReservedConcurrentExecutions"`
	} `json:"Concurrency"`
	// Isolation is moat's own: {"applied": {wall: on}, "missing": {wall: why}}.
	Isolation any `json:"Isolation"`
}

func runGet(ctx context.Context, c *cmdCtx) error {
	c.clientFlags()
	c.outputFlag()
	qualifier := c.fs.String("qualifier", "", "show this `version or alias`")
	pos, err := c.parseN(1, 1)
	if err != nil {
		return err
	}
	cfg, err := c.config()
	if err != nil {
		return err
	}
	q := url.Values{}
	if *qualifier != "" {
		q.Set("Qualifier", *qualifier)
	}
	// The SDK's GetFunction would drop Sandbox and Isolation.
	const op = "GetFunction"
	b, err := c.moatCall(ctx, cfg, op, http.MethodGet, "/2015-03-31/functions/"+url.PathEscape(pos[0]), q, nil)
	if err != nil {
		return err
	}
	if c.json() {
		var buf bytes.Buffer
		if err := json.Indent(&buf, b, "", "  "); err != nil {
			return fmt.Errorf("indent response: %w", err)
		}
		buf.WriteByte('\n')
		_, err = c.stdout.Write(buf.Bytes())
		return err
	}
	text, err := renderFunction(b)
	if err != nil {
		return &smithy.OperationError{ServiceID: "moat", OperationName: op, Err: fmt.Errorf("decode response: %w", err)}
	}
	_, err = io.WriteString(c.stdout, text)
	return err
}

// renderFunction is get's text output for a GetFunction response body.
// Every line ends with a newline.
func renderFunction(body []byte) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // Isolation's numbers print as sent
	var v getView
	if err := dec.Decode(&v); err != nil {
		return "", err
	}
	fc := &v.Configuration
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 1, ' ', 0)
	row := func(label string, values ...string) {
		if len(values) == 0 {
			values = []string{"-"}
		}
		for i, val := range values {
			if i > 0 {
				label = ""
			} else {
				label += ":"
			}
			fmt.Fprintf(tw, "%s\t%s\n", label, oneLine(val))
		}
	}
	row("FunctionName", orDash(fc.FunctionName))
	row("FunctionArn", orDash(fc.FunctionArn))
	row("Version", orDash(fc.Version))
	row("Runtime", orDash(fc.Runtime))
	row("Handler", orDash(fc.Handler))
	row("Description", orDash(fc.Description))
	row("MemorySize", fmt.Sprintf("%d MB", fc.MemorySize))
	row("Timeout", fmt.Sprintf("%d s", fc.Timeout))
	if fc.EphemeralStorage != nil {
		row("EphemeralStorage", fmt.Sprintf("%d MB", fc.EphemeralStorage.Size))
	}
	row("CodeSize", fmt.Sprintf("%d bytes", fc.CodeSize))
	row("CodeSha256", orDash(fc.CodeSha256))
	row("LastModified", orDash(fc.LastModified))
	row("State", orDash(fc.State))
	row("RevisionId", orDash(fc.RevisionId))
	switch env := fc.Environment; {
	case env == nil:
		row("Environment", "none")
	case env.Error != nil:
		row("Environment", "not readable: "+env.Error.ErrorCode+": "+env.Error.Message)
	case len(env.Variables) == 0:
		row("Environment", "none")
	default:
		row("Environment", strings.Join(slices.Sorted(maps.Keys(env.Variables)), ", ")+" (values: --output json)")
	}
	if v.Concurrency != nil && v.Concurrency.ReservedConcurrentExecutions != nil {
		row("ReservedConcurrency", fmt.Sprint(*v.Concurrency.ReservedConcurrentExecutions))
	} else {
		row("ReservedConcurrency", "none")
	}
	tw.Flush()

	b.WriteString("Sandbox:\n")
	sb := fc.Sandbox
	row("  Ephemeral", ephemeralText(sb))
	row("  Mode", modeText(sb))
	row("  OnDenial", onDenialText(sb))
	row("  Egress", egressText(sb)...)
	if sb != nil && len(sb.Resolved) > 0 {
		row("  Resolved", sb.Resolved...)
	}
	tw.Flush()

	b.WriteString("Isolation:\n")
	if v.Isolation == nil {
		b.WriteString("  not reported\n")
		return b.String(), nil
	}
	iso := v.Isolation
	if m, ok := iso.(map[string]any); ok {
		noneIfEmpty(m, "missing")
	}
	var lines []string
	flatten("", iso, &lines)
	for _, l := range lines {
		b.WriteString("  " + oneLine(l) + "\n")
	}
	return b.String(), nil
}

// oneLine keeps a value that came from the server on its line: control
// characters, newlines among them, are shown escaped.
func oneLine(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return s
	}
	q := fmt.Sprintf("%q", s)
	return q[1 : len(q)-1]
}
