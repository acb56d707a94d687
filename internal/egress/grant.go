package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Errors callers act on. Every error of ParseGrant, Grant.Validate and
// ResolveHost wraps ErrInvalidGrant or ErrForbidden (or, for a name that
// does not resolve, ErrUnresolvable): all three are the caller's mistake,
// reported at deploy time.
var (
	// ErrInvalidGrant: the grant is malformed (bad CIDR, port, protocol).
	ErrInvalidGrant = errors.New("invalid network grant")
	// ErrForbidden: the grant names a destination no instance may reach
	// (loopback, link-local metadata, moat's own addresses).
	ErrForbidden = errors.New("forbidden network destination")
	// ErrUnresolvable: a granted host name has no address.
	ErrUnresolvable = errors.New("unresolvable host in network grant")
)

// Protocols a grant may name.
const (
	ProtoTCP = "tcp"
	ProtoUDP = "udp"
	ProtoAny = "any"
)

// MaxGrants bounds the grants of one instance (each one is a rule the
// kernel evaluates on every connect and sendmsg).
const MaxGrants = 256

// PortRange is an inclusive range of ports, 1..65535.
type PortRange struct{ From, To uint16 }

// AnyPort is every port.
var AnyPort = PortRange{From: 1, To: 65535}

// Any reports whether r is every port.
func (r PortRange) Any() bool { return r.From <= 1 && r.To == 65535 }

func (r PortRange) String() string {
	switch {
	case r.Any():
		return "*"
	case r.From == r.To:
		return strconv.Itoa(int(r.From))
	default:
		return strconv.Itoa(int(r.From)) + "-" + strconv.Itoa(int(r.To))
	}
}

// Grant allows an instance to reach one destination range: one entry of a
// function's network configuration.
type Grant struct {
	CIDR  netip.Prefix // a network, or a single address as /32 or /128
	Ports PortRange    // 1..65535; AnyPort is all ports
	Proto string       // ProtoTCP (the default when empty), ProtoUDP or ProtoAny
}

