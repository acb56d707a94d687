package egress

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf/link"
	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

func newTestManager(t testing.TB, tb *testbed) *Manager {
	t.Helper()
	m, err := newManager(Options{}, netnsRef(tb.host))
	if errors.Is(err, ErrUnsupported) {
		needOrSkip(t, "%v", err)
	}
	if err != nil {
		t.Fatalf("new manager: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func mustGrants(t testing.TB, ss ...string) []Grant {
	t.Helper()
	var out []Grant
	for _, s := range ss {
		g, err := ParseGrant(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, g)
	}
	return out
}

// hostSysctl reads a sysctl inside netns fd.
func hostSysctl(t testing.TB, fd int, path string) string {
	t.Helper()
	var v string
	if err := inNetns(fd, func() error {
		var err error
		v, err = readSysctl(path)
		return err
	}); err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return v
}

// moatLinks lists links named mt-* in netns fd.
func moatLinks(t testing.TB, tb *testbed) []string {
	t.Helper()
	links, err := tb.hostH.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range links {
		if strings.HasPrefix(l.Attrs().Name, linkPrefix) {
			out = append(out, l.Attrs().Name)
		}
	}
	return out
}

// nftState is the moat table's chains and the rule count of egress and
// uplinks; exists is false when there is no table.
type nftState struct {
	exists         bool
	chains         []string
	egress, uplink int
}

func readNft(t testing.TB, tb *testbed) nftState {
	t.Helper()
	c, err := nftables.New(nftables.WithNetNSFd(tb.host))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListTableOfFamily(tableName, nftables.TableFamilyINet); err != nil {
		return nftState{}
	}
	s := nftState{exists: true}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range chains {
		if ch.Table.Name == tableName {
			s.chains = append(s.chains, ch.Name)
		}
	}
	slices.Sort(s.chains)
	r, err := c.GetRules(moatTable, &nftables.Chain{Name: chainEgress, Table: moatTable})
	if err != nil {
		t.Fatal(err)
	}
	s.egress = len(r)
	r, err = c.GetRules(moatTable, &nftables.Chain{Name: chainUplinks, Table: moatTable})
	if err != nil {
		t.Fatal(err)
	}
	s.uplink = len(r)
	return s
}

var baseChains = []string{chainEgress, chainForward, chainInput, chainPost, chainUplinks}

// attachedPrograms counts the programs attached to a cgroup at the
// filter's hooks.
func attachedPrograms(t testing.TB, cgroup string) int {
	t.Helper()
	fd, err := unix.Open(cgroup, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	n := 0
	for _, h := range hooks {
		r, err := link.QueryPrograms(link.QueryOptions{Target: fd, Attach: h.at})
		if err != nil {
			t.Fatalf("query %s: %v", h.name, err)
		}
		n += len(r.Programs)
	}
	return n
}

type expect int

const (
	wantEcho        expect = iota // connected and echoed
	wantRefused                   // EPERM at once, from the filter
	wantConnRefused               // ECONNREFUSED: reached a port nobody listens on
	wantDropped                   // no answer: the host dropped the packets
)

type check struct {
	probe
	want expect
}

func plan(checks []check) []probe {
	p := make([]probe, len(checks))
	for i, c := range checks {
		p[i] = c.probe
	}
	return p
}

func runChecks(t *testing.T, inst *instance, checks []check) (refused uint64) {
	t.Helper()
	return checkResults(t, checks, inst.run(t, plan(checks)))
}

func checkResults(t *testing.T, checks []check, res []probeResult) (refused uint64) {
	t.Helper()
	for i, c := range checks {
		r := res[i]
		t.Logf("%-32s %s %-28s -> errno %d %q echoed=%v in %v", c.Name, c.Net, c.Addr, r.Errno, r.Err, r.Echoed, r.Elapsed)
		switch c.want {
		case wantEcho:
			if !r.Echoed {
				t.Errorf("%s: %s %s should connect and echo; got %q", c.Name, c.Net, c.Addr, r.Err)
			}
		case wantRefused:
			refused++
			if r.Errno != int(syscall.EPERM) && r.Errno != int(syscall.EACCES) {
				t.Errorf("%s: %s %s should be refused with EPERM; got errno %d %q", c.Name, c.Net, c.Addr, r.Errno, r.Err)
			}
			if r.Elapsed > 500*time.Millisecond {
				t.Errorf("%s: refusal took %v; it must be immediate", c.Name, r.Elapsed)
			}
		case wantDropped:
			if r.Errno != int(syscall.EINPROGRESS) && r.Errno != int(syscall.ETIMEDOUT) {
				t.Errorf("%s: %s %s should go unanswered; got errno %d %q", c.Name, c.Net, c.Addr, r.Errno, r.Err)
			}
		case wantConnRefused:
			if r.Errno != int(syscall.ECONNREFUSED) {
				t.Errorf("%s: %s %s should find nothing listening (ECONNREFUSED); got errno %d %q", c.Name, c.Net, c.Addr, r.Errno, r.Err)
			}
		}
	}
	return refused
}

func TestAttachEnforcesGrants(t *testing.T) {
	tb := newTestbed(t)
	// S: the granted services, and one on a port that is not granted.
	echoTCP(t, tb.server, tb.ip4(2)+":8443")
	echoTCP(t, tb.server, tb.ip4(2)+":8444")
	echoTCP(t, tb.server, "["+tb.ip6(2)+"]:8443")
	echoUDP(t, tb.server, tb.ip4(2)+":5353")
	// H: listeners on every host address and on its loopback, which no
	// instance may reach.
	echoTCP(t, tb.host, ":8443")
	echoTCP(t, tb.host, ":9000")
	echoTCP(t, tb.host, "127.0.0.1:9100")

	realFwd := readProc(t, "/proc/sys/net/ipv4/ip_forward")
	m := newTestManager(t, tb)
	a := startInstance(t, tb)
	b := startInstance(t, tb)
	la, err := m.Attach(a.pid(), "fn-a-1", a.cgroup, mustGrants(t,
		tb.ip4(2)+":8443",
		tb.ip4(2)+":5353/udp",
		"["+tb.ip6(2)+"]:8443",
		fmt.Sprintf("198.18.%d.0/24:9000", tb.n), // covers the host's own 198.18.n.1
	))
	if err != nil {
		t.Fatalf("attach a: %v", err)
	}
	lb, err := m.Attach(b.pid(), "fn-b-1", b.cgroup, mustGrants(t, tb.ip4(2)+":8443"))
	if err != nil {
		t.Fatalf("attach b: %v", err)
	}
	if got := la.Ports(); !slices.Equal(got, []uint16{8443, 9000}) {
		t.Errorf("Ports() = %v, want [8443 9000]", got)
	}
	if n := attachedPrograms(t, a.cgroup); n != len(hooks) {
		t.Errorf("%d programs attached to the instance cgroup, want %d", n, len(hooks))
	}
	for _, fam := range []int{unix.AF_INET, unix.AF_INET6} {
		if v := hostSysctl(t, tb.host, confPath(fam, tb.uplink, forwardingKey(fam))); v != "1" {
			t.Errorf("uplink forwarding (family %d) = %s while attached, want 1", fam, v)
		}
	}
	if v := hostSysctl(t, tb.host, "/proc/sys/net/ipv4/ip_forward"); v != "0" {
		t.Errorf("global ip_forward in the host namespace = %s; moat must not turn it on", v)
	}

	hostEnd := la.host4.Addr().String()
	checks := []check{
		{probe{"granted tcp", "echo", "tcp4", tb.ip4(2) + ":8443", 0}, wantEcho},
		{probe{"granted udp", "echo", "udp4", tb.ip4(2) + ":5353", 0}, wantEcho},
		{probe{"granted tcp over ipv6", "echo", "tcp6", "[" + tb.ip6(2) + "]:8443", 0}, wantEcho},
		{probe{"own loopback, not the host's", "connect", "tcp4", "127.0.0.1:9100", 0}, wantConnRefused},
		{probe{"granted host, other port", "connect", "tcp4", tb.ip4(2) + ":8444", 0}, wantRefused},
		{probe{"granted host, other address", "connect", "tcp4", tb.ip4(3) + ":8443", 0}, wantRefused},
		{probe{"udp to a tcp grant", "sendto", "udp4", tb.ip4(2) + ":8443", 0}, wantRefused},
		{probe{"udp, other port", "sendto", "udp4", tb.ip4(2) + ":5354", 0}, wantRefused},
		{probe{"udp over ipv6", "sendto", "udp6", "[" + tb.ip6(2) + "]:5353", 0}, wantRefused},
		{probe{"host end of the veth", "connect", "tcp4", hostEnd + ":8443", 0}, wantRefused},
		{probe{"host address inside a grant", "connect", "tcp4", tb.ip4(1) + ":9000", 0}, wantRefused},
		{probe{"host ipv6 address", "connect", "tcp6", "[" + tb.ip6(1) + "]:8443", 0}, wantRefused},
		{probe{"other instance", "connect", "tcp4", lb.inst4.Addr().String() + ":8443", 0}, wantRefused},
		{probe{"metadata", "connect", "tcp4", "169.254.169.254:80", 0}, wantRefused},
		{probe{"metadata over udp", "sendto", "udp4", "169.254.169.254:53", 0}, wantRefused},
		{probe{"metadata ipv6", "connect", "tcp6", "[fd00:ec2::254]:80", 0}, wantRefused},
		{probe{"metadata, ipv4-mapped", "connect", "tcp6", "[::ffff:169.254.169.254]:80", 0}, wantRefused},
		{probe{"other port, ipv4-mapped", "connect", "tcp6", "[::ffff:" + tb.ip4(2) + "]:8444", 0}, wantRefused},
		{probe{"metadata, udp ipv4-mapped", "sendto", "udp6", "[::ffff:169.254.169.254]:53", 0}, wantRefused},
		{probe{"ipv6 link-local", "connect", "tcp6", "[fe80::1]:80", 0}, wantRefused},
	}
	refused := runChecks(t, a, checks)
	if got := la.Denied(); got != refused {
		t.Errorf("Denied() = %d, want %d", got, refused)
	}

	if err := la.Close(); err != nil {
		t.Fatalf("close a: %v", err)
	}
	if err := la.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if got := la.Denied(); got != refused {
		t.Errorf("Denied() after Close = %d, want %d", got, refused)
	}
	if n := attachedPrograms(t, a.cgroup); n != 0 {
		t.Errorf("%d programs still attached after Close", n)
	}
	if got := moatLinks(t, tb); !slices.Equal(got, []string{lb.hostIf}) {
		t.Errorf("links after closing a: %v, want only b's %s", got, lb.hostIf)
	}
	// b shares the uplink (IPv4) and must still work.
	runChecks(t, b, []check{
		{probe{"b granted tcp", "echo", "tcp4", tb.ip4(2) + ":8443", 0}, wantEcho},
		{probe{"b to a's old address", "connect", "tcp4", la.inst4.Addr().String() + ":8443", 0}, wantRefused},
	})
	if err := lb.Close(); err != nil {
		t.Fatalf("close b: %v", err)
	}
	if got := moatLinks(t, tb); len(got) != 0 {
		t.Errorf("links left after Close: %v", got)
	}
	// The uplinks keep forwarding (for replies only) until the Manager
	// closes; their rules record what to restore.
	if s := readNft(t, tb); !slices.Equal(s.chains, baseChains) || s.egress != 0 || s.uplink != 2 {
		t.Errorf("nftables after closing every link: %+v, want the base chains, no instance, two uplink records", s)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("close manager: %v", err)
	}
	if s := readNft(t, tb); s.exists {
		t.Errorf("table %s left after Manager.Close", tableName)
	}
	for _, fam := range []int{unix.AF_INET, unix.AF_INET6} {
		if v := hostSysctl(t, tb.host, confPath(fam, tb.uplink, forwardingKey(fam))); v != "0" {
			t.Errorf("uplink forwarding (family %d) = %s after Manager.Close, want 0 (restored)", fam, v)
		}
	}
	if v := readProc(t, "/proc/sys/net/ipv4/ip_forward"); v != realFwd {
		t.Errorf("the real host's ip_forward changed: %s -> %s", realFwd, v)
	}
}

func readProc(t testing.TB, path string) string {
	t.Helper()
	v, err := readSysctl(path)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestNewManagerSweepsLeftovers(t *testing.T) {
	tb := newTestbed(t)
	inst := startInstance(t, tb)
	crashed := newTestManager(t, tb)
	l, err := crashed.Attach(inst.pid(), "fn-crash-1", inst.cgroup, mustGrants(t, tb.ip4(2)+":443", "["+tb.ip6(2)+"]:443"))
	if err != nil {
		t.Fatal(err)
	}
	if got := moatLinks(t, tb); !slices.Equal(got, []string{l.hostIf}) {
		t.Fatalf("links: %v", got)
	}
	// moat dies with SIGKILL: nothing is closed. (The Go objects stay
	// unreachable; the instance and its cgroup are the test's.)
	crashed.mu.Lock()
	crashed.closed = true
	crashed.links = map[string]*Link{}
	crashed.mu.Unlock()

	m := newTestManager(t, tb)
	if got := moatLinks(t, tb); len(got) != 0 {
		t.Errorf("links left after the sweep: %v", got)
	}
	for _, fam := range []int{unix.AF_INET, unix.AF_INET6} {
		if v := hostSysctl(t, tb.host, confPath(fam, tb.uplink, forwardingKey(fam))); v != "0" {
			t.Errorf("uplink forwarding (family %d) = %s after the sweep, want 0", fam, v)
		}
	}
	if s := readNft(t, tb); !slices.Equal(s.chains, baseChains) || s.egress != 0 || s.uplink != 0 {
		t.Errorf("nftables after the sweep: %+v, want a fresh table", s)
	}
	// The filter of the crashed run stays on the cgroup (fail closed)
	// until the cgroup goes.
	if n := attachedPrograms(t, inst.cgroup); n != len(hooks) {
		t.Errorf("%d programs on the crashed instance's cgroup, want %d", n, len(hooks))
	}
	// The old run's handles are dropped without cleanup, as a crash would.
	crashed.nl.Close()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestAttachRefusesBadInput(t *testing.T) {
	tb := newTestbed(t)
	m := newTestManager(t, tb)
	inst := startInstance(t, tb)
	ok := mustGrants(t, tb.ip4(2)+":443")
	cases := []struct {
		name   string
		id     string
		cgroup string
		grants []Grant
		want   error
	}{
		{"no grants", "fn-1", inst.cgroup, nil, ErrInvalidGrant},
		{"bad id", "Fn_1", inst.cgroup, ok, nil},
		{"no cgroup", "fn-1", "", ok, ErrUnsupported},
		{"cgroup missing", "fn-1", filepath.Join(tb.cgroupV2, "moat-egress-test-missing"), ok, ErrUnsupported},
		{"pool address", "fn-1", inst.cgroup, mustGrants(t, "100.64.0.0/24:443"), ErrForbidden},
		{"host address", "fn-1", inst.cgroup, mustGrants(t, tb.ip4(1)+":443"), ErrForbidden},
		{"metadata", "fn-1", inst.cgroup, []Grant{{CIDR: mustPrefix("169.254.169.254/32"), Ports: AnyPort}}, ErrForbidden},
		{"port 0", "fn-1", inst.cgroup, []Grant{{CIDR: mustPrefix("198.18.0.0/24")}}, ErrInvalidGrant},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l, err := m.Attach(inst.pid(), c.id, c.cgroup, c.grants)
			if err == nil {
				l.Close()
				t.Fatal("Attach succeeded")
			}
			if c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
		})
	}
	// Nothing of the refused attempts is left behind.
	if got := moatLinks(t, tb); len(got) != 0 {
		t.Errorf("links left: %v", got)
	}
	if n := attachedPrograms(t, inst.cgroup); n != 0 {
		t.Errorf("%d programs left on the cgroup", n)
	}
	if s := readNft(t, tb); s.egress != 0 {
		t.Errorf("nftables rules left: %+v", s)
	}
	// The same instance attaches fine afterwards, once only.
	l, err := m.Attach(inst.pid(), "fn-1", inst.cgroup, ok)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := m.Attach(inst.pid(), "fn-1", inst.cgroup, ok); err == nil {
		t.Fatal("second Attach of one instance id succeeded")
	}
	if _, err := os.Stat(filepath.Join("/proc/sys/net/ipv4/conf", l.hostIf)); err == nil {
		t.Fatalf("%s exists in the real host's namespace", l.hostIf)
	}
}

// The host rules are a wall of their own: with the instance's filter gone,
// its packets still reach only its grants, and never the host.
func TestHostRulesWithoutFilter(t *testing.T) {
	tb := newTestbed(t)
	echoTCP(t, tb.server, tb.ip4(2)+":8443")
	echoTCP(t, tb.server, tb.ip4(2)+":8444")
	echoTCP(t, tb.host, ":8443")
	echoTCP(t, tb.host, ":9000")
	m := newTestManager(t, tb)
	inst := startInstance(t, tb)
	l, err := m.Attach(inst.pid(), "fn-wall-1", inst.cgroup, mustGrants(t, tb.ip4(2)+":8443", fmt.Sprintf("198.18.%d.0/24:9000", tb.n)))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.mu.Lock()
	err = l.filter.close()
	l.filter = nil
	l.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	const wait = 300 // ms: a dropped SYN is never answered
	runChecks(t, inst, []check{
		{probe{"granted tcp", "echo", "tcp4", tb.ip4(2) + ":8443", 0}, wantEcho},
		{probe{"granted host, other port", "connect", "tcp4", tb.ip4(2) + ":8444", wait}, wantDropped},
		{probe{"host address inside a grant", "connect", "tcp4", tb.ip4(1) + ":9000", wait}, wantDropped},
		{probe{"host end of the veth", "connect", "tcp4", l.host4.Addr().String() + ":8443", wait}, wantDropped},
	})
}

// Attaches and Closes of several instances at once each get their own
// addresses and rules, and leave nothing behind.
func TestConcurrentAttach(t *testing.T) {
	tb := newTestbed(t)
	echoTCP(t, tb.server, tb.ip4(2)+":8443")
	m := newTestManager(t, tb)
	const n = 4
	insts := make([]*instance, n)
	for i := range insts {
		insts[i] = startInstance(t, tb)
	}
	links := make([]*Link, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			links[i], errs[i] = m.Attach(insts[i].pid(), fmt.Sprintf("fn-par-%d", i), insts[i].cgroup, mustGrantsNoT(tb.ip4(2)+":8443"))
		})
	}
	wg.Wait()
	seen := map[netip.Addr]bool{}
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("attach %d: %v", i, errs[i])
		}
		if seen[links[i].Address()] {
			t.Fatalf("address %s given twice", links[i].Address())
		}
		seen[links[i].Address()] = true
	}
	checks := []check{{probe{"granted tcp", "echo", "tcp4", tb.ip4(2) + ":8443", 0}, wantEcho}}
	results := make([][]probeResult, n)
	for i := range n {
		wg.Go(func() { results[i], errs[i] = insts[i].exchange(plan(checks)) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("instance %d: %v", i, errs[i])
		}
		checkResults(t, checks, results[i])
	}
	for i := range n {
		wg.Go(func() { errs[i] = links[i].Close() })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Errorf("close %d: %v", i, errs[i])
		}
	}
	if got := moatLinks(t, tb); len(got) != 0 {
		t.Errorf("links left: %v", got)
	}
	if s := readNft(t, tb); !slices.Equal(s.chains, baseChains) || s.egress != 0 {
		t.Errorf("nftables left: %+v", s)
	}
}

func mustGrantsNoT(ss ...string) []Grant {
	var out []Grant
	for _, s := range ss {
		g, err := ParseGrant(s)
		if err != nil {
			panic(err)
		}
		out = append(out, g)
	}
	return out
}
