package egress

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	"moat.dev/moat/internal/names"
)

// maxListedPorts bounds Link.Ports: past it Landlock is not the right tool
// and the cgroup filter alone enforces the ports.
const maxListedPorts = 1024

// Link is the network of one instance: its veth pair, addresses, routes,
// host rules and kernel filter. Close it when the instance is gone.
type Link struct {
	m      *Manager
	id     string
	short  string // hash of id, names the host link and the nftables chain
	hostIf string
	grants []Grant
	ports  []uint16
	slot   int

	host4, inst4, host6, inst6 netip.Prefix // inst6/host6 only with IPv6 grants

	rulesAdded  bool
	vethCreated bool
	closeOnce   sync.Once
	closeErr    error
	mu          sync.Mutex // guards filter and finalDenied
	filter      *filter
	finalDenied uint64
}

// Attach gives the instance whose init has pid pid — still blocked, in its
// own network namespace, and already in its cgroup v2 directory cgroupPath —
// its network: the filter on its cgroup, a veth pair (host end
// "mt-<hash of id>", instance end "eth0"), addresses from the pools, a
// default route via the host end, forwarding and NAT on the host for its
// grants. grants must not be empty: an instance without grants keeps only
// its loopback and needs no Link.
//
// Errors wrap ErrInvalidGrant or ErrForbidden (the caller's), or
// ErrUnsupported, ErrPoolExhausted, ErrClosed (the platform's).
func (m *Manager) Attach(pid int, instanceID, cgroupPath string, grants []Grant) (_ *Link, err error) {
	if !names.Instance(instanceID) {
		return nil, fmt.Errorf("attach: invalid instance id %q", instanceID)
	}
	if pid <= 0 {
		return nil, fmt.Errorf("attach %s: invalid pid %d", instanceID, pid)
	}
	if cgroupPath == "" {
		return nil, fmt.Errorf("attach %s: %w: the instance has no cgroup v2 directory", instanceID, ErrUnsupported)
	}
	if len(grants) == 0 {
		return nil, fmt.Errorf("attach %s: %w: no grants", instanceID, ErrInvalidGrant)
	}
	if len(grants) > MaxGrants {
		return nil, fmt.Errorf("attach %s: %w: %d grants, at most %d", instanceID, ErrInvalidGrant, len(grants), MaxGrants)
	}
	m.life.RLock()
	defer m.life.RUnlock()
	norm := make([]Grant, len(grants))
	needV6 := false
	for i, g := range grants {
		if err := g.Validate(); err != nil {
			return nil, fmt.Errorf("attach %s: grant %s: %w", instanceID, g, err)
		}
		norm[i] = g.normalize()
		needV6 = needV6 || norm[i].CIDR.Addr().Is6()
	}
	sum := sha256.Sum256([]byte(instanceID))
	short := hex.EncodeToString(sum[:6])
	l := &Link{m: m, id: instanceID, short: short, hostIf: linkPrefix + short, grants: norm, ports: tcpPorts(norm)}
	if err := m.takeSlot(l); err != nil {
		return nil, fmt.Errorf("attach %s: %w", instanceID, err)
	}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	l.host4, l.inst4, l.host6, l.inst6 = m.slotAddrs(l.slot)
	if !needV6 {
		l.host6, l.inst6 = netip.Prefix{}, netip.Prefix{}
	}
	refused, err := m.hostRefused()
	if err != nil {
		return nil, fmt.Errorf("attach %s: %w", instanceID, err)
	}
	for _, g := range norm {
		for _, p := range refused {
			if within(g.CIDR, p) {
				return nil, fmt.Errorf("attach %s: grant %s: %w: it is moat's or the host's own address (%s)", instanceID, g, ErrForbidden, p)
			}
		}
	}
	// The filter comes first: from the moment the instance has a route
	// out, the kernel refuses everything it was not granted.
	rules4, rules6 := policyRules(norm, refused)
	f, err := attachFilter(cgroupPath, rules4, rules6)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return nil, fmt.Errorf("attach %s: %w: %w", instanceID, ErrUnsupported, err)
		}
		return nil, fmt.Errorf("attach %s: %w", instanceID, err)
	}
	l.mu.Lock()
	l.filter = f
	l.mu.Unlock()
	l.rulesAdded = true // set before, so that a partial add is removed
	if err := m.addInstanceRules(l); err != nil {
		return nil, fmt.Errorf("attach %s: %w", instanceID, err)
	}
	if err := m.enableUplinks(m.uplinksFor(norm)); err != nil {
		return nil, fmt.Errorf("attach %s: %w", instanceID, err)
	}
	if err := m.plumb(l, pid); err != nil {
		return nil, fmt.Errorf("attach %s: %w", instanceID, err)
	}
	m.log.Debug("instance network attached", logKeyInstance, instanceID, logKeyLink, l.hostIf, logKeyAddress, l.inst4.Addr())
	return l, nil
}

