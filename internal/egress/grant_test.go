package egress

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
	"golang.org/x/sys/unix"
)

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func TestParseGrant(t *testing.T) {
	cases := []struct {
		in   string
		want Grant
		str  string // String() of the result; in when empty
	}{
		{"10.1.2.0/24:443", Grant{mustPrefix("10.1.2.0/24"), PortRange{443, 443}, ProtoTCP}, ""},
		{"192.0.2.10:8000-8100/udp", Grant{mustPrefix("192.0.2.10/32"), PortRange{8000, 8100}, ProtoUDP}, ""},
		{"[2001:db8::1]:443", Grant{mustPrefix("2001:db8::1/128"), PortRange{443, 443}, ProtoTCP}, ""},
		{"10.0.0.0/8:*", Grant{mustPrefix("10.0.0.0/8"), AnyPort, ProtoTCP}, ""},
		{"[2001:db8::/32]:1-65535/any", Grant{mustPrefix("2001:db8::/32"), AnyPort, ProtoAny}, "[2001:db8::/32]:*/any"},
		{"198.18.0.1/32:53/tcp", Grant{mustPrefix("198.18.0.1/32"), PortRange{53, 53}, ProtoTCP}, "198.18.0.1:53"},
		{"0.0.0.0/0:443", Grant{mustPrefix("0.0.0.0/0"), PortRange{443, 443}, ProtoTCP}, ""},
		{"[::ffff:198.18.0.1]:80", Grant{mustPrefix("198.18.0.1/32"), PortRange{80, 80}, ProtoTCP}, "198.18.0.1:80"},
		{"192.0.2.1:65535", Grant{mustPrefix("192.0.2.1/32"), PortRange{65535, 65535}, ProtoTCP}, ""},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			g, err := ParseGrant(c.in)
			if err != nil {
				t.Fatal(err)
			}
			if g != c.want {
				t.Fatalf("got %+v, want %+v", g, c.want)
			}
			want := c.str
			if want == "" {
				want = c.in
			}
			if g.String() != want {
				t.Fatalf("String() = %q, want %q", g.String(), want)
			}
		})
	}
}

func TestParseGrantErrors(t *testing.T) {
	cases := []struct {
		in      string
		want    error
		mention string
	}{
		{"", ErrInvalidGrant, "missing :PORT"},
		{"10.0.0.0/8", ErrInvalidGrant, "missing :PORT"},
		{"10.0.0.0/33:443", ErrInvalidGrant, "bad CIDR"},
		{"10.0.0.300:443", ErrInvalidGrant, "bad address"},
		{"example.com:443", ErrInvalidGrant, "ResolveHost"},
		{"10.1.2.3/24:443", ErrInvalidGrant, "did you mean 10.1.2.0/24"},
		{"10.0.0.1:0", ErrInvalidGrant, "port 0"},
		{"10.0.0.1:65536", ErrInvalidGrant, "above 65535"},
		{"10.0.0.1:99999999999999999999", ErrInvalidGrant, "above 65535"},
		{"10.0.0.1:-1", ErrInvalidGrant, "missing port"},
		{"10.0.0.1:", ErrInvalidGrant, "missing port"},
		{"10.0.0.1:+80", ErrInvalidGrant, "bad port"},
		{"10.0.0.1:8100-8000", ErrInvalidGrant, "reversed"},
		{"10.0.0.1:0-80", ErrInvalidGrant, "port 0"},
		{"10.0.0.1:80/sctp", ErrInvalidGrant, "unknown protocol"},
		{"10.0.0.1:80/", ErrInvalidGrant, "empty protocol"},
		{"10.0.0.1:80/TCP", ErrInvalidGrant, "unknown protocol"},
		{"2001:db8::1:443", ErrInvalidGrant, "brackets"},
		{"[2001:db8::1]443", ErrInvalidGrant, "missing :PORT"},
		{"[2001:db8::1:443", ErrInvalidGrant, "missing ]"},
		{"[10.0.0.1]:443", ErrInvalidGrant, "IPv6 destinations only"},
		{"[fe80::1%eth0]:443", ErrInvalidGrant, "zone"},
		{" 10.0.0.1:443", ErrInvalidGrant, "bad address"},
		{"127.0.0.1:9001", ErrForbidden, "loopback"},
		{"127.0.0.0/8:*", ErrForbidden, "loopback"},
		{"[::1]:80", ErrForbidden, "loopback"},
		{"169.254.169.254:80", ErrForbidden, "metadata"},
		{"169.254.0.0/16:*/any", ErrForbidden, "metadata"},
		{"[fd00:ec2::254]:80", ErrForbidden, "metadata"},
		{"[::ffff:169.254.169.254]:80", ErrForbidden, "metadata"},
		{"[fe80::/64]:80", ErrForbidden, "link-local"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			g, err := ParseGrant(c.in)
			if err == nil {
				t.Fatalf("parsed as %+v", g)
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("error %q does not wrap %v", err, c.want)
			}
			if !strings.Contains(err.Error(), c.mention) {
				t.Fatalf("error %q does not mention %q", err, c.mention)
			}
		})
	}
}

