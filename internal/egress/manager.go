package egress

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Platform errors.
var (
	// ErrUnsupported: this host cannot give instances network grants
	// (no cgroup sock_addr programs, no cgroup v2 directory for the
	// instance, or no per-interface IPv6 forwarding for IPv6 grants).
	ErrUnsupported = errors.New("network grants not supported on this host")
	// ErrPoolExhausted: every instance address of the pool is in use.
	ErrPoolExhausted = errors.New("instance address pool exhausted")
	// ErrClosed: the Manager was closed.
	ErrClosed = errors.New("egress manager closed")
)

// Defaults of Options.
var (
	DefaultPool  = netip.MustParsePrefix("100.64.0.0/16")       // carrier-grade NAT space, RFC 6598
	DefaultPool6 = netip.MustParsePrefix("fd6d:6f61:7400::/48") // unique local, RFC 4193
)

// Options configure a Manager.
type Options struct {
	// Pool holds the IPv4 addresses of instance links, split into /30s:
	// the host end is .1, the instance .2. Default DefaultPool.
	Pool netip.Prefix
	// Pool6 holds the IPv6 addresses of instances that have IPv6 grants,
	// split into /126s (host ::1, instance ::2). Default DefaultPool6.
	Pool6  netip.Prefix
	Logger *slog.Logger
}

// Log keys.
const (
	logKeyInstance = "instance"
	logKeyLink     = "link"
	logKeyCount    = "count"
	logKeyErr      = "err"
	logKeyGrant    = "grant"
	logKeyFamily   = "family"
	logKeyAddress  = "address"
	logKeyRestored = "restored_forwarding"
)

// Manager owns every instance link, host address, forwarding setting and
// nftables rule of moat's egress on the host. It is safe for concurrent use.
//
// Locking, in this order: life is held for reading by every Attach and for
// writing by Close, so that Close waits for Attaches in flight. mu guards
// slots, links, uplinks and closed; no Link method is called under it. A
// Link's mu guards only its filter.
type Manager struct {
	opts   Options
	log    *slog.Logger
	host   netnsRef
	nl     *netlink.Handle // route netlink in the host's namespace
	nslots int

	life    sync.RWMutex
	mu      sync.Mutex
	slots   map[int]*Link
	links   map[string]*Link // by instance id
	next    int
	uplinks map[uplinkKey]bool // forwarding checked (and switched on if it was off)
	closed  bool
}

// NewManager prepares the host: it removes what a previous run left (links
// named mt-*, the nftables table "moat", forwarding it had switched on on
// uplinks) — moat may have been killed with SIGKILL — and installs a fresh
// table. It fails with ErrUnsupported where the kernel cannot filter
// instances.
func NewManager(opts Options) (*Manager, error) {
	return newManager(opts, processNetns)
}

func newManager(opts Options, host netnsRef) (*Manager, error) {
	if !opts.Pool.IsValid() {
		opts.Pool = DefaultPool
	}
	if !opts.Pool6.IsValid() {
		opts.Pool6 = DefaultPool6
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := checkPools(opts.Pool, opts.Pool6); err != nil {
		return nil, err
	}
	if err := probeFilter(); err != nil {
		return nil, err
	}
	h, err := host.handle()
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	m := &Manager{
		opts:    opts,
		log:     opts.Logger,
		host:    host,
		nl:      h,
		nslots:  1 << min(30-opts.Pool.Bits(), 126-opts.Pool6.Bits(), 20),
		slots:   map[int]*Link{},
		links:   map[string]*Link{},
		uplinks: map[uplinkKey]bool{},
	}
	if err := m.sweep(); err != nil {
		h.Close()
		return nil, fmt.Errorf("remove leftovers of an earlier run: %w", err)
	}
	if err := m.checkPoolsFree(); err != nil {
		h.Close()
		return nil, err
	}
	if err := m.installTable(); err != nil {
		h.Close()
		return nil, err
	}
	return m, nil
}

func checkPools(p4, p6 netip.Prefix) error {
	if !p4.Addr().Is4() || p4.Bits() > 30 || p4.Masked() != p4 {
		return fmt.Errorf("egress pool %s: want a canonical IPv4 prefix of /30 or wider", p4)
	}
	// Slots are numbered in the low 64 bits: of a pool wider than /64,
	// only the first /64 is used.
	if !p6.Addr().Is6() || p6.Addr().Is4In6() || p6.Bits() > 126 || p6.Masked() != p6 {
		return fmt.Errorf("egress pool %s: want a canonical IPv6 prefix of /126 or wider", p6)
	}
	for _, f := range forbidden {
		if p4.Overlaps(f.prefix) || p6.Overlaps(f.prefix) {
			return fmt.Errorf("egress pool overlaps %s", f.prefix)
		}
	}
	return nil
}

// checkPoolsFree refuses pools the host already uses (an overlay network
// in 100.64.0.0/10, say): instances would shadow or be shadowed by it.
func (m *Manager) checkPoolsFree() error {
	addrs, err := m.nl.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return fmt.Errorf("list host addresses: %w", err)
	}
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ones, _ := a.Mask.Size()
		p := netip.PrefixFrom(ip.Unmap(), ones)
		for _, pool := range []netip.Prefix{m.opts.Pool, m.opts.Pool6} {
			if p.Overlaps(pool) {
				return fmt.Errorf("egress pool %s overlaps the host's network %s: choose another pool", pool, p.Masked())
			}
		}
	}
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		routes, err := m.nl.RouteListFiltered(fam, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
		if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
			return fmt.Errorf("list host routes: %w", err)
		}
		for _, r := range routes {
			if r.Dst == nil {
				continue // the default route overlaps everything
			}
			a, _ := netip.AddrFromSlice(r.Dst.IP)
			ones, _ := r.Dst.Mask.Size()
			p := netip.PrefixFrom(a.Unmap(), ones)
			if p.Bits() == 0 {
				continue
			}
			for _, pool := range []netip.Prefix{m.opts.Pool, m.opts.Pool6} {
				if p.Overlaps(pool) {
					return fmt.Errorf("egress pool %s overlaps the host's route to %s: choose another pool", pool, p)
				}
			}
		}
	}
	return nil
}

