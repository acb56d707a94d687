package profile

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"moat.dev/moat/internal/detect"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var ignoreCompiled = cmpopts.IgnoreUnexported(Profile{})

const goodDoc = `function: fn
version: "3"
state: approved
learning:
  invocations: 100
  duration: 168h
  seen: 100
  started: 2026-11-24T10:00:00Z
inherited_from: "2"
exec:
  - /var/task/bootstrap
read: []
write:
  - /tmp/*.json
connect:
  - inet:198.18.0.5:443
updated: 2026-11-24T12:00:00Z
`

func TestGolden(t *testing.T) {
	p := learn(t, tidyInvocation, rand.New(rand.NewPCG(1, 2)), 50)
	got := p.YAML()
	golden := filepath.Join("testdata", "tidy.yaml")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("YAML differs from %s (go test -update rewrites it):\n%s", golden, cmp.Diff(string(want), string(got)))
	}
	if !bytes.Equal(p.YAML(), got) {
		t.Error("YAML is not deterministic")
	}
}

func TestYAMLRoundTrip(t *testing.T) {
	base := New("fn", "6", Window{}, t0)
	p := Inherit(base, "7", Window{Invocations: 100, Duration: 90 * time.Minute}, t0.In(time.FixedZone("X", 3600)))
	p.Exec = []string{"/var/task/bootstrap", "/usr/bin/gzip"}
	p.Read = []string{"/srv/data/**", "/proc/*/stat", "/srv/my file.txt"}
	p.Write = []string{"/tmp/*.json", "/tmp/job-*/out.txt", "/tmp/**"}
	p.Connect = []string{"inet:198.18.0.5:443", "inet6:[2001:db8::1]:*", "inet:10.0.0.0/8:5432", "unix:/run/x.sock", "unix:@abstract"}
	p.Drift(execOf("/bin/sh"))
	p.Learning.Seen = 7
	if err := p.Approve(t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		p    *Profile
	}{
		{"new", New("fn", "$LATEST", Window{Invocations: 10}, t0)},
		{"everything", p},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.p.YAML()
			q, err := Parse(b)
			if err != nil {
				t.Fatalf("parse own YAML: %v\n%s", err, b)
			}
			want := *tt.p
			for _, l := range []*[]string{&want.Exec, &want.Read, &want.Write, &want.Connect} {
				*l = normalized(*l)
			}
			if diff := cmp.Diff(&want, q, ignoreCompiled); diff != "" {
				t.Errorf("round trip changed the profile (-want +got):\n%s\n%s", diff, b)
			}
			if !bytes.Equal(q.YAML(), b) {
				t.Errorf("re-encoding differs:\n%s\n%s", b, q.YAML())
			}
			if !bytes.HasPrefix(b, []byte("# moat behaviour profile")) {
				t.Error("no header")
			}
		})
	}
}

