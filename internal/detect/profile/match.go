package profile

import (
	"net/netip"
	"strconv"
	"strings"
)

// Path patterns are absolute paths whose segments may hold '*' (any run
// of characters but '/') and whose last segment may be "**" (zero or more
// further segments). They are compiled once into a segment trie, so a
// lookup walks the path's segments without allocating; every node is
// visited at most once, since a node's depth fixes the segment it tests.

// glob is one compiled path segment: a literal, or literal parts
// separated by '*'.
type glob struct {
	lit   string   // the segment as written
	parts []string // nil for a literal; else the text between the stars
}

func compileGlob(s string) glob {
	if !strings.Contains(s, "*") {
		return glob{lit: s}
	}
	return glob{lit: s, parts: strings.Split(s, "*")}
}

// match reports whether the segment s matches. With only '*' as a
// wildcard, taking each middle part at its leftmost place is exact.
func (g *glob) match(s string) bool {
	if g.parts == nil {
		return s == g.lit
	}
	first, last := g.parts[0], g.parts[len(g.parts)-1]
	if len(s) < len(first)+len(last) || !strings.HasPrefix(s, first) || !strings.HasSuffix(s, last) {
		return false
	}
	s = s[len(first) : len(s)-len(last)]
	for _, mid := range g.parts[1 : len(g.parts)-1] {
		i := strings.Index(s, mid)
		if i < 0 {
			return false
		}
		s = s[i+len(mid):]
	}
	return true
}

// node is a trie node: the patterns that share the segments leading here.
type node struct {
	lit  map[string]*node // literal next segments
	wild []wildEdge       // next segments with '*'
	rest bool             // a pattern ends in "**" here
	end  bool             // a pattern ends here
}

type wildEdge struct {
	g    glob
	next *node
}

// trie matches paths against a set of patterns.
type trie struct{ root node }

// add inserts a pattern. Patterns are validated before they get here; an
// invalid one is inserted as written and simply never matches anything
// it should not.
func (t *trie) add(pattern string) {
	n := &t.root
	rest := strings.TrimPrefix(pattern, "/")
	for rest != "" {
		seg, tail, _ := strings.Cut(rest, "/")
		rest = tail
		if seg == "**" && tail == "" {
			n.rest = true
			return
		}
		n = n.child(seg)
	}
	n.end = true
}

func (n *node) child(seg string) *node {
	if !strings.Contains(seg, "*") {
		if c := n.lit[seg]; c != nil {
			return c
		}
		if n.lit == nil {
			n.lit = map[string]*node{}
		}
		c := &node{}
		n.lit[seg] = c
		return c
	}
	for _, w := range n.wild {
		if w.g.lit == seg {
			return w.next
		}
	}
	c := &node{}
	n.wild = append(n.wild, wildEdge{g: compileGlob(seg), next: c})
	return c
}

// match reports whether a clean absolute path matches a pattern.
func (t *trie) match(p string) bool {
	if !strings.HasPrefix(p, "/") {
		return false
	}
	return t.root.match(p[1:])
}

func (n *node) match(p string) bool {
	if n.rest {
		return true
	}
	if p == "" {
		return n.end
	}
	seg, tail := p, ""
	if i := strings.IndexByte(p, '/'); i >= 0 {
		seg, tail = p[:i], p[i+1:]
	}
	if c := n.lit[seg]; c != nil && c.match(tail) {
		return true
	}
	for i := range n.wild {
		if n.wild[i].g.match(seg) && n.wild[i].next.match(tail) {
			return true
		}
	}
	return false
}

// pattern is one compiled path pattern, for comparing patterns with each
// other while learning (the trie answers lookups).
type pattern struct {
	segs []glob
	rest bool // ends in "**"
}

func compilePattern(s string) pattern {
	var pt pattern
	rest := strings.TrimPrefix(s, "/")
	for rest != "" {
		seg, tail, _ := strings.Cut(rest, "/")
		rest = tail
		if seg == "**" && tail == "" {
			pt.rest = true
			break
		}
		pt.segs = append(pt.segs, compileGlob(seg))
	}
	return pt
}

// covers reports whether pattern a matches every path pattern b matches.
func covers(a, b string) bool {
	if a == b {
		return true
	}
	pa, pb := compilePattern(a), compilePattern(b)
	return pa.covers(&pb)
}

// covers reports whether pt matches every path b matches. b's text is
// matched as if it were a path: a '*' in b can only be matched by a '*'
// of pt (patterns have no literal '*'), so whatever b's '*' stands for,
// pt still matches. A "**" in b stands for any depth, so only a "**" of
// pt at or above it covers it.
func (pt *pattern) covers(b *pattern) bool {
	if b.rest && !pt.rest {
		return false
	}
	if pt.rest {
		if len(b.segs) < len(pt.segs) {
			return false
		}
	} else if len(b.segs) != len(pt.segs) {
		return false
	}
	for i := range pt.segs {
		if !pt.segs[i].match(b.segs[i].lit) {
			return false
		}
	}
	return true
}

