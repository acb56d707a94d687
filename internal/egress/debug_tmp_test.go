package egress

import (
	"net/netip"
	"time"
	"golang.org/x/sys/unix"
	"fmt"
	"os"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

func TestDebugV6(t *testing.T) {
	tb := newTestbed(t)
	echoTCP(t, tb.server, "["+tb.ip6(2)+"]:8443")
	m := newTestManager(t, tb)
	a := startInstance(t, tb)
	la, err := m.Attach(a.pid(), "fn-a-1", a.cgroup, mustGrants(t, "["+tb.ip6(2)+"]:8443"))
	if err != nil {
		t.Fatal(err)
	}
	defer la.Close()
	done := make(chan bool, 2)
	for name, ns := range map[string]int{"S": tb.server, "H": tb.host} {
		var sfd int
		inNetns(ns, func() error {
			var err error
			sfd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM, int(htons(unix.ETH_P_ALL)))
			return err
		})
		go func() {
			buf := make([]byte, 2000)
			for {
				unix.SetsockoptTimeval(sfd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 3})
				n, from, err := unix.Recvfrom(sfd, buf, 0)
				if err != nil {
					done <- true
					return
				}
				ll := from.(*unix.SockaddrLinklayer)
				if n > 40 && buf[0]>>4 == 6 {
					src, _ := netip.AddrFromSlice(buf[8:24])
					dst, _ := netip.AddrFromSlice(buf[24:40])
					fmt.Printf("%s %s if %d pkt type %d nh %d %s -> %s len %d\n", time.Now().Format("05.000"), name, ll.Ifindex, ll.Pkttype, buf[6], src, dst, n)
				}
			}
		}()
	}
	res := a.run(t, []probe{{"v6", "echo", "tcp6", "[" + tb.ip6(2) + "]:8443"}})
	t.Logf("%+v", res)
	<-done
	<-done
	c, _ := nftables.New(nftables.WithNetNSFd(tb.host))
	for _, ch := range []string{"forward", "input", "postrouting", "egress", "i-" + la.short, "uplinks"} {
		rules, err := c.GetRules(moatTable, &nftables.Chain{Name: ch, Table: moatTable})
		if err != nil {
			t.Log(err)
		}
		for i, r := range rules {
			for _, e := range r.Exprs {
				if cn, ok := e.(*expr.Counter); ok {
					t.Logf("%s rule %d: packets %d", ch, i, cn.Packets)
				}
			}
		}
	}
	for name, ns := range map[string]int{"H": tb.host, "S": tb.server} {
		inNetns(ns, func() error {
			for _, f := range []string{"snmp6", "snmp", "netstat"} {
				b, _ := os.ReadFile("/proc/thread-self/net/" + f)
				fmt.Println("=====", name, f)
				fmt.Println(string(b))
			}
			return nil
		})
	}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
