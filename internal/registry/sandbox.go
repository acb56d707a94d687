package registry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"moat.dev/moat/internal/egress"
)

// MaxEgressGrants bounds a function's egress list.
const MaxEgressGrants = 64

// checkSandbox validates moat's sandbox settings and pins host names of
// egress grants to their addresses. It returns nil for an empty config.
func (r *Registry) checkSandbox(ctx context.Context, in *SandboxConfig) (*SandboxConfig, error) {
	if in == nil || (in.Ephemeral == "" && len(in.Egress) == 0 && in.Mode == "" && in.OnDenial == "") {
		return nil, nil
	}
	switch in.Ephemeral {
	case EphemeralNone, EphemeralPerInvocation:
	default:
		return nil, invalid("Sandbox.Ephemeral must be %q or empty, not %q.", EphemeralPerInvocation, in.Ephemeral)
	}
	switch in.Mode {
	case ModeMonitor, ModeEnforce:
	case "monitor":
		in.Mode = ModeMonitor
	default:
		return nil, invalid("Sandbox.Mode must be %q, %q or empty, not %q.", "monitor", ModeEnforce, in.Mode)
	}
	switch in.OnDenial {
	case OnDenialNothing, OnDenialRecycle:
	default:
		return nil, invalid("Sandbox.OnDenial must be %q or empty, not %q.", OnDenialRecycle, in.OnDenial)
	}
	if len(in.Egress) > MaxEgressGrants {
		return nil, invalid("Sandbox.Egress has %d entries; at most %d are allowed.", len(in.Egress), MaxEgressGrants)
	}
	out := &SandboxConfig{Ephemeral: in.Ephemeral, Mode: in.Mode, OnDenial: in.OnDenial}
	for _, g := range in.Egress {
		resolved, host, addrs, err := r.resolveGrant(ctx, g)
		if err != nil {
			return nil, invalid("Sandbox.Egress entry %q: %s", g, err.Error())
		}
		out.Egress = append(out.Egress, strings.TrimSpace(g))
		out.Resolved = append(out.Resolved, resolved...)
		if host != "" {
			if out.Hosts == nil {
				out.Hosts = map[string][]string{}
			}
			out.Hosts[host] = addrs
		}
	}
	return out, nil
}

// resolver resolves egress host names at deploy time.
var resolver = net.DefaultResolver

// resolveGrant validates one egress grant and returns it with a host name
// resolved to every address it has now (pinned: later DNS changes do not
// widen what the function may reach).
func (r *Registry) resolveGrant(ctx context.Context, s string) (grants []string, host string, addrs []string, err error) {
	s = strings.TrimSpace(s)
	i := strings.LastIndex(s, ":")
	if i <= 0 {
		return nil, "", nil, errors.New("want DESTINATION:PORTS[/PROTO], for example 10.0.0.0/8:443 or api.example.com:443")
	}
	host, rest := strings.Trim(s[:i], "[]"), s[i+1:]
	if _, err := netip.ParsePrefix(host); err == nil || isAddr(host) {
		g, err := egress.ParseGrant(s)
		if err != nil {
			return nil, "", nil, err
		}
		return []string{g.String()}, "", nil, nil
	}
	if len(host) > 253 || strings.ContainsAny(host, "/ \t") {
		return nil, "", nil, fmt.Errorf("%q is not an address, a CIDR block or a host name", host)
	}
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ips, err := resolver.LookupNetIP(lctx, "ip", host)
	if err != nil || len(ips) == 0 {
		return nil, "", nil, fmt.Errorf("host %q does not resolve: %v", host, err)
	}
	for _, a := range ips {
		a = a.Unmap()
		dest := a.String()
		if a.Is6() {
			dest = "[" + dest + "]"
		}
		g, err := egress.ParseGrant(dest + ":" + rest)
		if err != nil {
			return nil, "", nil, err
		}
		grants = append(grants, g.String())
		addrs = append(addrs, a.String())
	}
	return grants, host, addrs, nil
}

func isAddr(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}
