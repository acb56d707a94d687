package profile

import (
	"fmt"
	"testing"

	"moat.dev/moat/internal/detect"
)

// benchProfile is an approved profile of about 50 entries.
func benchProfile(b *testing.B) *Profile {
	p := New("fn", "3", Window{}, t0)
	p.Exec = []string{"/var/task/bootstrap", "/var/lang/bin/python3.12", "/usr/bin/gzip", "/usr/bin/convert", "/usr/bin/ffmpeg"}
	for i := range 15 {
		p.Read = append(p.Read, fmt.Sprintf("/srv/config/part-%c.yaml", 'a'+i))
	}
	p.Read = append(p.Read, "/proc/*/stat", "/home/sbx_user1051/.cache/**")
	for i := range 18 {
		p.Write = append(p.Write, fmt.Sprintf("/tmp/stage-%c/*.json", 'a'+i))
	}
	p.Write = append(p.Write, "/tmp/scratch-*.json", "/tmp/job-*/out.txt")
	for i := range 8 {
		p.Connect = append(p.Connect, fmt.Sprintf("inet:198.18.0.%d:443", i+1))
	}
	p.Connect = append(p.Connect, "inet:10.0.0.0/8:5432", "unix:/tmp/app.sock")
	if err := p.Validate(); err != nil {
		b.Fatal(err)
	}
	if err := p.Approve(t0); err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkCheck measures the monitor's hot path: events a profile
// covers (or never lists), which is nearly all of them.
func BenchmarkCheck(b *testing.B) {
	p := benchProfile(b)
	evs := []*detect.Event{
		open("/tmp/scratch-7f3a9c1e.json", "write", "create", "trunc"),
		open("/tmp/stage-q/result.json", "read"),
		open("/tmp/job-1234/out.txt", "write"),
		open("/etc/hosts", "read"),
		open("/var/task/handler.py", "read"),
		open("/srv/config/part-k.yaml", "read"),
		open("/proc/4242/stat", "read"),
		execOf("/usr/bin/gzip"),
		connect("198.18.0.5", 443),
		connect("10.1.2.3", 5432),
		connect("127.0.0.1", 9001),
		connectUnix("/tmp/app.sock"),
		unlink("/tmp/scratch-7f3a9c1e.json"),
		rename("/tmp/job-1/out.txt", "/tmp/job-2/out.txt"),
	}
	for _, e := range evs {
		if d, bad := p.Check(e); bad {
			b.Fatalf("benchmark event outside the profile: %+v", d)
		}
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		p.Check(evs[i%len(evs)])
	}
}

// BenchmarkCheckDeviation: an event outside the profile (builds the
// deviation).
func BenchmarkCheckDeviation(b *testing.B) {
	p := benchProfile(b)
	ev := open("/tmp/other/x-1234.bin", "write", "create")
	b.ReportAllocs()
	for b.Loop() {
		if _, bad := p.Check(ev); !bad {
			b.Fatal("no deviation")
		}
	}
}

// BenchmarkObserve: learning from events already covered, the common
// case while learning.
func BenchmarkObserve(b *testing.B) {
	p := benchProfile(b)
	p.State = StateLearning
	evs := []*detect.Event{
		open("/tmp/scratch-7f3a9c1e.json", "write", "create", "trunc"),
		connect("198.18.0.5", 443),
		execOf("/usr/bin/gzip"),
		open("/etc/hosts", "read"),
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, added := p.Observe(evs[i%len(evs)]); added {
			b.Fatal("learned a covered event")
		}
	}
}