// sweep removes links named mt-* and the nftables table of an earlier run,
// restoring the forwarding settings that table recorded.
func (m *Manager) sweep() error {
	var errs []error
	links, err := m.nl.LinkList()
	if err != nil {
		return fmt.Errorf("list links: %w", err)
	}
	n := 0
	for _, l := range links {
		if strings.HasPrefix(l.Attrs().Name, linkPrefix) && l.Type() == "veth" {
			if err := m.nl.LinkDel(l); err != nil {
				errs = append(errs, fmt.Errorf("delete link %s: %w", l.Attrs().Name, err))
				continue
			}
			n++
		}
	}
	restored, err := m.removeTable()
	if err != nil {
		errs = append(errs, err)
	}
	if n > 0 || restored > 0 {
		m.log.Warn("removed the network leftovers of an earlier run", logKeyCount, n, logKeyRestored, restored)
	}
	return errors.Join(errs...)
}

// takeSlot reserves an address slot and the instance id.
func (m *Manager) takeSlot(l *Link) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if _, ok := m.links[l.id]; ok {
		return fmt.Errorf("instance %s already has a link", l.id)
	}
	for _, o := range m.links {
		if o.short == l.short { // 48 bits of SHA-256: not expected, but never shared
			return fmt.Errorf("instance %s: link name %s is in use by instance %s", l.id, l.hostIf, o.id)
		}
	}
	for i := range m.nslots {
		s := (m.next + i) % m.nslots
		if m.slots[s] == nil {
			m.slots[s] = l
			m.links[l.id] = l
			m.next = s + 1
			l.slot = s
			return nil
		}
	}
	return ErrPoolExhausted
}

func (m *Manager) freeSlot(l *Link) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.slots[l.slot] == l {
		delete(m.slots, l.slot)
	}
	if m.links[l.id] == l {
		delete(m.links, l.id)
	}
}

// slotAddrs are the host and instance prefixes of slot s.
func (m *Manager) slotAddrs(s int) (host4, inst4, host6, inst6 netip.Prefix) {
	b4 := m.opts.Pool.Addr().As4()
	base := binary.BigEndian.Uint32(b4[:]) + uint32(s)*4
	a4 := func(off uint32) netip.Prefix {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], base+off)
		return netip.PrefixFrom(netip.AddrFrom4(b), 30)
	}
	b6 := m.opts.Pool6.Addr().As16()
	low := binary.BigEndian.Uint64(b6[8:]) + uint64(s)*4
	a6 := func(off uint64) netip.Prefix {
		b := b6
		binary.BigEndian.PutUint64(b[8:], low+off)
		return netip.PrefixFrom(netip.AddrFrom16(b), 126)
	}
	return a4(1), a4(2), a6(1), a6(2)
}

// hostRefused are the host's own addresses and moat's pools: no instance
// reaches them, whatever it was granted.
func (m *Manager) hostRefused() ([]netip.Prefix, error) {
	addrs, err := m.nl.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return nil, fmt.Errorf("list host addresses: %w", err)
	}
	out := []netip.Prefix{m.opts.Pool, m.opts.Pool6}
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if ip.IsLoopback() || ip.IsLinkLocalUnicast() || m.opts.Pool.Contains(ip) || m.opts.Pool6.Contains(ip) {
			continue // refused anyway, or the instance's own loopback
		}
		out = append(out, netip.PrefixFrom(ip, ip.BitLen()))
	}
	return out, nil
}

