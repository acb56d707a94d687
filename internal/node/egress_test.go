package node

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"moat.dev/moat/internal/fixture"
)

// testHost is a network namespace the test creates, joined to the host by
// a veth pair, with a TCP echo server: the only outside host a networked
// function in these tests may reach. It uses 198.18.0.0/15, the
// benchmarking range, routed here only to the test's own veth.
type testHost struct {
	ns, hostIf string
	addr       string // the echo server, host:port
}

func newTestHost(t *testing.T) *testHost {
	t.Helper()
	n := rand.IntN(200) + 20
	h := &testHost{ns: fmt.Sprintf("moat-e2e-%d", n), hostIf: fmt.Sprintf("mte%d", n)}
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	ip("netns", "add", h.ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", h.ns).Run() })
	ip("link", "add", h.hostIf, "type", "veth", "peer", "name", "eth0", "netns", h.ns)
	t.Cleanup(func() { exec.Command("ip", "link", "del", h.hostIf).Run() })
	ip("addr", "add", fmt.Sprintf("198.18.%d.1/24", n), "dev", h.hostIf)
	ip("link", "set", h.hostIf, "up")
	ip("-n", h.ns, "addr", "add", fmt.Sprintf("198.18.%d.2/24", n), "dev", "eth0")
	ip("-n", h.ns, "link", "set", "eth0", "up")
	ip("-n", h.ns, "link", "set", "lo", "up")
	ip("-n", h.ns, "route", "add", "default", "via", fmt.Sprintf("198.18.%d.1", n))
	h.addr = fmt.Sprintf("198.18.%d.2:7777", n)

	ln := listenInNamedNetns(t, h.ns, h.addr)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, err := bufio.NewReader(c).ReadString('\n')
				if err == nil {
					io.WriteString(c, "pong "+line)
				}
			}()
		}
	}()
	return h
}

// listenInNamedNetns listens on addr inside /run/netns/name.
func listenInNamedNetns(t *testing.T, name, addr string) net.Listener {
	t.Helper()
	type res struct {
		ln  net.Listener
		err error
	}
	ch := make(chan res, 1)
	go func() {
		runtime.LockOSThread() // not unlocked if the thread cannot return: it is discarded
		self, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			ch <- res{err: err}
			return
		}
		defer unix.Close(self)
		target, err := unix.Open("/run/netns/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			ch <- res{err: err}
			return
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			ch <- res{err: err}
			return
		}
		ln, lerr := net.Listen("tcp", addr)
		if err := unix.Setns(self, unix.CLONE_NEWNET); err != nil {
			ch <- res{err: fmt.Errorf("return to host netns: %w", err)}
			return
		}
		runtime.UnlockOSThread()
		ch <- res{ln, lerr}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatalf("listen in %s: %v", name, r.err)
	}
	return r.ln
}

type dialResult struct {
	OK    bool   `json:"ok"`
	Reply string `json:"reply"`
	Error string `json:"error"`
	MS    int64  `json:"ms"`
}

// TestEgressGrants deploys a function granted one test host and port and
// checks, from inside its instance, that the grant works and that every
// other destination is refused by the kernel at once.
func TestEgressGrants(t *testing.T) {
	n := startNode(t, nil)
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatal("the egress test needs iproute2's ip")
	}
	host := newTestHost(t)
	zip := fixture.GoZip(t, "testdata/functions/behave")
	body, _ := json.Marshal(map[string]any{
		"FunctionName": "net", "Runtime": "provided.al2023", "Handler": "bootstrap",
		"Code":    map[string]string{"ZipFile": base64.StdEncoding.EncodeToString(zip)},
		"Sandbox": map[string]any{"Egress": []string{host.addr}},
	})
	resp := n.signed(t, "POST", "/2015-03-31/functions", body)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("create networked function: %d %s", resp.StatusCode, b)
	}
	dial := func(addr string) dialResult {
		t.Helper()
		out := n.invoke(t, "net", map[string]any{"action": "dial", "addr": addr}, nil)
		var r dialResult
		if err := json.Unmarshal(out.Payload, &r); err != nil {
			t.Fatalf("dial %s: %s", addr, out.Payload)
		}
		return r
	}
	if r := dial(host.addr); !r.OK || r.Reply != "pong ping" {
		t.Fatalf("granted destination %s: %+v", host.addr, r)
	}
	hostEnd := strings.Replace(host.addr, ".2:", ".1:", 1)
	otherPort := strings.Replace(host.addr, ":7777", ":7778", 1)
	for _, addr := range []string{otherPort, hostEnd, "169.254.169.254:80", "[fd00:ec2::254]:80", strings.TrimPrefix(n.url, "http://")} {
		r := dial(addr)
		if r.OK {
			t.Errorf("%s was reachable", addr)
			continue
		}
		if r.MS > 500 || !(strings.Contains(r.Error, "operation not permitted") || strings.Contains(r.Error, "permission denied") || strings.Contains(r.Error, "network is unreachable")) {
			t.Errorf("%s: refused too slowly or not by the kernel: %+v", addr, r)
		}
	}
	status := n.signed(t, "GET", "/moat/v1/status", nil)
	var st struct {
		Dispatcher struct {
			Refused uint64 `json:"invocationsWithRefusedConnections"`
		} `json:"dispatcher"`
	}
	json.NewDecoder(status.Body).Decode(&st)
	status.Body.Close()
	if st.Dispatcher.Refused == 0 {
		t.Errorf("refused connections were not counted")
	}

}
