package rules

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"moat.dev/moat/internal/detect"
)

// Info describes a built-in rule.
type Info struct {
	Name        string          `json:"name"`
	Severity    detect.Severity `json:"severity"`
	Description string          `json:"description"`
	// Techniques are the MITRE ATT&CK techniques the rule covers.
	Techniques []string `json:"techniques,omitempty"`
}

// builtin is a rule that needs no learning: a Go matcher over the kinds
// of event it applies to.
type builtin struct {
	Info
	kinds map[string]bool
	match func(st *State, ev *detect.Event) *match
}

// Builtins lists the built-in rules.
func Builtins() []Info {
	out := make([]Info, len(builtinRules))
	for i, b := range builtinRules {
		out[i] = b.Info
	}
	return out
}

func isBuiltin(name string) bool {
	for _, b := range builtinRules {
		if b.Name == name {
			return true
		}
	}
	return false
}

func kinds(k ...string) map[string]bool {
	m := map[string]bool{}
	for _, s := range k {
		m[s] = true
	}
	return m
}

// The lists the built-in rules use, in one place each.
var (
	// interpreterPrefixes match versioned interpreter names (python3.12).
	interpreterPrefixes = []string{"python", "perl", "ruby", "php", "lua"}
	// miningPorts are the ports of common mining pools (stratum).
	miningPorts = map[int]bool{3333: true, 3334: true, 3335: true, 3357: true, 4444: true, 5555: true, 5588: true,
		6666: true, 7777: true, 9999: true, 14433: true, 14444: true, 45560: true, 45700: true}
	// minerNames are in the names of mining programs (xmrig-notls,
	// cpuminer-opt, lolminer); minerArgs in their command lines.
	minerNames = []string{"xmrig", "minerd", "miner", "xmr-stak", "t-rex", "nbminer", "gminer", "bminer", "ccminer", "srbminer", "teamredminer"}
	minerArgs  = []string{"stratum+tcp", "stratum+ssl", "stratum2+tcp", "stratum1+tcp", "--donate-level", "--randomx",
		"cryptonight", "randomx", "rx/0", "--coin=monero", "--coin monero", "--coin=xmr", "nicehash", "supportxmr", "moneroocean",
		"nanopool.org", "minexmr", "hashvault", "--cpu-max-threads-hint", "--max-cpu-usage"}
	metadataNet = []netip.Prefix{netip.MustParsePrefix("169.254.0.0/16"), netip.MustParsePrefix("fe80::/10"),
		netip.MustParsePrefix("fd00:ec2::254/128"), netip.MustParsePrefix("100.100.100.200/32")}
	// sensitiveSyscalls, refused by the sandbox, are escape attempts.
	// A refused clone is one that asked for new namespaces (the filter
	// lets every other clone through).
	sensitiveSyscalls = kinds("clone", "ptrace", "mount", "umount2", "pivot_root", "chroot", "bpf", "unshare", "setns",
		"init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load", "keyctl", "add_key",
		"request_key", "perf_event_open", "process_vm_readv", "process_vm_writev", "open_by_handle_at",
		"name_to_handle_at", "userfaultfd", "swapon", "swapoff", "reboot", "acct", "quotactl", "fsopen",
		"fsmount", "fsconfig", "move_mount", "open_tree", "iopl", "ioperm", "lookup_dcookie", "personality")
	// credentialFiles are exact paths; credentialSuffixes match anywhere
	// (a home directory is not known); credentialDirs are prefixes.
	credentialFiles    = kinds("/etc/shadow", "/etc/gshadow", "/etc/sudoers", "/etc/master.passwd")
	credentialSuffixes = []string{"/.aws/credentials", "/.aws/config", "/.ssh/authorized_keys", "/.docker/config.json",
		"/.kube/config", "/.netrc", "/.git-credentials", "/.pgpass", "/.config/gcloud/credentials.db",
		"/.config/gcloud/application_default_credentials.json", "/.config/gcloud/access_tokens.db", "/.azure/accessTokens.json",
		"/.azure/msal_token_cache.json", "/.npmrc", "/.pypirc", "/.config/gh/hosts.yml", "/.vault-token", "/.terraformrc",
		"/.terraform.d/credentials.tfrc.json", "/.my.cnf", "/.config/hub", "/.gem/credentials", "/.cargo/credentials",
		"/.cargo/credentials.toml", "/.docker/.token_seed", "/.gnupg/secring.gpg", "/.gnupg/private-keys-v1.d"}
	credentialDirs = []string{"/etc/sudoers.d/", "/var/run/secrets/", "/run/secrets/"}
	// credentialHomes are directories of credentials wherever they are
	// (a file in one, under any name, is a credential or its backup);
	// privateKeyNames start the names of SSH private keys, however
	// renamed after them.
	credentialHomes = []string{"/.aws/", "/.ssh/", "/.gnupg/", "/.kube/", "/.azure/", "/.config/gcloud/", "/.docker/",
		"/.password-store/", "/.config/gh/", "/.terraform.d/"}
	privateKeyNames = []string{"id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "id_xmss"}
	// writableDirs hold files an instance can write; running one from
	// there is how dropped payloads run.
	writableDirs = []string{"/tmp/", "/var/tmp/", "/dev/shm/", "/run/shm/", "/run/"}
	// protectedDirs are read-only in the sandbox: a write is tampering.
	protectedDirs = []string{"/etc/", "/var/task/", "/opt/", "/usr/", "/bin/", "/sbin/", "/lib/", "/lib64/", "/lib32/", "/proc/sys/", "/sys/", "/boot/", "/var/lib/"}
	// devFiles are the device files a program writes and creates
	// (shells open >/dev/null with O_CREAT); anything else made under
	// /dev hides there.
	devFiles       = kinds("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty", "/dev/stdin", "/dev/stdout", "/dev/stderr", "/dev/console", "/dev/ptmx")
	devWritable    = []string{"/dev/fd/", "/dev/pts/", "/dev/shm/", "/dev/mqueue/"}
	containerSocks = []string{"docker.sock", "containerd.sock", "crio.sock", "podman.sock", "kubelet.sock", "dockershim.sock"}
	networkTools   = kinds("nc", "ncat", "netcat", "socat", "nmap", "masscan", "zmap", "tcpdump", "telnet", "ssh", "scp", "sftp", "ftp", "tftp")
	// ingressTools fetch files from elsewhere.
	ingressTools = kinds("curl", "wget", "fetch", "aria2c", "axel", "lftp", "lynx", "links", "w3m")
)

// isCredential reports a credential file: by its exact path, its
// directory, or its name, wherever it is.
func isCredential(p string) bool {
	if credentialFiles[p] || hasPrefixAny(p, credentialDirs) {
		return true
	}
	for _, s := range credentialSuffixes {
		if strings.HasSuffix(p, s) {
			return true
		}
	}
	if containsAny(p, credentialHomes) != "" && !strings.HasSuffix(p, "/known_hosts") {
		return true
	}
	for _, k := range privateKeyNames {
		if strings.HasPrefix(base(p), k) && !strings.HasSuffix(p, ".pub") {
			return true
		}
	}
	return false
}

func isShell(p string) bool {
	// Shells and interpreters a function's code has no business starting
	// once it runs.
	b := base(p)
	if detect.IsShell(b) || b == "node" {
		return true
	}
	for _, pre := range interpreterPrefixes {
		if strings.HasPrefix(b, pre) {
			return true
		}
	}
	return false
}

func hasPrefixAny(p string, prefixes []string) bool {
	for _, pre := range prefixes {
		if strings.HasPrefix(p, pre) {
			return true
		}
	}
	return false
}

func writes(ev *detect.Event) bool {
	switch ev.Kind {
	case "unlink", "rename", "chmod", "mkdir", "link", "symlink", "truncate", "utimes", "mknod", "chown":
		return true
	case "open":
		for _, in := range ev.Intent {
			if in == "write" || in == "create" || in == "trunc" {
				return true
			}
		}
	}
	return false
}

var builtinRules = []*builtin{
	{
		Info:  Info{Name: "shell-spawned", Severity: detect.SeverityHigh, Description: "a shell or interpreter started by a function whose runtime is not a shell, after init", Techniques: []string{"T1059.004"}},
		kinds: kinds("exec"),
		match: func(_ *State, ev *detect.Event) *match {
			if ev.Phase == detect.PhaseInit || ev.Runtime == "shell" || !isShell(ev.Path) {
				return nil
			}
			return &match{key: ev.Path, summary: "shell spawned: " + describe(ev)}
		},
	},
	{
		Info:  Info{Name: "reverse-shell", Severity: detect.SeverityCritical, Description: "a reverse shell: a shell wired to a socket (argv shapes), or a process that connected out and then became a shell", Techniques: []string{"T1059.004", "T1095"}},
		kinds: kinds("exec"),
		match: func(st *State, ev *detect.Event) *match {
			if reverseShellArgv(ev) {
				return &match{key: strings.Join(ev.Argv, " "), summary: "reverse shell: " + describe(ev)}
			}
			if !isShell(ev.Path) {
				return nil
			}
			if t, ok := st.connects[ev.PID]; ok && ev.Time.UnixNano()-t < 10e9 {
				return &match{key: "connect-exec", summary: fmt.Sprintf("reverse shell: pid %d connected out, then became %s", ev.PID, ev.Path)}
			}
			return nil
		},
	},
	{
		Info:  Info{Name: "download-exec", Severity: detect.SeverityCritical, Description: "a download piped into a shell, or a file run after curl or wget fetched something in the instance", Techniques: []string{"T1105", "T1059.004"}},
		kinds: kinds("exec"),
		match: func(st *State, ev *detect.Event) *match {
			cmd := strings.Join(ev.Argv, " ")
			fetch := strings.Contains(cmd, "curl") || strings.Contains(cmd, "wget")
			if fetch && isShell(ev.Path) && (strings.Contains(cmd, "|") || strings.Contains(cmd, "$(")) {
				return &match{key: cmd, summary: "download and execute: " + describe(ev)}
			}
			if st.fetched && st.written[ev.Path] {
				return &match{key: ev.Path, summary: "ran a file written after a download: " + ev.Path}
			}
			return nil
		},
	},
	{
		Info:  Info{Name: "tmp-write-exec", Severity: detect.SeverityHigh, Description: "a file the instance wrote (or renamed, or made executable) and then ran", Techniques: []string{"T1105", "T1204.002"}},
		kinds: kinds("exec"),
		match: func(st *State, ev *detect.Event) *match {
			if !st.written[ev.Path] {
				return nil
			}
			return &match{key: ev.Path, summary: "wrote then executed " + ev.Path}
		},
	},
	{
		Info:  Info{Name: "fileless-exec", Severity: detect.SeverityCritical, Description: "a program run from memory (a memfd) or from a file deleted before it ran: code that never stayed on a path", Techniques: []string{"T1620"}},
		kinds: kinds("exec"),
		match: func(_ *State, ev *detect.Event) *match {
			if !ev.Fileless {
				return nil
			}
			what := ev.ExeName
			if what == "" {
				what = ev.Path
			}
			return &match{key: what, summary: "ran a program with no file behind it: " + what + " (" + describe(ev) + ")"}
		},
	},
	{
		Info:  Info{Name: "tmp-chmod-exec", Severity: detect.SeverityMedium, Description: "an execute bit set on a file in a writable directory, or a file created there executable: a new program, not the function's", Techniques: []string{"T1222.002"}},
		kinds: kinds("chmod", "open"),
		match: func(_ *State, ev *detect.Event) *match {
			if ev.Kind == "open" && (creates(ev) == "" || ev.Flags&oDirectory != 0) {
				return nil
			}
			if ev.Failed() || ev.Mode&0o111 == 0 || !hasPrefixAny(ev.Path, writableDirs) {
				return nil
			}
			if ev.Kind == "open" {
				return &match{key: ev.Path, summary: fmt.Sprintf("created %s executable (mode %o)", ev.Path, ev.Mode)}
			}
			return &match{key: ev.Path, summary: fmt.Sprintf("made %s executable (mode %o)", ev.Path, ev.Mode)}
		},
	},
	{
		Info:  Info{Name: "exec-from-writable", Severity: detect.SeverityMedium, Description: "a program run (or tried) from /tmp, /dev/shm or another writable place, or a hidden file", Techniques: []string{"T1204.002", "T1564.001"}},
		kinds: kinds("exec"),
		match: func(_ *State, ev *detect.Event) *match {
			if !hasPrefixAny(ev.Path, writableDirs) && !strings.HasPrefix(base(ev.Path), ".") {
				return nil
			}
			return &match{key: ev.Path, summary: "executed from a writable place: " + ev.Path}
		},
	},
	{
		Info:  Info{Name: "environ-read", Severity: detect.SeverityHigh, Description: "another process's or the instance's own environment read through /proc (where secrets live), or process memory", Techniques: []string{"T1552", "T1003"}},
		kinds: kinds("open"),
		match: func(_ *State, ev *detect.Event) *match {
			p := ev.Path
			if !strings.HasPrefix(p, "/proc/") || !(strings.HasSuffix(p, "/environ") || strings.HasSuffix(p, "/mem")) {
				return nil
			}
			return &match{key: p, summary: "read " + p}
		},
	},
	{
		Info:  Info{Name: "credential-read", Severity: detect.SeverityHigh, Description: "a credential file opened: shadow, sudoers, cloud (AWS, gcloud, Azure), SSH and GPG keys, Docker, Kubernetes, VCS, package-registry (npm, PyPI, RubyGems, Cargo), Vault and Terraform tokens, mounted secrets; any file of a credential directory (.aws, .ssh, .gnupg, .kube, ...) and SSH private keys under any name after them", Techniques: []string{"T1552.001", "T1003.008"}},
		kinds: kinds("open"),
		match: func(_ *State, ev *detect.Event) *match {
			p := ev.Path
			if !isCredential(p) {
				return nil
			}
			return &match{key: p, summary: "opened credential file " + p}
		},
	},
	{
		Info:  Info{Name: "listener", Severity: detect.SeverityMedium, Description: "a function listening for connections: a bind shell or a backdoor (functions are invoked, they do not serve)", Techniques: []string{"T1095", "T1571"}},
		kinds: kinds("listen"),
		match: func(_ *State, ev *detect.Event) *match {
			return &match{key: fmt.Sprint(ev.PID), summary: fmt.Sprintf("listening socket opened by pid %d (%s)", ev.PID, base(ev.Exe))}
		},
	},
	{
		Info:  Info{Name: "metadata-access", Severity: detect.SeverityHigh, Description: "a connection or datagram (sent or refused) to a cloud metadata or link-local address", Techniques: []string{"T1552.005"}},
		kinds: kinds("connect", "sendto"),
		match: func(_ *State, ev *detect.Event) *match {
			a, err := netip.ParseAddr(ev.Addr)
			if err != nil {
				return nil
			}
			for _, n := range metadataNet {
				if n.Contains(a) {
					return &match{key: ev.Where(), summary: "connect to metadata address " + ev.Where()}
				}
			}
			return nil
		},
	},
	{
		Info:  Info{Name: "mining-pool", Severity: detect.SeverityHigh, Description: "a connection to a mining pool port, or a miner started", Techniques: []string{"T1496"}},
		kinds: kinds("connect", "sendto", "exec"),
		match: func(_ *State, ev *detect.Event) *match {
			if ev.Kind != "exec" {
				if (ev.Family == "inet" || ev.Family == "inet6") && miningPorts[ev.Port] {
					return &match{key: ev.Where(), summary: "connect to mining pool port: " + ev.Where()}
				}
				return nil
			}
			cmd := strings.ToLower(strings.Join(ev.Argv, " "))
			for _, name := range []string{strings.ToLower(base(ev.Path)), strings.ToLower(argv0(ev))} {
				if containsAny(name, minerNames) != "" {
					return &match{key: ev.Path, summary: "miner started: " + describe(ev)}
				}
			}
			if containsAny(cmd, minerArgs) != "" {
				return &match{key: cmd, summary: "miner started: " + describe(ev)}
			}
			return nil
		},
	},
	{
		Info:  Info{Name: "denied-syscall", Severity: detect.SeverityHigh, Description: "a sensitive system call (ptrace, mount, bpf, unshare, a clone asking for new namespaces, keyctl, module loading, ...) refused by the sandbox: an escape attempt", Techniques: []string{"T1611"}},
		kinds: kinds("denied"),
		match: func(_ *State, ev *detect.Event) *match {
			if !sensitiveSyscalls[ev.Syscall] {
				return nil
			}
			return &match{key: ev.Syscall, summary: describe(ev)}
		},
	},
	{
		Info:  Info{Name: "denied-burst", Severity: detect.SeverityCritical, Description: "10 or more system calls refused by the sandbox within one second: probing for a way out", Techniques: []string{"T1611"}},
		kinds: kinds("denied"),
		match: func(st *State, ev *detect.Event) *match {
			now := ev.Time.UnixNano()
			st.denied = append(st.denied, now)
			keep := st.denied[:0]
			for _, t := range st.denied {
				if now-t < 1e9 {
					keep = append(keep, t)
				}
			}
			st.denied = keep
			if len(st.denied) < 10 || now < st.burstUntil {
				return nil
			}
			st.burstUntil = now + 1e9
			return &match{key: fmt.Sprint(now / 1e9), summary: fmt.Sprintf("%d system calls refused within a second (last: %s)", len(st.denied), ev.Syscall)}
		},
	},
	{
		Info:  Info{Name: "privilege-change", Severity: detect.SeverityHigh, Description: "an attempt to change user or group ids, or capabilities", Techniques: []string{"T1548"}},
		kinds: kinds("setid", "capset"),
		match: func(_ *State, ev *detect.Event) *match {
			return &match{key: ev.Syscall + fmt.Sprint(ev.IDs), summary: "privilege change: " + describe(ev)}
		},
	},
	{
		Info:  Info{Name: "container-socket", Severity: detect.SeverityHigh, Description: "a connection to a container runtime or kubelet socket", Techniques: []string{"T1611", "T1610"}},
		kinds: kinds("connect"),
		match: func(_ *State, ev *detect.Event) *match {
			if ev.Family != "unix" {
				return nil
			}
			p := ev.Addr
			hit := strings.HasPrefix(p, "/run/containerd/") || strings.HasPrefix(p, "/var/run/docker/")
			for _, s := range containerSocks {
				hit = hit || strings.HasSuffix(p, s)
			}
			if !hit {
				return nil
			}
			return &match{key: p, summary: "connect to container socket " + p}
		},
	},
	{
		Info:  Info{Name: "sensitive-write", Severity: detect.SeverityMedium, Description: "a write, delete, rename, link, chmod, chown, truncate, time change or new node in the code, system, kernel, root's home or package-database directories, or a file made under /dev or at the top of the root (read-only in the sandbox: the attempt is tampering)", Techniques: []string{"T1554", "T1222.002"}},
		kinds: kinds("open", "unlink", "rename", "chmod", "mkdir", "link", "symlink", "truncate", "utimes", "mknod", "chown"),
		match: func(_ *State, ev *detect.Event) *match {
			if !writes(ev) {
				return nil
			}
			p := ev.Path
			if ev.Kind == "link" {
				p = "" // the existing file is only named: the new link is the change
			}
			newName := ev.Kind == "rename" || ev.Kind == "link" || ev.Kind == "symlink"
			if !(p != "" && protected(p)) && !(newName && protected(ev.NewPath)) && !madeInDevOrRoot(ev) {
				return nil
			}
			return &match{key: ev.Kind + p, summary: "tampering attempt: " + describe(ev)}
		},
	},
	{
		Info:  Info{Name: "ingress-tool", Severity: detect.SeverityMedium, Description: "a download tool (curl, wget, aria2c, ...) started after init by a function whose runtime is not a shell: tooling fetched at run time", Techniques: []string{"T1105"}},
		kinds: kinds("exec"),
		match: func(_ *State, ev *detect.Event) *match {
			if ev.Phase == detect.PhaseInit || ev.Runtime == "shell" || !ingressTools[base(ev.Path)] && !ingressTools[argv0(ev)] {
				return nil
			}
			return &match{key: base(ev.Path), summary: "download tool: " + describe(ev)}
		},
	},
	{
		Info:  Info{Name: "proc-exe-write", Severity: detect.SeverityHigh, Description: "a process's executable or descriptor reopened for writing through /proc (/proc/self/exe, /proc/N/fd/M, map_files): the way out of a container that overwrites its runtime", Techniques: []string{"T1611"}},
		kinds: kinds("open"),
		match: func(_ *State, ev *detect.Event) *match {
			if !writes(ev) || !procExeOrFD(ev.Path) {
				return nil
			}
			return &match{key: ev.Path, summary: "opened for writing through /proc: " + ev.Path}
		},
	},
	{
		Info:  Info{Name: "network-tool", Severity: detect.SeverityMedium, Description: "a network tool started: nc, socat, nmap, tcpdump, ssh, telnet, ...", Techniques: []string{"T1046", "T1095"}},
		kinds: kinds("exec"),
		match: func(_ *State, ev *detect.Event) *match {
			if !networkTools[base(ev.Path)] {
				return nil
			}
			return &match{key: ev.Path, summary: "network tool: " + describe(ev)}
		},
	},
}

// protected reports a path in (or one of) the protected directories.
func protected(p string) bool { return hasPrefixAny(p+"/", protectedDirs) }

// procExeOrFD reports /proc/<pid or self or thread-self>/exe, .../fd/N
// and .../map_files/... (and the same under task/<tid>).
func procExeOrFD(p string) bool {
	rest, ok := strings.CutPrefix(p, "/proc/")
	if !ok {
		return false
	}
	parts := strings.Split(rest, "/")
	if len(parts) >= 3 && parts[1] == "task" {
		parts = parts[2:] // /proc/<pid>/task/<tid>/...
	}
	if len(parts) < 2 {
		return false
	}
	switch parts[1] {
	case "exe":
		return len(parts) == 2
	case "fd", "map_files":
		return len(parts) == 3
	}
	return false
}

// madeInDevOrRoot reports a file or directory made under /dev (not one of
// the usual device files) or directly in /: hiding places and tampering.
func madeInDevOrRoot(ev *detect.Event) bool {
	p := creates(ev)
	switch {
	case p == "" && ev.Kind == "open" && ev.Failed():
		// a refused create made nothing, but it was tried
		for _, in := range ev.Intent {
			if in == "create" {
				p = ev.Path
			}
		}
	case p == "" && (ev.Kind == "mkdir" || ev.Kind == "mknod"):
		p = ev.Path
	}
	if p == "" || devFiles[p] || hasPrefixAny(p, devWritable) {
		return false
	}
	if strings.HasPrefix(p, "/dev/") {
		return true
	}
	return len(p) > 1 && strings.Count(p, "/") == 1 // "/x"
}

// reverseShellArgv recognises the command lines of common reverse shells.
func reverseShellArgv(ev *detect.Event) bool {
	cmd := strings.Join(ev.Argv, " ")
	if strings.Contains(cmd, "/dev/tcp/") || strings.Contains(cmd, "/dev/udp/") {
		return true
	}
	b := base(ev.Path)
	if b == "nc" || b == "ncat" || b == "netcat" {
		for _, a := range ev.Argv[min(1, len(ev.Argv)):] {
			if a == "-e" || a == "-c" || strings.HasPrefix(a, "-e") {
				return true
			}
		}
	}
	if b == "socat" && (strings.Contains(cmd, "exec:") || strings.Contains(cmd, "system:") || strings.Contains(cmd, "EXEC:")) {
		return true
	}
	if strings.Contains(cmd, "pty.spawn") || strings.Contains(cmd, "/inet/tcp/") || strings.Contains(cmd, "fsockopen(") ||
		strings.Contains(cmd, "TCPSocket.") {
		return true
	}
	// An interpreter's one-liner that opens a socket and hands it to a
	// shell (dup2 onto stdin/stdout, or spawns one): python, perl, ruby,
	// php, node, lua.
	if isShell(ev.Path) && strings.Contains(cmd, "socket") &&
		containsAny(cmd, []string{"dup2", "/bin/sh", "/bin/bash", "sh -i", "spawn(", "exec(", "popen", "system("}) != "" {
		return true
	}
	// A shell wired to a socket client through a pipe or fifo.
	if containsAny(cmd, []string{"mkfifo", "mknod"}) != "" && containsAny(cmd, []string{"nc ", "ncat ", "telnet ", "openssl s_client", "socat "}) != "" {
		return true
	}
	if strings.Contains(cmd, "openssl s_client") && containsAny(cmd, []string{"| /bin/sh", "|/bin/sh", "| sh", "| bash", "|bash"}) != "" {
		return true
	}
	if isShell(ev.Path) && strings.Contains(cmd, " -i") && strings.Contains(cmd, ">&") {
		return true
	}
	return false
}

// EscapeSyscalls names the syscalls whose refusal by the sandbox is an
// escape attempt (the denied-syscall rule's), sorted: the sensor kills a
// process that tries one in an instance of a function whose
// Sandbox.OnDenial is recycle.
func EscapeSyscalls() []string {
	return slices.Sorted(maps.Keys(sensitiveSyscalls))
}
