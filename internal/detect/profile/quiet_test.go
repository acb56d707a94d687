package profile

import "testing"

func TestQuietLists(t *testing.T) {
	for name, l := range map[string][]string{"quietReads": quietReads, "loudReads": loudReads, "quietWrites": quietWrites} {
		for _, p := range l {
			if msg := checkPattern(p); msg != "" {
				t.Errorf("%s: %q: %s", name, p, msg)
			}
		}
	}
	tests := []struct {
		path        string
		read, write bool // quiet for reads, for writes
	}{
		{"/var/task/handler.py", true, false},
		{"/var/task", true, false},
		{"/opt/python/lib/x.py", true, false},
		{"/usr/lib/x86_64-linux-gnu/libc.so.6", true, false},
		{"/etc/ssl/certs/ca-certificates.crt", true, false},
		{"/etc/hosts", true, false},
		{"/etc/shadow", false, false},
		{"/dev/null", true, true},
		{"/dev/urandom", true, true},
		{"/dev/stdout", true, true},
		{"/dev/tty", false, false},
		{"/proc/self/maps", true, false},
		{"/proc/self/fd/3", true, false},
		{"/proc/self/environ", false, false},
		{"/proc/self/mem", false, false},
		{"/proc/self/task/12/environ", false, false},
		{"/proc/thread-self/environ", false, false},
		{"/proc/self/root", false, false},
		{"/proc/self/root/etc/shadow", false, false},
		{"/proc/self/cwd/x", false, false},
		{"/proc/self/fd/3/secret", false, false},
		{"/dev/fd/3/secret", false, false},
		{"/proc/1/environ", false, false},
		{"/proc/meminfo", true, false},
		{"/proc/sys/kernel/osrelease", true, false},
		{"/proc/sys/kernel/core_pattern", false, false},
		{"/proc/sys/kernel/modprobe", false, false},
		{"/sys/fs/cgroup/cpu.max", true, false},
		{"/tmp", true, false},
		{"/tmp/x", false, false},
		{"/", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			if got := quietRead(tt.path); got != tt.read {
				t.Errorf("quietRead = %v, want %v", got, tt.read)
			}
			if got := quietWrite(tt.path); got != tt.write {
				t.Errorf("quietWrite = %v, want %v", got, tt.write)
			}
		})
	}
}