// forbidden are destinations no grant may name. The kernel filter refuses
// them even when a wider grant covers them (see filter.go).
var forbidden = []struct {
	prefix netip.Prefix
	why    string
}{
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback (an instance's loopback is its own; the host's is never reachable)"},
	{netip.MustParsePrefix("::1/128"), "loopback (an instance's loopback is its own; the host's is never reachable)"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local, where cloud metadata services live"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("fd00:ec2::254/128"), "the cloud metadata service"},
}

// normalize fills defaults and unmaps IPv4-mapped IPv6 prefixes.
func (g Grant) normalize() Grant {
	if g.Proto == "" {
		g.Proto = ProtoTCP
	}
	if a := g.CIDR.Addr(); a.Is4In6() && g.CIDR.Bits() >= 96 {
		g.CIDR = netip.PrefixFrom(a.Unmap(), g.CIDR.Bits()-96)
	}
	return g
}

// Validate checks a grant: a canonical CIDR without zone, ports within
// 1..65535 in order, a known protocol, and no forbidden destination.
// It returns errors wrapping ErrInvalidGrant or ErrForbidden.
func (g Grant) Validate() error {
	g = g.normalize()
	if !g.CIDR.IsValid() {
		return fmt.Errorf("%w: missing or bad CIDR", ErrInvalidGrant)
	}
	a := g.CIDR.Addr()
	if a.Zone() != "" {
		return fmt.Errorf("%w: %s: addresses with a zone are not allowed", ErrInvalidGrant, g.CIDR)
	}
	if m := g.CIDR.Masked(); m != g.CIDR {
		return fmt.Errorf("%w: %s has host bits set (did you mean %s?)", ErrInvalidGrant, g.CIDR, m)
	}
	if g.Ports.From == 0 || g.Ports.To == 0 {
		return fmt.Errorf("%w: port 0 is not a port (use * for all ports)", ErrInvalidGrant)
	}
	if g.Ports.From > g.Ports.To {
		return fmt.Errorf("%w: port range %d-%d is reversed", ErrInvalidGrant, g.Ports.From, g.Ports.To)
	}
	switch g.Proto {
	case ProtoTCP, ProtoUDP, ProtoAny:
	default:
		return fmt.Errorf("%w: unknown protocol %q (want tcp, udp or any)", ErrInvalidGrant, g.Proto)
	}
	for _, f := range forbidden {
		if within(g.CIDR, f.prefix) {
			return fmt.Errorf("%w: %s is %s", ErrForbidden, g.CIDR, f.why)
		}
	}
	return nil
}

// within reports whether all of p lies inside q.
func within(p, q netip.Prefix) bool {
	return p.Addr().Is4() == q.Addr().Is4() && q.Bits() <= p.Bits() && q.Contains(p.Addr())
}

// String formats g the way ParseGrant reads it: "10.0.0.0/8:443",
// "192.0.2.10:8000-8100/udp", "[2001:db8::1]:*/any".
func (g Grant) String() string {
	g = g.normalize()
	var b strings.Builder
	host := g.CIDR.String()
	if g.CIDR.IsSingleIP() {
		host = g.CIDR.Addr().String()
	}
	if g.CIDR.Addr().Is6() {
		b.WriteString("[" + host + "]")
	} else {
		b.WriteString(host)
	}
	b.WriteString(":" + g.Ports.String())
	if g.Proto != ProtoTCP {
		b.WriteString("/" + g.Proto)
	}
	return b.String()
}

// ParseGrant parses one grant: DEST:PORTS[/PROTO], where DEST is an IPv4
// address or CIDR, or an IPv6 one in brackets; PORTS is a port, a range
// FROM-TO or * for all; PROTO is tcp (the default), udp or any. Examples:
// "10.1.2.0/24:443", "192.0.2.10:8000-8100/udp", "[2001:db8::1]:443",
// "10.0.0.0/8:*". Errors wrap ErrInvalidGrant or ErrForbidden.
func ParseGrant(s string) (Grant, error) {
	g, err := parseGrant(s)
	if err != nil {
		return Grant{}, fmt.Errorf("grant %q: %w", s, err)
	}
	if err := g.Validate(); err != nil {
		return Grant{}, fmt.Errorf("grant %q: %w", s, err)
	}
	return g.normalize(), nil
}

func parseGrant(s string) (Grant, error) {
	var host, rest string
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return Grant{}, fmt.Errorf("%w: missing ] after IPv6 destination", ErrInvalidGrant)
		}
		host, rest = s[1:end], s[end+1:]
		if !strings.HasPrefix(rest, ":") {
			return Grant{}, fmt.Errorf("%w: missing :PORT after ]", ErrInvalidGrant)
		}
		rest = rest[1:]
		if !strings.Contains(host, ":") {
			return Grant{}, fmt.Errorf("%w: brackets are for IPv6 destinations only", ErrInvalidGrant)
		}
	} else {
		i := strings.IndexByte(s, ':')
		if i < 0 {
			return Grant{}, fmt.Errorf("%w: missing :PORT (use :* for all ports)", ErrInvalidGrant)
		}
		if strings.Count(s, ":") > 1 {
			return Grant{}, fmt.Errorf("%w: write IPv6 destinations in brackets, as [2001:db8::/32]:443", ErrInvalidGrant)
		}
		host, rest = s[:i], s[i+1:]
	}
	var g Grant
	var err error
	if strings.Contains(host, "/") {
		g.CIDR, err = netip.ParsePrefix(host)
		if err != nil {
			return Grant{}, fmt.Errorf("%w: bad CIDR %q", ErrInvalidGrant, host)
		}
	} else {
		a, err := netip.ParseAddr(host)
		if err != nil {
			return Grant{}, fmt.Errorf("%w: bad address %q (host names are granted with ResolveHost)", ErrInvalidGrant, host)
		}
		if a.Zone() != "" {
			return Grant{}, fmt.Errorf("%w: %s: addresses with a zone are not allowed", ErrInvalidGrant, host)
		}
		g.CIDR = netip.PrefixFrom(a, a.BitLen())
	}
	ports, proto, hasProto := strings.Cut(rest, "/")
	if hasProto {
		if proto == "" {
			return Grant{}, fmt.Errorf("%w: empty protocol after /", ErrInvalidGrant)
		}
		g.Proto = proto
	} else {
		g.Proto = ProtoTCP
	}
	g.Ports, err = parsePorts(ports)
	if err != nil {
		return Grant{}, err
	}
	return g, nil
}

