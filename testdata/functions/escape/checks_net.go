package main

// Checks on the network: the instance's network namespace holds only its
// own loopback, so nothing outside it may be reachable, and sockets that
// need privilege must be refused.

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func checkRawSocket(ctx context.Context, p *params) *report {
	r := &report{}
	for _, s := range []struct {
		what               string
		domain, typ, proto int
	}{
		{"socket(AF_INET, SOCK_RAW, IPPROTO_ICMP)", unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP},
		{"socket(AF_INET, SOCK_RAW, IPPROTO_RAW)", unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_RAW},
		{"socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6)", unix.AF_INET6, unix.SOCK_RAW, unix.IPPROTO_ICMPV6},
	} {
		socketAttempt(r, s.what, s.domain, s.typ, s.proto)
	}
	return r
}

func checkPacketSocket(ctx context.Context, p *params) *report {
	r := &report{}
	socketAttempt(r, "socket(AF_PACKET, SOCK_RAW, ETH_P_ALL)", unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL)))
	socketAttempt(r, "socket(AF_PACKET, SOCK_DGRAM, ETH_P_IP)", unix.AF_PACKET, unix.SOCK_DGRAM, int(htons(unix.ETH_P_IP)))
	return r
}

func socketAttempt(r *report, what string, domain, typ, proto int) {
	fd, err := unix.Socket(domain, typ|unix.SOCK_CLOEXEC, proto)
	if r.try(what, err) {
		unix.Close(fd)
	}
}

// dial connects to addr and says what happened and how long it took.
func dial(ctx context.Context, network, addr string, timeout time.Duration) (line string, connected bool) {
	start := time.Now()
	d := net.Dialer{Timeout: timeout}
	c, err := d.DialContext(ctx, network, addr)
	ms := time.Since(start).Milliseconds()
	if err != nil {
		return fmt.Sprintf("connect %s: %s after %d ms", addr, errText(err), ms), false
	}
	local := c.LocalAddr().String()
	c.Close()
	return fmt.Sprintf("connect %s: connected (from %s) after %d ms", addr, local, ms), true
}

// dialAll dials every address at once and records each outcome in order:
// a connection is an escape.
func dialAll(ctx context.Context, r *report, network string, addrs []string, timeout time.Duration) {
	lines := make([]string, len(addrs))
	ok := make([]bool, len(addrs))
	var wg sync.WaitGroup
	for i, addr := range addrs {
		wg.Go(func() { lines[i], ok[i] = dial(ctx, network, addr, timeout) })
	}
	wg.Wait()
	for i := range addrs {
		if ok[i] {
			r.escapef("%s", lines[i])
		} else {
			r.notef("%s", lines[i])
		}
	}
}

func dialTimeout(p *params) time.Duration { return time.Duration(p.DialTimeoutMS) * time.Millisecond }

func checkReachAPI(ctx context.Context, p *params) *report {
	r := &report{}
	if p.APIAddr == "" {
		r.notef("no api_addr given")
		return r
	}
	dialAll(ctx, r, "tcp", []string{p.APIAddr}, dialTimeout(p))
	return r
}

func checkReachOther(ctx context.Context, p *params) *report {
	r := &report{}
	if len(p.OtherAddrs) == 0 {
		r.notef("no other_addrs given")
		return r
	}
	dialAll(ctx, r, "tcp", p.OtherAddrs, dialTimeout(p))
	return r
}

func checkMetadata(ctx context.Context, p *params) *report {
	r := &report{}
	dialAll(ctx, r, "tcp", p.MetadataAddrs, dialTimeout(p))
	return r
}

// rtfReject is RTF_REJECT: an unreachable route, such as the kernel's
// IPv6 default on lo.
const rtfReject = 0x0200

// defaultRoutes4 lists the default routes of /proc/net/route that lead
// somewhere: destination and mask 0, not rejecting.
func defaultRoutes4(data string) []string {
	var out []string
	for i, line := range strings.Split(data, "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) < 8 {
			continue
		}
		flags, _ := strconv.ParseUint(f[3], 16, 32)
		if f[1] == "00000000" && f[7] == "00000000" && flags&rtfReject == 0 {
			out = append(out, fmt.Sprintf("0.0.0.0/0 via %s dev %s", hexIPv4(f[2]), f[0]))
		}
	}
	return out
}

// hexIPv4 turns /proc/net/route's little-endian hex address into dotted
// form.
func hexIPv4(h string) string {
	v, err := strconv.ParseUint(h, 16, 32)
	if err != nil {
		return h
	}
	return net.IPv4(byte(v), byte(v>>8), byte(v>>16), byte(v>>24)).String()
}

