package egress

import (
	"testing"
	"time"

	"github.com/google/nftables"
)

func TestTimingTmp(t *testing.T) {
	tb := newTestbed(t)
	m := newTestManager(t, tb)
	inst := startInstance(t, tb)
	grants := mustGrants(t, tb.ip4(2)+":443")
	for i := 0; i < 5; i++ {
		l, err := m.Attach(inst.pid(), "fn-bench-1", inst.cgroup, grants)
		if err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		c, _ := m.nft()
		t1 := time.Now()
		rules, _ := c.GetRules(moatTable, &nftables.Chain{Name: chainEgress, Table: moatTable})
		t2 := time.Now()
		c.ListChain(moatTable, instanceChain+l.short)
		t3 := time.Now()
		for _, r := range rules {
			c.DelRule(r)
		}
		ch := &nftables.Chain{Name: instanceChain + l.short, Table: moatTable}
		c.FlushChain(ch)
		c.DelChain(ch)
		err = c.Flush()
		t4 := time.Now()
		l.Close()
		t.Logf("new %v getrules %v listchain %v flush %v (%v)", t1.Sub(t0), t2.Sub(t1), t3.Sub(t2), t4.Sub(t3), err)
	}
}
