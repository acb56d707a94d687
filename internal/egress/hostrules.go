package egress

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// The host side lives in one nftables table, inet "moat", owned by the
// Manager and rebuilt at every start:
//
//	chain forward  { type filter hook forward priority filter; policy accept;
//	    oifname "mt-*" ct state established,related accept
//	    oifname "mt-*" drop                 # nothing else enters an instance
//	    jump uplinks                        # keeps uplinks from forwarding anything else
//	    iifname "mt-*" ip daddr 169.254.0.0/16 drop   # (and fe80::/10, fd00:ec2::254)
//	    iifname "mt-*" jump egress
//	    iifname "mt-*" drop }
//	chain egress   { iifname "mt-<id>" jump i-<id> ... }      # one rule per instance
//	chain i-<id>   { ip saddr <instance> ip daddr <grant> tcp dport <ports> accept ... }
//	chain uplinks  { iifname "<uplink>" meta nfproto ipv4 drop ... }
//	chain input    { type filter hook input priority filter; policy accept;
//	    iifname "mt-*" ct state established,related accept
//	    iifname "mt-*" icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept
//	    iifname "mt-*" drop }               # instances never reach the host itself
//	chain postrouting { type nat hook postrouting priority srcnat; policy accept;
//	    iifname "mt-*" oifname != "mt-*" masquerade }
//
// These rules are the second wall: the cgroup filter already refused
// everything they drop, at connect time.

const (
	tableName     = "moat"
	linkPrefix    = "mt-"
	chainForward  = "forward"
	chainInput    = "input"
	chainPost     = "postrouting"
	chainEgress   = "egress"
	chainUplinks  = "uplinks"
	instanceChain = "i-"
	// User data on rules the Manager must find again.
	tagInstance = "moat:instance:"
	tagUplink   = "moat:uplink:"
)

var moatTable = &nftables.Table{Family: nftables.TableFamilyINet, Name: tableName}

func (m *Manager) nft() (*nftables.Conn, error) {
	if m.host == processNetns {
		return nftables.New()
	}
	return nftables.New(nftables.WithNetNSFd(int(m.host)))
}

// Expression builders.

func ifname(key expr.MetaKey, name string, op expr.CmpOp, prefix bool) []expr.Any {
	data := []byte(name)
	if !prefix {
		data = append(data, 0)
	}
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: op, Register: 1, Data: data},
	}
}

func nfproto(p netip.Prefix) []expr.Any {
	v := byte(unix.NFPROTO_IPV4)
	if p.Addr().Is6() {
		v = unix.NFPROTO_IPV6
	}
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{v}},
	}
}

// addrMatch matches the source (src) or destination address against p; the
// caller has matched the family first.
func addrMatch(p netip.Prefix, src bool) []expr.Any {
	off, n := uint32(16), uint32(4)
	if p.Addr().Is6() {
		off, n = 24, 16
	}
	if src {
		off -= n
	}
	e := []expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n}}
	if p.Bits() < p.Addr().BitLen() {
		mask := make([]byte, n)
		for i := 0; i < p.Bits(); i++ {
			mask[i/8] |= 0x80 >> (i % 8)
		}
		e = append(e, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: n, Mask: mask, Xor: make([]byte, n)})
	}
	return append(e, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: p.Masked().Addr().AsSlice()})
}

func l4proto(p byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}},
	}
}

func dport(r PortRange) []expr.Any {
	be := func(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
	e := []expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2}}
	if r.From == r.To {
		return append(e, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: be(r.From)})
	}
	return append(e, &expr.Range{Op: expr.CmpOpEq, Register: 1, FromData: be(r.From), ToData: be(r.To)})
}

func ctEstablished() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binary.NativeEndian.AppendUint32(nil, expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED),
			Xor:  make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}

func verdict(k expr.VerdictKind, chain string) []expr.Any {
	return []expr.Any{&expr.Counter{}, &expr.Verdict{Kind: k, Chain: chain}}
}