// Wider grants that merely contain forbidden ranges are fine: the filter
// refuses those parts whatever the grants say.
func TestValidateAllowsWideGrants(t *testing.T) {
	for _, s := range []string{"0.0.0.0/0:443", "[::/0]:443", "128.0.0.0/1:*", "[fd00::/8]:443"} {
		if _, err := ParseGrant(s); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	if err := (Grant{CIDR: mustPrefix("198.18.0.0/24"), Ports: PortRange{1, 2}, Proto: ""}).Validate(); err != nil {
		t.Errorf("empty protocol should default to tcp: %v", err)
	}
	if err := (Grant{Ports: AnyPort}).Validate(); !errors.Is(err, ErrInvalidGrant) {
		t.Errorf("grant without CIDR: %v", err)
	}
}

func FuzzParseGrant(f *testing.F) {
	for _, s := range []string{
		"10.1.2.0/24:443", "192.0.2.10:8000-8100/udp", "[2001:db8::1]:443", "10.0.0.0/8:*",
		"[2001:db8::/32]:*/any", "169.254.169.254:80", "[::ffff:1.2.3.4]:1", "1.2.3.4:0-0", "[", ":", "/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		g, err := ParseGrant(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidGrant) && !errors.Is(err, ErrForbidden) {
				t.Fatalf("%q: error %v wraps neither ErrInvalidGrant nor ErrForbidden", s, err)
			}
			return
		}
		if err := g.Validate(); err != nil {
			t.Fatalf("%q parsed to %+v, which does not validate: %v", s, g, err)
		}
		again, err := ParseGrant(g.String())
		if err != nil || again != g {
			t.Fatalf("%q -> %+v -> %q -> %+v, %v", s, g, g.String(), again, err)
		}
	})
}

// offlineResolver never reaches the network: every DNS exchange fails.
func offlineResolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
		return nil, errors.New("no network in tests")
	}}
}

// pipeResolver answers from a table, over an in-memory connection.
func pipeResolver(t *testing.T, records map[string][]netip.Addr) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
		client, server := net.Pipe()
		go serveDNS(server, records)
		return client, nil
	}}
}

// serveDNS speaks DNS over TCP framing (net.Pipe is not a PacketConn) until
// the client hangs up.
func serveDNS(c net.Conn, records map[string][]netip.Addr) {
	defer c.Close()
	for {
		var l [2]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return
		}
		msg := make([]byte, binary.BigEndian.Uint16(l[:]))
		if _, err := io.ReadFull(c, msg); err != nil {
			return
		}
		var p dnsmessage.Parser
		h, err := p.Start(msg)
		if err != nil {
			return
		}
		q, err := p.Question()
		if err != nil {
			return
		}
		addrs, known := records[q.Name.String()]
		rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true}
		if !known {
			rh.RCode = dnsmessage.RCodeNameError
		}
		b := dnsmessage.NewBuilder(make([]byte, 2, 514), rh)
		b.EnableCompression()
		b.StartQuestions()
		b.Question(q)
		b.StartAnswers()
		for _, a := range addrs {
			rrh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}
			switch {
			case a.Is4() && q.Type == dnsmessage.TypeA:
				b.AResource(rrh, dnsmessage.AResource{A: a.As4()})
			case a.Is6() && q.Type == dnsmessage.TypeAAAA:
				b.AAAAResource(rrh, dnsmessage.AAAAResource{AAAA: a.As16()})
			}
		}
		out, err := b.Finish()
		if err != nil {
			return
		}
		binary.BigEndian.PutUint16(out, uint16(len(out)-2))
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

func TestResolveHost(t *testing.T) {
	ctx := context.Background()
	r := pipeResolver(t, map[string][]netip.Addr{
		"db.moat.test.":   {netip.MustParseAddr("198.18.5.5"), netip.MustParseAddr("2001:2::5"), netip.MustParseAddr("198.18.5.4")},
		"meta.moat.test.": {netip.MustParseAddr("198.18.5.5"), netip.MustParseAddr("169.254.169.254")},
	})
	got, err := ResolveHost(ctx, r, "db.moat.test.", PortRange{5432, 5432}, "")
	if err != nil {
		t.Fatal(err)
	}
	want := []Grant{
		{mustPrefix("198.18.5.4/32"), PortRange{5432, 5432}, ProtoTCP},
		{mustPrefix("198.18.5.5/32"), PortRange{5432, 5432}, ProtoTCP},
		{mustPrefix("2001:2::5/128"), PortRange{5432, 5432}, ProtoTCP},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}

	cases := []struct {
		name  string
		r     *net.Resolver
		host  string
		ports PortRange
		proto string
		want  error
	}{
		{"unresolvable", offlineResolver(), "nothing.invalid", AnyPort, ProtoTCP, ErrUnresolvable},
		{"no such name", r, "missing.moat.test.", AnyPort, ProtoTCP, ErrUnresolvable},
		{"resolves to metadata", r, "meta.moat.test.", AnyPort, ProtoTCP, ErrForbidden},
		{"localhost from the hosts file", offlineResolver(), "localhost", AnyPort, ProtoTCP, ErrForbidden},
		{"literal metadata address", offlineResolver(), "169.254.169.254", AnyPort, ProtoTCP, ErrForbidden},
		{"bad port", r, "db.moat.test.", PortRange{0, 1}, ProtoTCP, ErrInvalidGrant},
		{"bad protocol", r, "db.moat.test.", AnyPort, "icmp", ErrInvalidGrant},
		{"empty", offlineResolver(), "", AnyPort, ProtoTCP, ErrInvalidGrant},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g, err := ResolveHost(ctx, c.r, c.host, c.ports, c.proto)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, %v; want error %v", g, err, c.want)
			}
		})
	}
	// A literal address needs no resolver at all.
	g, err := ResolveHost(ctx, offlineResolver(), "198.18.0.9", AnyPort, ProtoUDP)
	if err != nil || len(g) != 1 || g[0].String() != "198.18.0.9:*/udp" {
		t.Fatalf("literal: %v, %v", g, err)
	}
}

