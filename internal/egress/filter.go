package egress

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// The filter is four cgroup sock_addr programs (connect4, connect6,
// sendmsg4, sendmsg6) attached to the instance's cgroup v2 directory. Each
// walks an ordered rule list kept in a per-instance array map: the first
// rule that matches the destination (address, port, protocol) decides;
// no match is a refusal. A refusal makes connect(2) or sendmsg(2) fail with
// EPERM before any packet exists, and adds one to the instance's denied
// counter (a one-element array map).
//
// Rules are built by policyRules: the instance's own loopback first, then
// the destinations no grant opens (metadata, moat's addresses, the host's),
// then the grants. connect6 and sendmsg6 see IPv4-mapped destinations of
// dual-stack sockets, so every IPv4 rule is repeated there in ::ffff:0:0/96.

// rule is one entry of a rule map.
type rule struct {
	prefix netip.Prefix // IPv4 in rules4; IPv6 (IPv4 ones mapped) in rules6
	from   uint16       // inclusive port range, host byte order
	to     uint16
	proto  uint8 // IPPROTO_TCP, IPPROTO_UDP, or 0 for every protocol
	allow  bool
}

// Layout of a rule map value: address and mask as network-order bytes, so
// the program compares them word by word with the context's user_ip4 and
// user_ip6, which hold network-order bytes too.
const (
	ruleAddr    = 0  // [16]byte
	ruleMask    = 16 // [16]byte
	rulePortLo  = 32 // u16, host order
	rulePortHi  = 34 // u16, host order
	ruleProto   = 36 // u8
	ruleVerdict = 37 // u8: 1 allow, 0 refuse
	ruleSize    = 40
)

func (r rule) marshal() []byte {
	b := make([]byte, ruleSize)
	addr := r.prefix.Addr().AsSlice()
	copy(b[ruleAddr:], addr)
	for i := 0; i < r.prefix.Bits(); i++ {
		b[ruleMask+i/8] |= 0x80 >> (i % 8)
	}
	binary.NativeEndian.PutUint16(b[rulePortLo:], r.from)
	binary.NativeEndian.PutUint16(b[rulePortHi:], r.to)
	b[ruleProto] = r.proto
	if r.allow {
		b[ruleVerdict] = 1
	}
	return b
}

// Offsets in struct bpf_sock_addr (include/uapi/linux/bpf.h).
const (
	ctxUserIP4  = 4
	ctxUserIP6  = 8
	ctxUserPort = 24
	ctxProtocol = 36
)

// alwaysRefused are refused before any grant is looked at, in both
// families; together with the pools and the host's own addresses (added
// per instance).
var alwaysRefused = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("255.255.255.255/32"),
	netip.MustParsePrefix("::/128"),
	netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("fd00:ec2::254/128"),
}

// ownLoopback is the instance's own loopback (its Runtime API lives there):
// always allowed, and never the host's, which lives in another namespace.
var ownLoopback = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("::1/128"),
}

// policyRules turns grants and the refused destinations into the rule
// lists of the two families.
func policyRules(grants []Grant, refused []netip.Prefix) (rules4, rules6 []rule) {
	add := func(r rule) {
		if r.prefix.Addr().Is4() {
			rules4 = append(rules4, r)
			m := netip.PrefixFrom(netip.AddrFrom16(r.prefix.Addr().As16()), r.prefix.Bits()+96)
			r.prefix = m
		}
		rules6 = append(rules6, r)
	}
	for _, p := range ownLoopback {
		add(rule{prefix: p, from: 0, to: 65535, allow: true})
	}
	for _, p := range slices.Concat(alwaysRefused, refused) {
		add(rule{prefix: p, from: 0, to: 65535})
	}
	for _, g := range grants {
		r := rule{prefix: g.CIDR, from: g.Ports.From, to: g.Ports.To, allow: true}
		if g.Ports.Any() {
			r.from = 0
		}
		switch g.Proto {
		case ProtoTCP:
			r.proto = unix.IPPROTO_TCP
		case ProtoUDP:
			r.proto = unix.IPPROTO_UDP
		}
		add(r)
	}
	return rules4, rules6
}