func join(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// installTable creates the table with its fixed chains and rules, in one
// transaction. The table must not exist (sweep removed it).
func (m *Manager) installTable() error {
	c, err := m.nft()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	t := c.AddTable(moatTable)
	accept := nftables.ChainPolicyAccept
	fwd := c.AddChain(&nftables.Chain{Name: chainForward, Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept})
	in := c.AddChain(&nftables.Chain{Name: chainInput, Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter, Policy: &accept})
	post := c.AddChain(&nftables.Chain{Name: chainPost, Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource, Policy: &accept})
	c.AddChain(&nftables.Chain{Name: chainEgress, Table: t})
	c.AddChain(&nftables.Chain{Name: chainUplinks, Table: t})

	fromInst := ifname(expr.MetaKeyIIFNAME, linkPrefix, expr.CmpOpEq, true)
	toInst := ifname(expr.MetaKeyOIFNAME, linkPrefix, expr.CmpOpEq, true)
	add := func(ch *nftables.Chain, e ...[]expr.Any) {
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: join(e...)})
	}
	add(fwd, toInst, ctEstablished(), verdict(expr.VerdictAccept, ""))
	add(fwd, toInst, verdict(expr.VerdictDrop, ""))
	add(fwd, verdict(expr.VerdictJump, chainUplinks))
	for _, p := range []netip.Prefix{
		netip.MustParsePrefix("169.254.0.0/16"),
		netip.MustParsePrefix("fe80::/10"),
		netip.MustParsePrefix("fd00:ec2::254/128"),
	} {
		add(fwd, fromInst, nfproto(p), addrMatch(p, false), verdict(expr.VerdictDrop, ""))
	}
	add(fwd, fromInst, verdict(expr.VerdictJump, chainEgress))
	add(fwd, fromInst, verdict(expr.VerdictDrop, ""))

	add(in, fromInst, ctEstablished(), verdict(expr.VerdictAccept, ""))
	add(in, fromInst, l4proto(unix.IPPROTO_ICMPV6),
		[]expr.Any{
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
			&expr.Range{Op: expr.CmpOpEq, Register: 1, FromData: []byte{135}, ToData: []byte{136}},
		},
		verdict(expr.VerdictAccept, ""))
	add(in, fromInst, verdict(expr.VerdictDrop, ""))

	add(post, fromInst, ifname(expr.MetaKeyOIFNAME, linkPrefix, expr.CmpOpNeq, true), []expr.Any{&expr.Masq{}})
	if err := c.Flush(); err != nil {
		return fmt.Errorf("install nftables table %s: %w", tableName, err)
	}
	return nil
}

// addInstanceRules creates the instance's chain (its grants, from its own
// addresses only) and the rule in egress that sends its traffic there.
func (m *Manager) addInstanceRules(l *Link) error {
	c, err := m.nft()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	ch := c.AddChain(&nftables.Chain{Name: instanceChain + l.short, Table: moatTable})
	for _, g := range l.grants {
		src := l.inst4
		if g.CIDR.Addr().Is6() {
			if !l.inst6.IsValid() {
				continue
			}
			src = l.inst6
		}
		base := join(nfproto(g.CIDR), addrMatch(src, true), addrMatch(g.CIDR, false))
		var protos []byte
		switch {
		case g.Proto == ProtoTCP:
			protos = []byte{unix.IPPROTO_TCP}
		case g.Proto == ProtoUDP:
			protos = []byte{unix.IPPROTO_UDP}
		case !g.Ports.Any(): // "any" with ports: the protocols that have ports
			protos = []byte{unix.IPPROTO_TCP, unix.IPPROTO_UDP}
		}
		if len(protos) == 0 {
			c.AddRule(&nftables.Rule{Table: moatTable, Chain: ch, Exprs: join(base, verdict(expr.VerdictAccept, ""))})
		}
		for _, p := range protos {
			e := join(base, l4proto(p))
			if !g.Ports.Any() {
				e = join(e, dport(g.Ports))
			}
			c.AddRule(&nftables.Rule{Table: moatTable, Chain: ch, Exprs: join(e, verdict(expr.VerdictAccept, ""))})
		}
	}
	c.AddRule(&nftables.Rule{
		Table:    moatTable,
		Chain:    &nftables.Chain{Name: chainEgress, Table: moatTable},
		Exprs:    join(ifname(expr.MetaKeyIIFNAME, l.hostIf, expr.CmpOpEq, false), verdict(expr.VerdictJump, ch.Name)),
		UserData: []byte(tagInstance + l.short),
	})
	if err := c.Flush(); err != nil {
		return fmt.Errorf("add nftables rules of %s: %w", l.hostIf, err)
	}
	return nil
}