func TestParseNormalizes(t *testing.T) {
	doc := strings.Replace(goodDoc, "exec:\n  - /var/task/bootstrap\n", "exec: [/z, /a, /z]\n", 1)
	doc = strings.Replace(doc, "duration: 168h", "duration: 90m", 1)
	doc = strings.Replace(doc, "2026-11-24T12:00:00Z", "2026-11-24T13:00:00+01:00", 1)
	p, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"/a", "/z"}, p.Exec); diff != "" {
		t.Errorf("exec: %s", diff)
	}
	if p.Updated.Location() != time.UTC || !p.Updated.Equal(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)) {
		t.Errorf("updated = %v", p.Updated)
	}
	if !strings.Contains(string(p.YAML()), "duration: 1h30m\n") {
		t.Errorf("duration not written canonically:\n%s", p.YAML())
	}
	for _, in := range []string{"function: fn\nversion: $LATEST\nstate: learning\n", "function: fn\nversion: 12\nstate: learned\nexec:\nread: ~\n"} {
		if _, err := Parse([]byte(in)); err != nil {
			t.Errorf("Parse(%q) = %v; omitted and null fields are empty", in, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	replace := func(old, new string) string {
		if !strings.Contains(goodDoc, old) {
			panic("test document lacks " + old)
		}
		return strings.Replace(goodDoc, old, new, 1)
	}
	withWrite := func(item string) string {
		return replace("write:\n  - /tmp/*.json\n", "write:\n  - /tmp/*.json\n  - "+item+"\n")
	}
	withConnect := func(item string) string {
		return replace("connect:\n  - inet:198.18.0.5:443\n", "connect:\n  - '"+item+"'\n")
	}
	many := "exec:\n" + strings.Repeat("  - /bin/x\n", MaxItems+1)
	tests := []struct{ name, doc, want string }{
		{"empty", "", "the document is empty"},
		{"only comments", "# nothing\n", "the document is empty"},
		{"not a mapping", "- a\n- b\n", "line 1: the profile must be a mapping"},
		{"syntax", "exec: [\n", "line"},
		{"unknown field", goodDoc + "colour: blue\n", `line 18: the profile: unknown field "colour"`},
		{"unknown window field", replace("  seen: 100\n", "  seen: 100\n  pace: 3\n"), `line 8: learning: unknown field "pace"`},
		{"repeated field", goodDoc + "state: learned\n", `line 18: the profile: field "state" appears twice`},
		{"second document", goodDoc + "---\nfunction: other\n", "line 18: a second YAML document"},
		{"alias", replace("read: []", "read: &r [/a]\nx: *r"), "unknown field"},
		{"alias value", strings.Replace(replace("read: []", "read: *e"), "exec:\n  - /var/task/bootstrap\n", "exec: &e []\n", 1), "line 11: read: aliases"},
		{"alias entry", replace("exec:\n  - /var/task/bootstrap", "exec:\n  - &a /var/task/bootstrap\n  - *a"), "line 12: exec: aliases"},
		{"tag", replace(`function: fn`, `function: !!binary Zm4=`), "line 1: function: explicit tags"},
		{"key not a name", "? [a]\n: b\n", "a key must be a field name"},
		{"state", replace("state: approved", "state: sleeping"), `line 3: state: must be learning, learned or approved, not "sleeping"`},
		{"function", replace("function: fn", "function: 'a b'"), `line 1: function: "a b" is not a function name`},
		{"function too long", replace("function: fn", "function: "+strings.Repeat("f", 65)), "is not a function name"},
		{"function as mapping", replace("function: fn", "function: {a: b}"), "line 1: function must be a single value"},
		{"version", replace(`version: "3"`, "version: latest"), `line 2: version: "latest" is not $LATEST or a version number`},
		{"version with a leading zero", replace(`version: "3"`, "version: 03"), "not $LATEST"},
		{"inherited from itself", replace(`inherited_from: "2"`, `inherited_from: "3"`), "line 9: inherited_from: \"3\" is the profile's own version"},
		{"negative", replace("invocations: 100", "invocations: -1"), "line 5: learning: invocations must not be negative"},
		{"not a number", replace("invocations: 100", "invocations: many"), `line 5: learning.invocations: "many" is not a whole number`},
		{"duration", replace("duration: 168h", "duration: soon"), `line 6: learning.duration: "soon" is not a duration`},
		{"negative duration", replace("duration: 168h", "duration: -1h"), "duration must not be negative"},
		{"time", replace("updated: 2026-11-24T12:00:00Z", "updated: yesterday"), `line 17: updated: "yesterday" is not a time`},
		{"time out of range", replace("updated: 2026-11-24T12:00:00Z", "updated: 9999-12-31T23:00:00-05:00"), "updated: must lie between the years 1 and 9999"},
		{"list expected", replace("read: []", "read: /etc/shadow"), "line 12: read must be a list"},
		{"relative path", withWrite("tmp/x"), `line 15: write: "tmp/x": not an absolute path`},
		{"dot dot", withWrite("/tmp/../etc/passwd"), "a . or .. segment"},
		{"dot", withWrite("/tmp/./x"), "a . or .. segment"},
		{"double star not last", withWrite("/tmp/**/x"), "** is only allowed as the whole last segment"},
		{"double star in a segment", withWrite("/tmp/a**"), "** is only allowed as the whole last segment"},
		{"empty segment", withWrite("/tmp//x"), "an empty segment"},
		{"trailing slash", withWrite("/tmp/x/"), "an empty segment"},
		{"unprintable", withWrite(`"/tmp/\N"`), "not printable"},
		{"bad destination", withConnect("inet:nowhere:80"), `"nowhere" is not an IP address`},
		{"no port", withConnect("inet:198.18.0.5"), "no port"},
		{"bad port", withConnect("inet:198.18.0.5:99999"), "is not a number from 0 to 65535"},
		{"port with a leading zero", withConnect("inet:198.18.0.5:0443"), "is not a number"},
		{"family mismatch", withConnect("inet:::1:80"), "is not IPv4"},
		{"inet6 without brackets", withConnect("inet6:2001:db8::1:443"), "in brackets"},
		{"inet6 with an IPv4 address", withConnect("inet6:[198.18.0.5]:443"), "is not IPv6"},
		{"mapped address", withConnect("inet6:[::ffff:198.18.0.5]:443"), "IPv4-mapped"},
		{"host bits", withConnect("inet:10.1.2.3/8:80"), "has host bits set; the block is 10.0.0.0/8"},
		{"zone", withConnect("inet6:[fe80::1%eth0]:80"), "zones"},
		{"unknown family", withConnect("tcp:198.18.0.5:80"), `unknown family "tcp"`},
		{"relative unix", withConnect("unix:run/x.sock"), "absolute path or @NAME"},
		{"unclean unix", withConnect("unix:/run/../x.sock"), "not clean"},
		{"drift entry", replace("updated:", "drift: [dance /x]\nupdated:"), "the category must be"},
		{"drift item", replace("updated:", "drift: ['exec bin/sh']\nupdated:"), "not an absolute path"},
		{"too many entries", replace("exec:\n  - /var/task/bootstrap\n", many), "exec: 4097 entries; at most 4096 are allowed"},
		{"entry too long", withWrite("/tmp/" + strings.Repeat("x", MaxItemLen)), "an entry of 4101 bytes; at most 4096 are allowed"},
		{"document too large", goodDoc + "#" + strings.Repeat("x", MaxDocBytes), "the document has"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse([]byte(tt.doc))
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse = %v, want ErrInvalid containing %q", err, tt.want)
			}
			if p != nil {
				t.Error("a profile returned with an error")
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Profile)
		want   string // "" for valid
	}{
		{"new", func(*Profile) {}, ""},
		{"bad state", func(p *Profile) { p.State = "paused" }, "state: must be"},
		{"negative seen", func(p *Profile) { p.Learning.Seen = -1 }, "seen must not be negative"},
		{"relative path", func(p *Profile) { p.Read = []string{"etc/passwd"} }, `read[0]: "etc/passwd": not an absolute path`},
		{"bad destination", func(p *Profile) { p.Connect = []string{"inet:x:1"} }, "connect[0]"},
		{"too many", func(p *Profile) { p.Exec = make([]string, MaxItems+1) }, "exec: 4097 entries"},
		{"too many bytes", func(p *Profile) {
			item := "/" + strings.Repeat("x", MaxItemLen-1)
			for range MaxTotalBytes/MaxItemLen + 1 {
				p.Read = append(p.Read, item)
			}
		}, "the entries hold"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := New("fn", "1", Window{}, t0)
			tt.change(p)
			err := p.Validate()
			if tt.want == "" {
				if err != nil {
					t.Errorf("Validate = %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate = %v, want ErrInvalid containing %q", err, tt.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(goodDoc))
	if b, err := os.ReadFile(filepath.Join("testdata", "tidy.yaml")); err == nil {
		f.Add(b)
	}
	f.Add([]byte("function: fn\nversion: $LATEST\nstate: learning\n"))
	f.Add([]byte("function: fn\nversion: 1\nstate: learned\nconnect: ['inet6:[2001:db8::/32]:*', 'unix:@x']\ndrift: ['read /a b']\n"))
	f.Add([]byte("function: fn\nversion: 1\nstate: learned\nlearning: {duration: 1.5h, started: 2026-01-02T03:04:05.123+02:00}\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Parse(b)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error without ErrInvalid: %v", err)
			}
			return
		}
		enc := p.YAML()
		q, err := Parse(enc)
		if err != nil {
			t.Fatalf("re-parse of an accepted profile: %v\n%s", err, enc)
		}
		if diff := cmp.Diff(p, q, ignoreCompiled); diff != "" {
			t.Fatalf("re-parse changed the profile:\n%s", diff)
		}
		if !bytes.Equal(q.YAML(), enc) {
			t.Fatalf("encoding is not stable:\n%s\n%s", enc, q.YAML())
		}
		// The lookups work on whatever validated.
		p.State = StateApproved
		for _, e := range []*detect.Event{open("/tmp/x.json", "write"), connect("10.1.2.3", 443), connectUnix("@x"), execOf("/bin/sh")} {
			p.Check(e)
		}
	})
}

// FuzzObserve: whatever an event names, the learned entry validates and
// covers the action it was learned from.
func FuzzObserve(f *testing.F) {
	f.Add(uint8(0), "/tmp/scratch-7f3a9c.json", "", "198.18.0.5", 443)
	f.Add(uint8(1), "/tmp/a/b", "/var/task/x", "", 0)
	f.Add(uint8(2), "rel/../x", "", "@sock\x00", 0)
	f.Add(uint8(3), "/tmp/\xff*", "", "2001:db8::1", 80)
	f.Fuzz(func(t *testing.T, kind uint8, p1, p2, addr string, port int) {
		if len(p1) > 1024 || len(p2) > 1024 || len(addr) > 1024 {
			return
		}
		var ev *detect.Event
		switch kind % 6 {
		case 0:
			ev = open(p1, "write", "create")
		case 1:
			ev = rename(p1, p2)
		case 2:
			ev = connectUnix(addr)
		case 3:
			ev = connect(addr, port)
		case 4:
			ev = execOf(p1)
		default:
			ev = open(p1, "read")
		}
		p := New("fn", "1", Window{}, t0)
		p.Observe(ev)
		if err := p.Validate(); err != nil {
			t.Fatalf("learned an invalid entry: %v\n%s", err, p.YAML())
		}
		if _, err := Parse(p.YAML()); err != nil {
			t.Fatalf("learned profile does not parse: %v", err)
		}
		p.State = StateLearned
		if d, bad := p.Check(ev); bad {
			t.Fatalf("the learned profile does not cover what it learned from: %+v\n%s", d, p.YAML())
		}
		q := Inherit(p, "2", Window{}, t0)
		if d, drift := q.Drift(ev); drift {
			t.Fatalf("drift on what the base covers: %+v", d)
		}
	})
}

func ExampleParse() {
	p, err := Parse([]byte(goodDoc))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.Function, p.Version, p.State, p.Write)
	_, err = Parse([]byte(strings.Replace(goodDoc, "/tmp/*.json", "/tmp/**/x.json", 1)))
	fmt.Println(err)
	// Output:
	// fn 3 approved [/tmp/*.json]
	// invalid profile: line 14: write: "/tmp/**/x.json": ** is only allowed as the whole last segment
}
