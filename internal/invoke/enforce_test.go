package invoke

import (
	"testing"

	"moat.dev/moat/internal/egress"
)

func TestNarrowGrants(t *testing.T) {
	grant := func(s string) egress.Grant {
		g, err := egress.ParseGrant(s)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	grants := []egress.Grant{grant("198.18.0.0/24:443"), grant("198.18.1.0/24:8000-8100/udp"), grant("[2001:db8::/64]:*")}
	tests := []struct {
		name    string
		connect []string
		want    []string
	}{
		{"nothing learned: no network", nil, nil},
		{"one destination", []string{"inet:198.18.0.5:443"}, []string{"198.18.0.5:443"}},
		{"outside every grant", []string{"inet:198.18.9.1:443", "inet:198.18.0.5:80"}, nil},
		{"udp grant keeps its protocol", []string{"inet:198.18.1.7:8080"}, []string{"198.18.1.7:8080/udp"}},
		{"any port takes the grant's", []string{"inet:198.18.0.0/28:*"}, []string{"198.18.0.0/28:443"}},
		{"ipv6", []string{"inet6:[2001:db8::7]:22"}, []string{"[2001:db8::7]:22"}},
		{"unix and junk are skipped", []string{"unix:/run/x.sock", "inet:nowhere:1", "inet:198.18.0.5:x"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := narrowGrants(grants, tt.connect)
			var s []string
			for _, g := range got {
				s = append(s, g.String())
			}
			if len(s) != len(tt.want) {
				t.Fatalf("narrowGrants = %v, want %v", s, tt.want)
			}
			for i := range s {
				if s[i] != tt.want[i] {
					t.Errorf("grant %d = %s, want %s", i, s[i], tt.want[i])
				}
			}
		})
	}
}