// delInstanceRules removes what addInstanceRules made. Missing pieces are
// not an error (a failed Attach cleans up with it).
func (m *Manager) delInstanceRules(l *Link) error {
	c, err := m.nft()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	egress := &nftables.Chain{Name: chainEgress, Table: moatTable}
	rules, err := c.GetRules(moatTable, egress)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil // the table is gone: Manager closed or swept
		}
		return fmt.Errorf("list nftables rules: %w", err)
	}
	for _, r := range rules {
		if bytes.Equal(r.UserData, []byte(tagInstance+l.short)) {
			if err := c.DelRule(r); err != nil {
				return fmt.Errorf("delete nftables rule: %w", err)
			}
		}
	}
	ch := &nftables.Chain{Name: instanceChain + l.short, Table: moatTable}
	if _, err := c.ListChain(moatTable, ch.Name); err == nil {
		c.FlushChain(ch)
		c.DelChain(ch)
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("delete nftables rules of %s: %w", l.hostIf, err)
	}
	return nil
}

// addUplinkRule keeps an uplink on which moat turned forwarding on from
// forwarding anything but replies to instances. Its user data records the
// value to restore, so that a restart after a crash can put it back.
func (m *Manager) addUplinkRule(u uplinkKey, prev string) error {
	c, err := m.nft()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	p := netip.IPv4Unspecified()
	if u.family == unix.AF_INET6 {
		p = netip.IPv6Unspecified()
	}
	c.AddRule(&nftables.Rule{
		Table:    moatTable,
		Chain:    &nftables.Chain{Name: chainUplinks, Table: moatTable},
		Exprs:    join(ifname(expr.MetaKeyIIFNAME, u.ifname, expr.CmpOpEq, false), nfproto(netip.PrefixFrom(p, 0)), verdict(expr.VerdictDrop, "")),
		UserData: []byte(u.tag(prev)),
	})
	if err := c.Flush(); err != nil {
		return fmt.Errorf("add nftables uplink rule for %s: %w", u.ifname, err)
	}
	return nil
}

func (m *Manager) delUplinkRule(u uplinkKey) error {
	c, err := m.nft()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	rules, err := c.GetRules(moatTable, &nftables.Chain{Name: chainUplinks, Table: moatTable})
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("list nftables rules: %w", err)
	}
	for _, r := range rules {
		if k, _, ok := parseUplinkTag(string(r.UserData)); ok && k == u {
			if err := c.DelRule(r); err != nil {
				return fmt.Errorf("delete nftables uplink rule: %w", err)
			}
		}
	}
	return c.Flush()
}

// removeTable restores the uplink settings recorded in an existing table
// (a previous run's, or this one's) and deletes the table. It returns how
// many uplink settings it restored.
func (m *Manager) removeTable() (int, error) {
	c, err := m.nft()
	if err != nil {
		return 0, fmt.Errorf("nftables: %w", err)
	}
	if _, err := c.ListTableOfFamily(tableName, nftables.TableFamilyINet); err != nil {
		return 0, nil // no table
	}
	var errs []error
	n := 0
	rules, err := c.GetRules(moatTable, &nftables.Chain{Name: chainUplinks, Table: moatTable})
	if err == nil {
		for _, r := range rules {
			if k, prev, ok := parseUplinkTag(string(r.UserData)); ok {
				if err := m.restoreForwarding(k, prev); err != nil {
					errs = append(errs, err)
				} else {
					n++
				}
			}
		}
	}
	c.DelTable(moatTable)
	if err := c.Flush(); err != nil {
		errs = append(errs, fmt.Errorf("delete nftables table %s: %w", tableName, err))
	}
	return n, errors.Join(errs...)
}

// uplinkKey is one forwarding setting moat changed: an interface and a
// family.
type uplinkKey struct {
	ifname string
	family int
}

func (u uplinkKey) tag(prev string) string {
	return fmt.Sprintf("%s%d:%s:%s", tagUplink, u.family, prev, u.ifname)
}

func parseUplinkTag(s string) (uplinkKey, string, bool) {
	rest, ok := strings.CutPrefix(s, tagUplink)
	if !ok {
		return uplinkKey{}, "", false
	}
	fam, rest, ok1 := strings.Cut(rest, ":")
	prev, name, ok2 := strings.Cut(rest, ":")
	if !ok1 || !ok2 || name == "" || strings.ContainsAny(name, "/") || (prev != "0" && prev != "1") {
		return uplinkKey{}, "", false
	}
	switch fam {
	case "2":
		return uplinkKey{name, unix.AF_INET}, prev, true
	case "10":
		return uplinkKey{name, unix.AF_INET6}, prev, true
	}
	return uplinkKey{}, "", false
}