// program emits the rule walk for one hook. words is 1 for IPv4 and 4 for
// IPv6; n is the number of rules in the map.
func program(rules, denied *ebpf.Map, n, ipOff, words int) (asm.Instructions, error) {
	mapPtr := func(m *ebpf.Map) (asm.Instruction, error) {
		ins := asm.LoadMapPtr(asm.R1, 0)
		return ins, ins.AssociateMap(m)
	}
	insns := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.LoadMem(asm.R8, asm.R6, ctxUserPort, asm.Word),
		asm.HostTo(asm.BE, asm.R8, asm.Half), // network to host order
		asm.LoadMem(asm.R9, asm.R6, ctxProtocol, asm.Word),
	}
	label := func(i int) string {
		if i == n {
			return "refuse"
		}
		return fmt.Sprintf("rule%d", i)
	}
	for i := range n {
		next := label(i + 1)
		ld, err := mapPtr(rules)
		if err != nil {
			return nil, err
		}
		insns = append(insns,
			asm.StoreImm(asm.R10, -4, int64(i), asm.Word).WithSymbol(label(i)),
			ld,
			asm.Mov.Reg(asm.R2, asm.R10),
			asm.Add.Imm(asm.R2, -4),
			asm.FnMapLookupElem.Call(),
			asm.JEq.Imm(asm.R0, 0, next),
			asm.LoadMem(asm.R1, asm.R0, ruleProto, asm.Byte),
			asm.JEq.Imm(asm.R1, 0, fmt.Sprintf("ports%d", i)),
			asm.JNE.Reg(asm.R1, asm.R9, next),
			asm.LoadMem(asm.R1, asm.R0, rulePortLo, asm.Half).WithSymbol(fmt.Sprintf("ports%d", i)),
			asm.JLT.Reg(asm.R8, asm.R1, next),
			asm.LoadMem(asm.R1, asm.R0, rulePortHi, asm.Half),
			asm.JGT.Reg(asm.R8, asm.R1, next),
		)
		for w := range words {
			insns = append(insns,
				asm.LoadMem(asm.R1, asm.R6, int16(ipOff+4*w), asm.Word),
				asm.LoadMem(asm.R2, asm.R0, int16(ruleMask+4*w), asm.Word),
				asm.And.Reg(asm.R1, asm.R2),
				asm.LoadMem(asm.R2, asm.R0, int16(ruleAddr+4*w), asm.Word),
				asm.JNE.Reg(asm.R1, asm.R2, next),
			)
		}
		insns = append(insns,
			asm.LoadMem(asm.R1, asm.R0, ruleVerdict, asm.Byte),
			asm.JNE.Imm(asm.R1, 0, "allow"),
			asm.Ja.Label("refuse"),
		)
	}
	ld, err := mapPtr(denied)
	if err != nil {
		return nil, err
	}
	insns = append(insns,
		asm.StoreImm(asm.R10, -4, 0, asm.Word).WithSymbol("refuse"),
		ld,
		asm.Mov.Reg(asm.R2, asm.R10),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "deny"),
		asm.Mov.Imm(asm.R1, 1),
		asm.StoreXAdd(asm.R0, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("deny"),
		asm.Return(),
		asm.Mov.Imm(asm.R0, 1).WithSymbol("allow"),
		asm.Return(),
	)
	return insns, nil
}

// bpfLicense: the programs call no GPL-only helper.
const bpfLicense = "Dual MIT/GPL"

// filter is one instance's loaded and attached programs and their maps.
type filter struct {
	cgroup   int // fd of the cgroup directory the programs are attached to
	rules4   *ebpf.Map
	rules6   *ebpf.Map
	denied   *ebpf.Map
	attached []attachedProg
}

type attachedProg struct {
	prog *ebpf.Program
	at   ebpf.AttachType
}

// hooks are the attach points of the filter and the family each checks.
var hooks = []struct {
	name string
	at   ebpf.AttachType
	v6   bool
}{
	{"moat_connect4", ebpf.AttachCGroupInet4Connect, false},
	{"moat_sendmsg4", ebpf.AttachCGroupUDP4Sendmsg, false},
	{"moat_connect6", ebpf.AttachCGroupInet6Connect, true},
	{"moat_sendmsg6", ebpf.AttachCGroupUDP6Sendmsg, true},
}