// forwardingKey is the per-interface sysctl that lets packets arriving on
// an interface be forwarded: IPv4's forwarding, IPv6's force_forwarding
// (Linux 6.17 and later; IPv6's own "forwarding" is not per interface).
func forwardingKey(family int) string {
	if family == unix.AF_INET6 {
		return "force_forwarding"
	}
	return "forwarding"
}

// uplinksFor returns the interfaces the host routes the grants through:
// replies to instances come back on them, so they must forward.
func (m *Manager) uplinksFor(grants []Grant) []uplinkKey {
	seen := map[uplinkKey]bool{}
	var out []uplinkKey
	names := map[int]string{}
	addIndex := func(idx, family int) {
		if idx == 0 {
			return
		}
		name, ok := names[idx]
		if !ok {
			if l, err := m.nl.LinkByIndex(idx); err == nil {
				name = l.Attrs().Name
			}
			names[idx] = name
		}
		k := uplinkKey{name, family}
		if name == "" || name == "lo" || strings.HasPrefix(name, linkPrefix) || seen[k] {
			return
		}
		seen[k] = true
		out = append(out, k)
	}
	routes := map[int][]netlink.Route{}
	for _, g := range grants {
		fam := unix.AF_INET
		if g.CIDR.Addr().Is6() {
			fam = unix.AF_INET6
		}
		if !g.CIDR.Addr().IsUnspecified() {
			rs, err := m.nl.RouteGet(g.CIDR.Addr().AsSlice())
			if err != nil {
				m.log.Warn("no route to a granted destination", logKeyGrant, g.String(), logKeyErr, err)
			}
			for _, r := range rs {
				addIndex(r.LinkIndex, fam)
			}
		}
		if _, ok := routes[fam]; !ok {
			rs, err := m.nl.RouteListFiltered(fam, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
			if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
				m.log.Warn("list routes", logKeyErr, err)
			}
			routes[fam] = rs
		}
		for _, r := range routes[fam] {
			dst := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
			if fam == unix.AF_INET6 {
				dst = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
			}
			if r.Dst != nil {
				a, _ := netip.AddrFromSlice(r.Dst.IP)
				ones, _ := r.Dst.Mask.Size()
				dst = netip.PrefixFrom(a.Unmap(), ones)
			}
			if !within(dst, g.CIDR) {
				continue
			}
			addIndex(r.LinkIndex, fam)
			for _, nh := range r.MultiPath {
				addIndex(nh.LinkIndex, fam)
			}
		}
	}
	return out
}

// enableUplinks switches forwarding on on the uplinks that do not forward
// yet. It stays on until Manager.Close (or, after a crash, the next
// NewManager) puts the recorded value back: toggling an interface's
// forwarding with every instance would cost each cold start an nftables
// transaction and make the interface change roles again and again.
func (m *Manager) enableUplinks(keys []uplinkKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range keys {
		if m.uplinks[k] {
			continue
		}
		path := confPath(k.family, k.ifname, forwardingKey(k.family))
		var prev string
		err := m.host.do(func() error {
			var err error
			prev, err = readSysctl(path)
			return err
		})
		if errors.Is(err, fs.ErrNotExist) && k.family == unix.AF_INET6 {
			err = fmt.Errorf("%w: no per-interface IPv6 forwarding (%s)", ErrUnsupported, path)
		}
		if err != nil {
			return fmt.Errorf("uplink %s: %w", k.ifname, err)
		}
		if prev == "0" {
			// Recorded in the kernel first, so that a crash right after
			// still lets the next start restore it.
			if err := m.addUplinkRule(k, prev); err != nil {
				return err
			}
			if err := m.host.do(func() error { return writeSysctl(path, "1") }); err != nil {
				_ = m.delUplinkRule(k)
				return fmt.Errorf("enable forwarding on uplink %s: %w", k.ifname, err)
			}
			m.log.Info("enabled forwarding on an uplink for replies to instances", logKeyLink, k.ifname, logKeyFamily, k.family)
		}
		m.uplinks[k] = true
	}
	return nil
}

func (m *Manager) restoreForwarding(k uplinkKey, prev string) error {
	err := m.host.do(func() error {
		return writeSysctl(confPath(k.family, k.ifname, forwardingKey(k.family)), prev)
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil // the interface is gone
	}
	if err != nil {
		return fmt.Errorf("restore forwarding on %s: %w", k.ifname, err)
	}
	return nil
}

// Close closes every link, restores the forwarding settings of the uplinks
// and removes moat's nftables table. It is idempotent.
func (m *Manager) Close() error {
	m.life.Lock()
	defer m.life.Unlock()
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	all := make([]*Link, 0, len(m.links))
	for _, l := range m.links {
		all = append(all, l)
	}
	m.mu.Unlock()
	var errs []error
	for _, l := range all {
		errs = append(errs, l.Close())
	}
	if _, err := m.removeTable(); err != nil {
		errs = append(errs, err)
	}
	m.nl.Close()
	return errors.Join(errs...)
}