func parsePorts(s string) (PortRange, error) {
	if s == "*" {
		return AnyPort, nil
	}
	from, to, isRange := strings.Cut(s, "-")
	f, err := parsePort(from)
	if err != nil {
		return PortRange{}, err
	}
	if !isRange {
		return PortRange{f, f}, nil
	}
	t, err := parsePort(to)
	if err != nil {
		return PortRange{}, err
	}
	if f > t {
		return PortRange{}, fmt.Errorf("%w: port range %d-%d is reversed", ErrInvalidGrant, f, t)
	}
	return PortRange{f, t}, nil
}

func parsePort(s string) (uint16, error) {
	if s == "" {
		return 0, fmt.Errorf("%w: missing port (use * for all ports)", ErrInvalidGrant)
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%w: bad port %q", ErrInvalidGrant, s)
		}
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n > 65535 {
		return 0, fmt.Errorf("%w: port %s is above 65535", ErrInvalidGrant, s)
	}
	if n == 0 {
		return 0, fmt.Errorf("%w: port 0 is not a port (use * for all ports)", ErrInvalidGrant)
	}
	return uint16(n), nil
}

// ResolveHost resolves host with r (net.DefaultResolver when nil) at deploy
// time and pins every address it has as a /32 or /128 grant with the given
// ports and protocol, sorted. The function never resolves names itself: its
// grants are these addresses, until the next deploy. A name that does not
// resolve is an error wrapping ErrUnresolvable; a name that resolves to a
// forbidden address is refused with ErrForbidden.
func ResolveHost(ctx context.Context, r *net.Resolver, host string, ports PortRange, proto string) ([]Grant, error) {
	if r == nil {
		r = net.DefaultResolver
	}
	if host == "" {
		return nil, fmt.Errorf("%w: empty host name", ErrInvalidGrant)
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		addrs, err = r.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrUnresolvable, host, err)
		}
		if len(addrs) == 0 {
			return nil, fmt.Errorf("%w: %s has no address", ErrUnresolvable, host)
		}
	}
	var out []Grant
	for _, a := range addrs {
		a = a.Unmap().WithZone("")
		g := Grant{CIDR: netip.PrefixFrom(a, a.BitLen()), Ports: ports, Proto: proto}.normalize()
		if err := g.Validate(); err != nil {
			return nil, fmt.Errorf("host %s resolves to %s: %w", host, a, err)
		}
		out = append(out, g)
	}
	slices.SortFunc(out, compareGrants)
	return slices.Compact(out), nil
}

func compareGrants(a, b Grant) int {
	if c := a.CIDR.Addr().Compare(b.CIDR.Addr()); c != 0 {
		return c
	}
	if c := a.CIDR.Bits() - b.CIDR.Bits(); c != 0 {
		return c
	}
	if c := int(a.Ports.From) - int(b.Ports.From); c != 0 {
		return c
	}
	if c := int(a.Ports.To) - int(b.Ports.To); c != 0 {
		return c
	}
	return strings.Compare(a.Proto, b.Proto)
}

// Narrow keeps of grants only what reaches the destinations to: each
// destination inside a grant becomes a grant of its own, with the
// grant's protocol, and its port (a destination on any port takes the
// grant's ports). A destination wider than every grant, or on a port no
// grant covers, is left out: narrowing never widens.
func Narrow(grants []Grant, to []Grant) []Grant {
	var out []Grant
	for _, d := range to {
		for _, g := range grants {
			if !g.CIDR.Contains(d.CIDR.Addr()) || g.CIDR.Bits() > d.CIDR.Bits() {
				continue
			}
			p := d.Ports
			if p.Any() {
				p = g.Ports
			} else if p.From < g.Ports.From || p.To > g.Ports.To {
				continue
			}
			out = append(out, Grant{CIDR: d.CIDR, Ports: p, Proto: g.Proto})
		}
	}
	return out
}