func TestPolicyRules(t *testing.T) {
	grants := mustGrants(t, "198.18.0.0/24:443", "[2001:2::/48]:1000-2000/udp", "198.18.1.1:*/any")
	refused := []netip.Prefix{mustPrefix("100.64.0.0/16"), mustPrefix("192.0.2.2/32")}
	r4, r6 := policyRules(grants, refused)
	// Loopback first, then every refusal, then the grants: first match wins.
	var got4 []string
	for _, r := range r4 {
		got4 = append(got4, r.prefix.String())
	}
	want4 := []string{"127.0.0.0/8", "0.0.0.0/8", "169.254.0.0/16", "255.255.255.255/32", "100.64.0.0/16", "192.0.2.2/32", "198.18.0.0/24", "198.18.1.1/32"}
	if !slices.Equal(got4, want4) {
		t.Fatalf("IPv4 rules %v, want %v", got4, want4)
	}
	if !r4[0].allow || r4[1].allow || !r4[6].allow || r4[6].proto != unix.IPPROTO_TCP || r4[6].from != 443 || r4[7].proto != 0 || r4[7].from != 0 {
		t.Fatalf("rule details wrong: %+v", r4)
	}
	// Every IPv4 rule is repeated, mapped, among the IPv6 ones.
	if len(r6) != len(r4)+5 {
		t.Fatalf("%d IPv6 rules, want %d", len(r6), len(r4)+5)
	}
	var mapped bool
	for _, r := range r6 {
		if r.prefix == mustPrefix("::ffff:198.18.0.0/120") && r.allow && r.from == 443 {
			mapped = true
		}
	}
	if !mapped {
		t.Fatalf("no mapped IPv4 grant among %v", r6)
	}
	b := rule{prefix: mustPrefix("198.18.0.0/23"), from: 1, to: 2, proto: 6, allow: true}.marshal()
	if len(b) != ruleSize || b[ruleMask] != 0xff || b[ruleMask+2] != 0xfe || b[ruleMask+3] != 0 || b[ruleAddr] != 198 || b[ruleVerdict] != 1 {
		t.Fatalf("marshal: % x", b)
	}
}

func TestTCPPorts(t *testing.T) {
	cases := []struct {
		grants []string
		want   []uint16
		isNil  bool
	}{
		{[]string{"198.18.0.1:443", "198.18.0.2:80", "198.18.0.3:443"}, []uint16{80, 443}, false},
		{[]string{"198.18.0.1:53/udp"}, []uint16{}, false},
		{[]string{"198.18.0.1:8000-8002/any"}, []uint16{8000, 8001, 8002}, false},
		{[]string{"198.18.0.1:443", "198.18.0.2:*"}, nil, true},
		{[]string{"198.18.0.1:*/udp", "198.18.0.2:22"}, []uint16{22}, false},
		{[]string{"198.18.0.1:1000-9000"}, nil, true},
		{[]string{"198.18.0.1:65535"}, []uint16{65535}, false},
	}
	for _, c := range cases {
		got := tcpPorts(mustGrants(t, c.grants...))
		if (got == nil) != c.isNil || !slices.Equal(got, c.want) {
			t.Errorf("%v: got %#v, want %#v", c.grants, got, c.want)
		}
	}
}

func TestUplinkTag(t *testing.T) {
	for _, k := range []uplinkKey{{"eth0", unix.AF_INET}, {"a:b", unix.AF_INET6}} {
		got, prev, ok := parseUplinkTag(k.tag("0"))
		if !ok || got != k || prev != "0" {
			t.Errorf("%+v: %+v %q %v", k, got, prev, ok)
		}
	}
	for _, s := range []string{"", "moat:uplink:", "moat:uplink:2:0:", "moat:uplink:3:0:eth0", "moat:uplink:2:7:eth0", "moat:uplink:2:0:../x", "other"} {
		if _, _, ok := parseUplinkTag(s); ok {
			t.Errorf("%q parsed", s)
		}
	}
}