// plumb creates the veth pair and configures both ends.
func (m *Manager) plumb(l *Link, pid int) error {
	nsfd, err := openPidNetns(pid)
	if err != nil {
		return err
	}
	defer unix.Close(nsfd)
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: l.hostIf},
		PeerName:      "eth0",
		PeerNamespace: netlink.NsFd(nsfd),
	}
	if err := m.nl.LinkAdd(veth); err != nil {
		return fmt.Errorf("create veth %s: %w", l.hostIf, err)
	}
	l.vethCreated = true
	host, err := m.nl.LinkByName(l.hostIf)
	if err != nil {
		return fmt.Errorf("find %s: %w", l.hostIf, err)
	}
	if err := m.nl.LinkSetAlias(host, "moat instance "+l.id); err != nil {
		return fmt.Errorf("name %s: %w", l.hostIf, err)
	}
	err = m.host.do(func() error {
		if err := writeSysctl(confPath(unix.AF_INET, l.hostIf, "forwarding"), "1"); err != nil {
			return err
		}
		if !l.inst6.IsValid() {
			return nil
		}
		if err := writeSysctl(confPath(unix.AF_INET6, l.hostIf, "accept_ra"), "0"); err != nil {
			return err
		}
		return writeSysctl(confPath(unix.AF_INET6, l.hostIf, forwardingKey(unix.AF_INET6)), "1")
	})
	if err != nil {
		if l.inst6.IsValid() && errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("%w: no per-interface IPv6 forwarding: %w", ErrUnsupported, err)
		}
		return fmt.Errorf("enable forwarding on %s: %w", l.hostIf, err)
	}
	if err := addAddrs(m.nl, host, l.host4, l.host6); err != nil {
		return fmt.Errorf("address %s: %w", l.hostIf, err)
	}
	if err := m.nl.LinkSetUp(host); err != nil {
		return fmt.Errorf("set %s up: %w", l.hostIf, err)
	}

	ih, err := netlink.NewHandleAt(netns.NsHandle(nsfd), unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink in instance: %w", err)
	}
	defer ih.Close()
	lo, err := ih.LinkByName("lo")
	if err == nil {
		err = ih.LinkSetUp(lo)
	}
	if err != nil {
		return fmt.Errorf("instance loopback: %w", err)
	}
	eth, err := ih.LinkByName("eth0")
	if err != nil {
		return fmt.Errorf("instance eth0: %w", err)
	}
	if err := addAddrs(ih, eth, l.inst4, l.inst6); err != nil {
		return fmt.Errorf("address instance eth0: %w", err)
	}
	if err := ih.LinkSetUp(eth); err != nil {
		return fmt.Errorf("set instance eth0 up: %w", err)
	}
	if err := ih.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Gw: l.host4.Addr().AsSlice()}); err != nil {
		return fmt.Errorf("instance default route: %w", err)
	}
	if l.inst6.IsValid() {
		r := &netlink.Route{LinkIndex: eth.Attrs().Index, Gw: l.host6.Addr().AsSlice(), Dst: &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}}
		if err := ih.RouteAdd(r); err != nil {
			return fmt.Errorf("instance default IPv6 route: %w", err)
		}
	}
	// The kernel handles a veth's carrier asynchronously; until it has,
	// the link drops what is sent on it. The instance's first packet
	// must not be lost.
	if err := waitOperUp(netns.NsHandle(nsfd), "eth0", operUpTimeout); err != nil {
		return fmt.Errorf("instance eth0: %w", err)
	}
	return nil
}

const operUpTimeout = 5 * time.Second