// dests matches connect destinations.
type dests struct {
	exact map[netip.AddrPort]struct{}
	unix  map[string]struct{}
	nets  []netRule
}

// netRule is a destination with a CIDR block or any port.
type netRule struct {
	prefix netip.Prefix
	port   int // -1: any
}

// dest is a parsed connect item.
type dest struct {
	unix   string // the socket path for unix:, else ""
	prefix netip.Prefix
	port   int // -1 for *
}

// parseDest parses "inet:ADDR:PORT", "inet6:[ADDR]:PORT" or "unix:PATH"
// (ADDR may be a CIDR block, PORT "*"). It returns a message saying what
// is wrong, or "".
func parseDest(s string) (dest, string) {
	fam, rest, ok := strings.Cut(s, ":")
	if !ok {
		return dest{}, "want inet:ADDR:PORT, inet6:[ADDR]:PORT or unix:PATH"
	}
	switch fam {
	case "unix":
		if msg := checkUnix(rest); msg != "" {
			return dest{}, msg
		}
		return dest{unix: rest}, ""
	case "inet", "inet6":
	default:
		return dest{}, "unknown family " + strconv.Quote(fam) + "; want inet, inet6 or unix"
	}
	i := strings.LastIndexByte(rest, ':')
	if i < 0 {
		return dest{}, "no port; want " + fam + ":ADDR:PORT (PORT may be *)"
	}
	addr, port := rest[:i], rest[i+1:]
	if fam == "inet6" {
		if len(addr) < 2 || addr[0] != '[' || addr[len(addr)-1] != ']' {
			return dest{}, "an inet6 address is written in brackets: inet6:[2001:db8::1]:443"
		}
		addr = addr[1 : len(addr)-1]
	}
	d := dest{port: -1}
	if port != "*" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 0 || n > 65535 || strconv.Itoa(n) != port {
			return dest{}, "port " + strconv.Quote(port) + " is not a number from 0 to 65535 or *"
		}
		d.port = n
	}
	if strings.Contains(addr, "/") {
		pre, err := netip.ParsePrefix(addr)
		if err != nil {
			return dest{}, strconv.Quote(addr) + " is not a CIDR block"
		}
		if pre.Masked() != pre {
			return dest{}, strconv.Quote(addr) + " has host bits set; the block is " + pre.Masked().String()
		}
		d.prefix = pre
	} else {
		a, err := netip.ParseAddr(addr)
		if err != nil {
			return dest{}, strconv.Quote(addr) + " is not an IP address"
		}
		if a.Zone() != "" {
			return dest{}, "address zones (" + strconv.Quote(a.Zone()) + ") are not supported"
		}
		d.prefix = netip.PrefixFrom(a, a.BitLen())
	}
	a := d.prefix.Addr()
	switch {
	case fam == "inet" && !a.Is4():
		return dest{}, "address " + addr + " is not IPv4; write inet6:[" + addr + "]:PORT"
	case fam == "inet6" && !a.Is6():
		return dest{}, "address " + addr + " is not IPv6; write inet:" + addr + ":PORT"
	case fam == "inet6" && a.Is4In6():
		return dest{}, "address " + addr + " is IPv4-mapped; write inet:" + a.Unmap().String() + ":PORT"
	}
	return d, ""
}

func (m *dests) add(item string) {
	d, msg := parseDest(item)
	if msg != "" {
		return
	}
	switch {
	case d.unix != "":
		if m.unix == nil {
			m.unix = map[string]struct{}{}
		}
		m.unix[d.unix] = struct{}{}
	case d.port >= 0 && d.prefix.IsSingleIP():
		if m.exact == nil {
			m.exact = map[netip.AddrPort]struct{}{}
		}
		m.exact[netip.AddrPortFrom(d.prefix.Addr(), uint16(d.port))] = struct{}{}
	default:
		m.nets = append(m.nets, netRule{prefix: d.prefix, port: d.port})
	}
}

func (m *dests) matchAddr(ap netip.AddrPort) bool {
	if _, ok := m.exact[ap]; ok {
		return true
	}
	for _, r := range m.nets {
		if (r.port < 0 || r.port == int(ap.Port())) && r.prefix.Contains(ap.Addr()) {
			return true
		}
	}
	return false
}

func (m *dests) matchUnix(p string) bool {
	_, ok := m.unix[p]
	return ok
}
