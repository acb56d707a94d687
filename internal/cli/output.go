package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
)

// functionView is the JSON shape of a function configuration that the
// commands print: Lambda's field names, unset fields left out. The SDK has
// one output type per operation (CreateFunctionOutput, PublishVersionOutput,
// types.FunctionConfiguration, ...) with these same fields; viewOf projects
// any of them through their JSON form.
type functionView struct {
	FunctionName     string            `json:"FunctionName"`
	FunctionArn      string            `json:"FunctionArn,omitempty"`
	Version          string            `json:"Version,omitempty"`
	Runtime          string            `json:"Runtime,omitempty"`
	Handler          string            `json:"Handler,omitempty"`
	Description      string            `json:"Description,omitempty"`
	MemorySize       int               `json:"MemorySize,omitempty"`
	Timeout          int               `json:"Timeout,omitempty"`
	EphemeralStorage *ephemeralStorage `json:"EphemeralStorage,omitempty"`
	CodeSize         int64             `json:"CodeSize"`
	CodeSha256       string            `json:"CodeSha256,omitempty"`
	LastModified     string            `json:"LastModified,omitempty"`
	State            string            `json:"State,omitempty"`
	RevisionId       string            `json:"RevisionId,omitempty"`
	// Sandbox is moat's own; the SDK drops it, so only views decoded from
	// moat's responses directly (see moatCall) carry it.
	Sandbox *sandboxView `json:"Sandbox,omitempty"`
}

// sandboxView is moat's Sandbox field of a function configuration.
type sandboxView struct {
	Ephemeral string   `json:"Ephemeral,omitempty"` // "per-invocation" or "" (instances are reused)
	Mode      string   `json:"Mode,omitempty"`      // "enforce" or "" (monitor)
	OnDenial  string   `json:"OnDenial,omitempty"`  // "recycle" or "" (report)
	Egress    []string `json:"Egress,omitempty"`    // the grants as given
	// Resolved is the grants with host names pinned to addresses: what
	// instances are actually allowed to reach.
	Resolved []string            `json:"Resolved,omitempty"`
	Hosts    map[string][]string `json:"Hosts,omitempty"` // host name -> pinned addresses
}

type ephemeralStorage struct {
	Size int `json:"Size"`
}

// aliasView is the JSON shape of an alias.
type aliasView struct {
	Name            string         `json:"Name"`
	AliasArn        string         `json:"AliasArn,omitempty"`
	FunctionVersion string         `json:"FunctionVersion"`
	Description     string         `json:"Description,omitempty"`
	RoutingConfig   *routingConfig `json:"RoutingConfig,omitempty"`
	RevisionId      string         `json:"RevisionId,omitempty"`
}

type routingConfig struct {
	AdditionalVersionWeights map[string]float64 `json:"AdditionalVersionWeights,omitempty"`
}

// viewOf projects an SDK output value onto a view type through JSON: the
// SDK's exported field names are Lambda's own.
func viewOf[V any](v any) V {
	var out V
	b, err := json.Marshal(v)
	if err == nil {
		_ = json.Unmarshal(b, &out)
	}
	return out
}

// printJSON writes v as indented JSON and a newline.
func printJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// table writes aligned columns.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...any) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
	t.row(header...)
	return t
}

func (t *table) row(cells ...any) {
	for i, c := range cells {
		if i > 0 {
			fmt.Fprint(t.tw, "\t")
		}
		fmt.Fprint(t.tw, c)
	}
	fmt.Fprint(t.tw, "\n")
}

func (t *table) flush() error { return t.tw.Flush() }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