// waitOperUp waits until link name in namespace ns is operationally up.
func waitOperUp(ns netns.NsHandle, name string, timeout time.Duration) error {
	ch := make(chan netlink.LinkUpdate, 16)
	done := make(chan struct{})
	// The subscription's reader ends at its next receive (at most
	// timeout later): drain it so that it never blocks on ch.
	defer func() {
		close(done)
		go func() {
			for range ch {
			}
		}()
	}()
	tv := unix.NsecToTimeval(timeout.Nanoseconds())
	err := netlink.LinkSubscribeWithOptions(ch, done, netlink.LinkSubscribeOptions{Namespace: &ns, ListExisting: true, ReceiveTimeout: &tv})
	if err != nil {
		return fmt.Errorf("watch links: %w", err)
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		select {
		case u, ok := <-ch:
			if !ok {
				return errors.New("link updates ended")
			}
			if u.Attrs().Name == name && u.Attrs().OperState == netlink.OperUp {
				return nil
			}
		case <-deadline.C:
			return fmt.Errorf("not up after %v", timeout)
		}
	}
}

func addAddrs(h *netlink.Handle, link netlink.Link, p4, p6 netip.Prefix) error {
	for _, p := range []netip.Prefix{p4, p6} {
		if !p.IsValid() {
			continue
		}
		a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
		if p.Addr().Is6() {
			a.Flags = unix.IFA_F_NODAD // usable at once; the link has one peer
		}
		if err := h.AddrAdd(link, a); err != nil {
			return err
		}
	}
	return nil
}

// tcpPorts lists the distinct TCP ports grants open, for Landlock. It is
// nil when a grant opens every TCP port or more than maxListedPorts are
// open (Landlock cannot help then), and empty, not nil, when no TCP port
// is granted.
func tcpPorts(grants []Grant) []uint16 {
	set := map[uint16]bool{}
	for _, g := range grants {
		if g.Proto == ProtoUDP {
			continue
		}
		if g.Ports.Any() {
			return nil
		}
		for p := g.Ports.From; ; p++ {
			set[p] = true
			if len(set) > maxListedPorts {
				return nil
			}
			if p == g.Ports.To {
				break
			}
		}
	}
	out := make([]uint16, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// Ports are the distinct TCP ports granted, for the sandbox's Landlock
// ConnectTCP rules. Nil means every port may be granted (a grant of all
// ports, or too many to list): the caller then leaves Landlock's network
// restriction off for this instance, and the kernel filter alone enforces
// ports. Empty (not nil) means no TCP port is granted.
func (l *Link) Ports() []uint16 {
	if l.ports == nil {
		return nil
	}
	return slices.Clone(l.ports)
}

// Address is the instance's IPv4 address.
func (l *Link) Address() netip.Addr { return l.inst4.Addr() }

// HostInterface is the name of the host end of the instance's veth pair.
func (l *Link) HostInterface() string { return l.hostIf }

// Denied is how many connect and sendmsg calls of the instance the kernel
// refused so far (read from the filter's counter; after Close, the count
// at Close).
func (l *Link) Denied() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.filter == nil {
		return l.finalDenied
	}
	return l.filter.deniedCount()
}

// Close removes the instance's veth pair (with its addresses and routes),
// its host rules and its filter. It is idempotent.
func (l *Link) Close() error {
	l.closeOnce.Do(func() {
		m := l.m
		var errs []error
		// The link and the rules go in parallel: each waits for the
		// kernel's RCU grace periods. Without its rules, the instance's
		// packets meet the forward chain's final drop.
		var wg sync.WaitGroup
		var linkErr error
		if l.vethCreated {
			wg.Go(func() {
				// Deleting one end deletes the pair; a pair whose
				// instance namespace is gone was deleted by the kernel.
				if host, err := m.nl.LinkByName(l.hostIf); err == nil {
					if err := m.nl.LinkDel(host); err != nil {
						linkErr = fmt.Errorf("delete %s: %w", l.hostIf, err)
					}
				}
			})
		}
		if l.rulesAdded {
			errs = append(errs, m.delInstanceRules(l))
		}
		wg.Wait()
		errs = append(errs, linkErr)
		l.mu.Lock()
		if l.filter != nil {
			l.finalDenied = l.filter.deniedCount()
			errs = append(errs, l.filter.close())
			l.filter = nil
		}
		l.mu.Unlock()
		m.freeSlot(l)
		if err := errors.Join(errs...); err != nil {
			l.closeErr = fmt.Errorf("close link of %s: %w", l.id, err)
		}
	})
	return l.closeErr
}