// defaultRoutes6 lists the default routes of /proc/net/ipv6_route that
// lead somewhere: ::/0, not rejecting, not on lo.
func defaultRoutes6(data string) []string {
	var out []string
	for line := range strings.SplitSeq(data, "\n") {
		f := strings.Fields(line)
		if len(f) < 10 {
			continue
		}
		flags, _ := strconv.ParseUint(f[8], 16, 32)
		if strings.Trim(f[0], "0") == "" && f[1] == "00" && f[9] != "lo" && flags&rtfReject == 0 {
			out = append(out, fmt.Sprintf("::/0 via %s dev %s", f[4], f[9]))
		}
	}
	return out
}

// devNames lists the interfaces of /proc/net/dev.
func devNames(data string) []string {
	var out []string
	for line := range strings.SplitSeq(data, "\n") {
		name, _, ok := strings.Cut(line, ":")
		if ok && !strings.Contains(name, "|") {
			out = append(out, strings.TrimSpace(name))
		}
	}
	return out
}

func checkRoutes(ctx context.Context, p *params) *report {
	r := &report{}
	// A networked function has a way out by design: report, do not judge.
	flag := r.escapef
	if p.Networked {
		r.notef("networked function: reporting only")
		flag = r.notef
	}
	ifaces := map[string]bool{}
	if list, err := net.Interfaces(); err != nil {
		r.notef("list interfaces (netlink): %s", errText(err))
	} else {
		var parts []string
		for _, ifc := range list {
			ifaces[ifc.Name] = true
			addrs, _ := ifc.Addrs()
			parts = append(parts, fmt.Sprintf("%s [%s] %v", ifc.Name, ifc.Flags, addrs))
		}
		r.notef("interfaces: %s", strings.Join(parts, "; "))
	}
	if data, err := os.ReadFile("/proc/net/dev"); err != nil {
		r.notef("read /proc/net/dev: %s", errText(err))
	} else {
		names := devNames(string(data))
		r.notef("/proc/net/dev: %s", strings.Join(names, " "))
		for _, n := range names {
			ifaces[n] = true
		}
	}
	for name := range ifaces {
		if name != "lo" {
			flag("interface %s exists besides lo", name)
		}
	}
	for _, rt := range []struct {
		path  string
		parse func(string) []string
	}{
		{"/proc/net/route", defaultRoutes4},
		{"/proc/net/ipv6_route", defaultRoutes6},
	} {
		data, err := os.ReadFile(rt.path)
		if err != nil {
			r.notef("read %s: %s", rt.path, errText(err))
			continue
		}
		lines := strings.Count(strings.TrimSpace(string(data)), "\n") + 1
		defaults := rt.parse(string(data))
		if len(defaults) == 0 {
			r.notef("%s: %d lines, no default route", rt.path, lines)
		}
		for _, d := range defaults {
			flag("%s: default route %s", rt.path, d)
		}
	}
	return r
}

var defaultUnixPaths = []string{
	"/var/run/docker.sock", "/run/docker.sock", "/run/containerd/containerd.sock",
	"/run/systemd/private", "/run/dbus/system_bus_socket", "/var/run/moat.sock",
}

// listeningAbstract lists the abstract names of listening sockets in
// /proc/net/unix, as "@name".
func listeningAbstract(data string) []string {
	var out []string
	for i, line := range strings.Split(data, "\n") {
		f := strings.Fields(line)
		// Num RefCount Protocol Flags Type St Inode Path; __SO_ACCEPTCON is 00010000.
		if i == 0 || len(f) < 8 || f[3] != "00010000" || !strings.HasPrefix(f[7], "@") {
			continue
		}
		out = append(out, f[7])
	}
	return out
}

func checkUnixSockets(ctx context.Context, p *params) *report {
	r := &report{}
	var addrs []string
	for _, path := range append(defaultUnixPaths, p.UnixPaths...) {
		if _, err := os.Lstat(path); err != nil {
			r.notef("stat %s: %s", path, errText(err))
			continue
		}
		addrs = append(addrs, path)
	}
	data, err := os.ReadFile("/proc/net/unix")
	if err != nil {
		r.notef("read /proc/net/unix: %s", errText(err))
	} else {
		abstract := listeningAbstract(string(data))
		r.notef("/proc/net/unix: %d listening abstract sockets", len(abstract))
		if len(abstract) > 16 {
			abstract = abstract[:16]
		}
		addrs = append(addrs, abstract...)
	}
	dialAll(ctx, r, "unix", addrs, 500*time.Millisecond)
	return r
}