func newRuleMap(name string, rules []rule) (*ebpf.Map, error) {
	m, err := ebpf.NewMap(&ebpf.MapSpec{
		Name:       name,
		Type:       ebpf.Array,
		KeySize:    4,
		ValueSize:  ruleSize,
		MaxEntries: uint32(len(rules)),
		// Not BPF_F_RDONLY_PROG: with it, the verifier reads a frozen
		// array's values as constants, which it supports for one-element
		// arrays only. The programs never write the map anyway.
	})
	if err != nil {
		return nil, fmt.Errorf("create rule map: %w", err)
	}
	for i, r := range rules {
		if err := m.Update(uint32(i), r.marshal(), ebpf.UpdateAny); err != nil {
			m.Close()
			return nil, fmt.Errorf("fill rule map: %w", err)
		}
	}
	// Nobody changes an instance's rules once it runs: not even moat.
	if err := m.Freeze(); err != nil {
		m.Close()
		return nil, fmt.Errorf("freeze rule map: %w", err)
	}
	return m, nil
}

// attachFilter loads the filter for the rules and attaches it to the cgroup
// v2 directory at cgroupPath. Attachments are plain (not bpf_link), so they
// outlive moat if it is killed: an instance is never left unfiltered; they
// go away with the cgroup.
func attachFilter(cgroupPath string, rules4, rules6 []rule) (_ *filter, err error) {
	f := &filter{cgroup: -1}
	defer func() {
		if err != nil {
			f.close()
		}
	}()
	f.cgroup, err = unix.Open(cgroupPath, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open cgroup %s: %w", cgroupPath, err)
	}
	if f.rules4, err = newRuleMap("moat_rules4", rules4); err != nil {
		return nil, err
	}
	if f.rules6, err = newRuleMap("moat_rules6", rules6); err != nil {
		return nil, err
	}
	f.denied, err = ebpf.NewMap(&ebpf.MapSpec{Name: "moat_denied", Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		return nil, fmt.Errorf("create counter map: %w", err)
	}
	for _, h := range hooks {
		rm, n, ipOff, words := f.rules4, len(rules4), ctxUserIP4, 1
		if h.v6 {
			rm, n, ipOff, words = f.rules6, len(rules6), ctxUserIP6, 4
		}
		insns, err := program(rm, f.denied, n, ipOff, words)
		if err != nil {
			return nil, fmt.Errorf("build %s: %w", h.name, err)
		}
		p, err := ebpf.NewProgram(&ebpf.ProgramSpec{
			Name:         h.name,
			Type:         ebpf.CGroupSockAddr,
			AttachType:   h.at,
			Instructions: insns,
			License:      bpfLicense,
		})
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", h.name, err)
		}
		err = link.RawAttachProgram(link.RawAttachProgramOptions{Target: f.cgroup, Program: p, Attach: h.at, Flags: unix.BPF_F_ALLOW_MULTI})
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("attach %s to %s: %w", h.name, cgroupPath, err)
		}
		f.attached = append(f.attached, attachedProg{p, h.at})
	}
	return f, nil
}

// deniedCount reads the kernel's counter of refused attempts.
func (f *filter) deniedCount() uint64 {
	var n uint64
	if f.denied == nil || f.denied.Lookup(uint32(0), &n) != nil {
		return 0
	}
	return n
}

// close detaches the programs and frees the maps. A cgroup that is already
// gone took its programs with it.
func (f *filter) close() error {
	var errs []error
	for _, a := range f.attached {
		err := link.RawDetachProgram(link.RawDetachProgramOptions{Target: f.cgroup, Program: a.prog, Attach: a.at})
		if err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("detach filter: %w", err))
		}
		a.prog.Close()
	}
	f.attached = nil
	for _, m := range []*ebpf.Map{f.rules4, f.rules6, f.denied} {
		if m != nil {
			m.Close()
		}
	}
	f.rules4, f.rules6, f.denied = nil, nil, nil
	if f.cgroup >= 0 {
		unix.Close(f.cgroup)
		f.cgroup = -1
	}
	return errors.Join(errs...)
}

// probeFilter loads (without attaching) a connect4 program, to learn at
// start whether this kernel runs cgroup sock_addr programs.
func probeFilter() error {
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.CGroupSockAddr,
		AttachType:   ebpf.AttachCGroupInet4Connect,
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 1), asm.Return()},
		License:      bpfLicense,
	})
	if err != nil {
		return fmt.Errorf("%w: cgroup sock_addr programs: %w", ErrUnsupported, err)
	}
	return p.Close()
}
