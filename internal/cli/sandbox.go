package cli

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Values of --ephemeral, and the Sandbox.Ephemeral each one sends.
const (
	ephemeralPerInvocation = "per-invocation"
	ephemeralReuse         = "reuse" // sent as ""
)

// Values of --mode; monitor is sent as "".
const (
	modeMonitor = "monitor"
	modeEnforce = "enforce"
)

// Values of --on-denial; report is sent as "".
const (
	onDenialReport  = "report"
	onDenialRecycle = "recycle"
)

// sandboxChange is what deploy's --ephemeral, --mode, --on-denial and --egress ask for. A nil
// field was not given: a new function gets the default for it, an existing
// one keeps its current value.
type sandboxChange struct {
	ephemeral *string  // Sandbox.Ephemeral to send: "per-invocation" or ""
	mode      *string  // --mode: "monitor" or "enforce"
	onDenial  *string  // --on-denial: "report" or "recycle"
	egress    []string // nil: not given; empty: none
}

// sandboxBody is the UpdateFunctionConfiguration body that sets a
// function's Sandbox, and nothing else. Both fields are always sent: moat
// replaces the whole Sandbox, and {} resets it.
type sandboxBody struct {
	Sandbox struct {
		Ephemeral string   `json:"Ephemeral"`
		Mode      string   `json:"Mode"`
		OnDenial  string   `json:"OnDenial"`
		Egress    []string `json:"Egress"`
	} `json:"Sandbox"`
	// RevisionId is set when the body carries current values read back
	// from moat, so that a change made meanwhile is refused, not undone.
	RevisionId string `json:"RevisionId,omitempty"`
}

// applySandbox sends change as an UpdateFunctionConfiguration of its own,
// through moat's client (the SDK cannot send Sandbox), and returns the
// configuration moat answers with. For an existing function, a setting
// change leaves out is first read back from moat, so that it is kept.
func (c *cmdCtx) applySandbox(ctx context.Context, cfg clientConfig, name string, change sandboxChange, existing bool) (functionView, error) {
	var body sandboxBody
	body.Sandbox.Egress = []string{}
	if change.ephemeral != nil {
		body.Sandbox.Ephemeral = *change.ephemeral
	}
	if change.egress != nil {
		body.Sandbox.Egress = change.egress
	}
	if change.mode != nil && *change.mode == modeEnforce {
		body.Sandbox.Mode = modeEnforce
	}
	if change.onDenial != nil && *change.onDenial == onDenialRecycle {
		body.Sandbox.OnDenial = onDenialRecycle
	}
	path := "/2015-03-31/functions/" + url.PathEscape(name) + "/configuration"
	if existing && (change.ephemeral == nil || change.egress == nil || change.mode == nil || change.onDenial == nil) {
		const op = "GetFunctionConfiguration"
		b, err := c.moatCall(ctx, cfg, op, http.MethodGet, path, nil, nil)
		if err != nil {
			return functionView{}, err
		}
		var cur functionView
		if err := decodeResponse(op, b, &cur); err != nil {
			return functionView{}, err
		}
		if cur.Sandbox != nil {
			if change.ephemeral == nil {
				body.Sandbox.Ephemeral = cur.Sandbox.Ephemeral
			}
			if change.egress == nil && cur.Sandbox.Egress != nil {
				body.Sandbox.Egress = cur.Sandbox.Egress
			}
			if change.mode == nil {
				body.Sandbox.Mode = cur.Sandbox.Mode
			}
			if change.onDenial == nil {
				body.Sandbox.OnDenial = cur.Sandbox.OnDenial
			}
		}
		body.RevisionId = cur.RevisionId
	}
	const op = "UpdateFunctionConfiguration"
	b, err := c.moatCall(ctx, cfg, op, http.MethodPut, path, nil, body)
	if err != nil {
		return functionView{}, err
	}
	var v functionView
	err = decodeResponse(op, b, &v)
	return v, err
}

// sandboxNotApplied is deploy's failure when moat refused the sandbox
// settings: the API error as usual, then what state that leaves the
// function in. A new function was deleted again (derr: how that went);
// an existing one was not changed at all.
func sandboxNotApplied(name string, created bool, err, derr error) error {
	state := "was not changed: its sandbox settings were refused, so neither its code nor its configuration was updated"
	if created {
		state = "was not created: its sandbox settings were refused"
		if derr != nil {
			state = "was created, but its sandbox settings were refused and deleting it again failed (" + derr.Error() + "): it has the defaults (egress none, ephemeral reuse); delete it or deploy again"
		}
	}
	return &exitError{code: 1, msg: errorLine("deploy", err) + "\n" +
		fmt.Sprintf("moat: deploy: function %s %s", name, state)}
}

// ephemeralText is Sandbox.Ephemeral as --ephemeral spells it.
func ephemeralText(sb *sandboxView) string {
	if sb == nil || sb.Ephemeral == "" {
		return ephemeralReuse
	}
	return sb.Ephemeral
}

// modeText is Sandbox.Mode as --mode spells it.
func modeText(sb *sandboxView) string {
	if sb == nil || sb.Mode == "" {
		return modeMonitor
	}
	return sb.Mode
}

// onDenialText is Sandbox.OnDenial as --on-denial spells it.
func onDenialText(sb *sandboxView) string {
	if sb == nil || sb.OnDenial == "" {
		return onDenialReport
	}
	return sb.OnDenial
}

// egressText renders each grant, a host name's grant followed by the
// addresses moat pinned it to; "none" for no grants.
func egressText(sb *sandboxView) []string {
	if sb == nil || len(sb.Egress) == 0 {
		return []string{"none"}
	}
	out := make([]string, len(sb.Egress))
	for i, g := range sb.Egress {
		out[i] = g
		if j := strings.LastIndexByte(g, ':'); j > 0 {
			if addrs, ok := sb.Hosts[strings.Trim(g[:j], "[]")]; ok {
				out[i] += " -> " + strings.Join(addrs, ", ")
			}
		}
	}
	return out
}

// sandboxLine is deploy's one-line account of a function's sandbox.
func sandboxLine(sb *sandboxView) string {
	return fmt.Sprintf("sandbox: ephemeral %s; mode %s; on denial %s; egress %s", ephemeralText(sb), modeText(sb), onDenialText(sb), strings.Join(egressText(sb), "; "))
}
