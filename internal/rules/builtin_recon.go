package rules

import (
	"fmt"
	"strings"

	"moat.dev/moat/internal/detect"
)

// Built-in rules for what an attacker does once code runs: decode a
// payload and run it, sweep the file system for keys, ship files out,
// reach an anonymity network, and hide what was dropped. They match the
// shape of the behaviour (a decode step feeding a run step, an upload
// flag with a file, a sweep's pattern), not one tool's exact argv.
func init() { builtinRules = append(builtinRules, reconRules...) }

var (
	// decoders are the decode steps of a decode-and-run line.
	decoders = []string{"base64 -d", "base64 --decode", "base64 -D", "b64decode", "decode_base64", "base32 -d",
		"xxd -r", "xxd -p -r", "openssl enc -d", "openssl base64 -d", "uudecode", "gunzip -c", "zcat", "rev |", "fromCharCode",
		"Buffer.from(", "codecs.decode", "bytes.fromhex", "unhexlify", "\\x"}
	// payloadDecoders are the decode steps that unpack an encoded
	// payload (not a compressed file: zcat of data is ordinary work).
	payloadDecoders = []string{"base64 -d", "base64 --decode", "base64 -D", "b64decode", "decode_base64", "base32 -d",
		"xxd -r", "xxd -p -r", "openssl enc -d", "openssl base64 -d", "uudecode", "fromCharCode", "bytes.fromhex", "unhexlify"}
	// decodeTools decode; decodeFlags make them do it.
	decodeTools = kinds("base64", "base32", "basenc", "xxd", "uudecode")
	decodeFlags = kinds("-d", "--decode", "-D", "-r", "-rp", "-pr")
	// runners are the run steps: a shell or interpreter fed what was
	// decoded, or an eval of it.
	runners = []string{"| sh", "|sh", "| bash", "|bash", "| zsh", "| dash", "| python", "|python", "| perl", "|perl",
		"| php", "| ruby", "| node", "| /bin/sh", "| /bin/bash", "|/bin/sh", "|/bin/bash", "exec(", "eval(", "eval ",
		"system(", "os.system", "subprocess", "child_process", "$(", "`"}
	// sweepTools search the file system; sweepPatterns are what a
	// credential sweep looks for.
	sweepTools    = kinds("find", "grep", "egrep", "fgrep", "rg", "ag", "ack", "locate", "mlocate", "plocate", "fd", "fdfind", "trufflehog", "gitleaks")
	sweepPatterns = []string{"id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", ".pem", ".key", ".ppk", ".p12", ".pfx", ".jks", ".kdbx",
		"private key", "private_key", "begin rsa", "begin openssh", "aws_secret", "aws_access_key", "secret_access_key",
		"password", "passwd", "credentials", "token", "api_key", "apikey", ".aws", ".ssh", ".kube", ".docker", ".git-credentials",
		".netrc", ".npmrc", ".pgpass", "wallet.dat", ".env"}
	// uploaders send files out; uploadFlags are how.
	uploaders   = kinds("curl", "wget", "scp", "sftp", "rsync", "rclone", "ftp", "tftp")
	uploadFlags = []string{"-T ", "--upload-file", "-d @", "--data @", "--data-binary @", "--data-binary=@", "--data-urlencode @",
		"--data-raw @", "-F ", "--form ", "--post-file", "--body-file"}
	// runtimeAPIPath is where a shell runtime posts its responses: not
	// an upload.
	runtimeAPIPath = "/2018-06-01/runtime/"
	// anonymity tools and ports: Tor, I2P, proxy chains.
	anonymityTools = kinds("tor", "torsocks", "torify", "proxychains", "proxychains4", "i2pd", "i2prouter", "obfs4proxy", "snowflake-client")
	anonymityPorts = map[int]bool{9050: true, 9051: true, 9150: true, 9151: true, 7656: true, 7657: true}
	// hiddenDirs are where a hidden name is only ever a hiding place.
	hiddenDirs = []string{"/dev/shm/", "/run/shm/", "/var/tmp/", "/dev/mqueue/"}
	// usualDotDirs are the hidden directories tools make for themselves
	// (caches, settings): not hiding anything.
	usualDotDirs = kinds(".cache", ".config", ".local", ".npm", ".yarn", ".node-gyp", ".pki", ".git", ".venv", ".ipython",
		".matplotlib", ".keras", ".nv", ".java", ".m2", ".gradle", ".cargo", ".rustup", ".dotnet", ".nuget", ".terraform",
		".pytest_cache", ".mypy_cache", ".ruff_cache", ".serverless", ".aws-sam", ".conda", ".deno", ".bun", ".pnpm-store")
	// dirSweepLimit distinct directories listed by one process within
	// dirSweepWindow outside the runtime's own trees is a sweep (a
	// runtime's module search lists tens).
	dirSweepLimit  = 256
	dirSweepWindow = int64(10e9)
	runtimeTrees   = []string{"/var/task/", "/var/runtime/", "/var/lang/", "/opt/", "/usr/lib/", "/usr/local/lib/", "/usr/share/", "/lib/", "/lib64/", "/usr/lib64/", "/proc/self/"}
)

// oDirectory is O_DIRECTORY: an open that lists a directory.
const oDirectory = 0o200000

func containsAny(s string, subs []string) string {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return sub
		}
	}
	return ""
}

// hiddenName reports a name made to be overlooked: one of dots and
// spaces only ("...", ". "), or one that ends in spaces.
func hiddenName(name string) bool {
	if name == "." || name == ".." || name == "" {
		return false
	}
	if strings.Trim(name, ". ") == "" || strings.TrimRight(name, " ") != name {
		return true
	}
	return false
}

// creates reports the path an event creates or names anew, if any.
func creates(ev *detect.Event) string {
	if ev.Failed() {
		return ""
	}
	switch ev.Kind {
	case "mkdir", "mknod":
		return ev.Path
	case "rename", "link", "symlink":
		return ev.NewPath
	case "open":
		for _, in := range ev.Intent {
			if in == "create" {
				return ev.Path
			}
		}
	}
	return ""
}

var reconRules = []*builtin{
	{
		Info:  Info{Name: "decode-exec", Severity: detect.SeverityHigh, Description: "a command line that decodes a payload and runs it (base64, hex, xxd, openssl fed to a shell or an eval)", Techniques: []string{"T1140", "T1059"}},
		kinds: kinds("exec"),
		match: func(_ *State, ev *detect.Event) *match {
			if len(ev.Argv) < 2 || !isShell(ev.Path) && !isShell(argv0(ev)) {
				return nil
			}
			cmd := strings.Join(ev.Argv[1:], " ")
			dec, run := containsAny(cmd, decoders), containsAny(cmd, runners)
			if dec == "" || run == "" || dec == "\\x" && !strings.Contains(cmd, "printf") && !strings.Contains(cmd, "echo -e") {
				return nil
			}
			return &match{key: cmd, summary: "decode and run: " + describe(ev)}
		},
	},
	{
		Info:  Info{Name: "decode-payload", Severity: detect.SeverityMedium, Description: "a decoding tool (base64 -d, xxd -r, ...) started, or a command line with a decode step, after init by a function whose runtime is not a shell: a payload unpacked at run time", Techniques: []string{"T1140"}},
		kinds: kinds("exec"),
		match: func(_ *State, ev *detect.Event) *match {
			if ev.Phase == detect.PhaseInit || ev.Runtime == "shell" || len(ev.Argv) < 2 {
				return nil
			}
			cmd := strings.Join(ev.Argv[1:], " ")
			if (isShell(ev.Path) || isShell(argv0(ev))) && containsAny(cmd, runners) != "" {
				return nil // decode-exec's
			}
			tool := decodeTools[base(ev.Path)] || decodeTools[argv0(ev)]
			flag := false
			for _, a := range ev.Argv[1:] {
				flag = flag || decodeFlags[a]
			}
			if !(tool && flag) && containsAny(cmd, payloadDecoders) == "" {
				return nil
			}
			return &match{key: cmd, summary: "payload decoded: " + describe(ev)}
		},
	},
	{
		Info:  Info{Name: "credential-sweep", Severity: detect.SeverityHigh, Description: "a search of the file system for keys, passwords and tokens (find, grep, locate with a credential pattern)", Techniques: []string{"T1552.001", "T1083"}},
		kinds: kinds("exec"),
		match: func(_ *State, ev *detect.Event) *match {
			if !sweepTools[base(ev.Path)] && !sweepTools[argv0(ev)] {
				return nil
			}
			cmd := strings.ToLower(strings.Join(ev.Argv[min(1, len(ev.Argv)):], " "))
			if containsAny(cmd, sweepPatterns) == "" {
				return nil
			}
			return &match{key: cmd, summary: "credential sweep: " + describe(ev)}
		},
	},
	{
		Info:  Info{Name: "directory-sweep", Severity: detect.SeverityMedium, Description: fmt.Sprintf("one process listing %d or more directories, outside the function's and runtime's own and its scratch space, within ten seconds of one invocation: a walk of the file system", dirSweepLimit), Techniques: []string{"T1083"}},
		kinds: kinds("open"),
		match: func(st *State, ev *detect.Event) *match {
			if ev.Failed() || ev.Flags&oDirectory == 0 || hasPrefixAny(ev.Path+"/", runtimeTrees) || hasPrefixAny(ev.Path+"/", writableDirs) {
				return nil // the function's and runtime's own trees, and its scratch space
			}
			now := ev.Time.UnixNano()
			sw := st.sweeps[ev.PID]
			if sw == nil || now-sw.since > dirSweepWindow || sw.request != ev.RequestID {
				if len(st.sweeps) >= maxRemembered {
					clear(st.sweeps)
				}
				sw = &sweep{since: now, request: ev.RequestID, dirs: map[string]bool{}}
				st.sweeps[ev.PID] = sw
			}
			if sw.raised || len(sw.dirs) >= dirSweepLimit {
				return nil
			}
			sw.dirs[ev.Path] = true
			if len(sw.dirs) < dirSweepLimit {
				return nil
			}
			sw.raised = true
			return &match{key: fmt.Sprint(ev.PID), summary: fmt.Sprintf("pid %d (%s) listed %d directories within ten seconds (last %s)", ev.PID, base(ev.Exe), dirSweepLimit, ev.Path)}
		},
	},
	{
		Info:  Info{Name: "exfil-upload", Severity: detect.SeverityHigh, Description: "a transfer tool sending a file out: curl -T, -d @file or -F, wget --post-file, scp, sftp, rsync or rclone to a remote, a shell feeding a file to a socket", Techniques: []string{"T1048", "T1567"}},
		kinds: kinds("exec"),
		match: func(_ *State, ev *detect.Event) *match {
			tool := base(ev.Path)
			if !uploaders[tool] {
				tool = argv0(ev)
			}
			cmd := strings.Join(ev.Argv, " ") + " "
			switch {
			case strings.Contains(cmd, runtimeAPIPath):
				return nil // a shell runtime answering its invocation
			case isShell(ev.Path) && strings.Contains(cmd, "<") && containsAny(cmd, []string{"nc ", "ncat ", "netcat ", "socat ", "/dev/tcp/", "/dev/udp/"}) != "":
				// a shell feeding a file to a socket
			case tool == "scp" || tool == "sftp" || tool == "rsync" || tool == "rclone":
				if !strings.Contains(cmd, ":") {
					return nil // a local copy
				}
			case uploaders[tool]:
				if containsAny(cmd, uploadFlags) == "" {
					return nil
				}
			default:
				return nil
			}
			return &match{key: cmd, summary: "file sent out: " + describe(ev)}
		},
	},
	{
		Info:  Info{Name: "anonymity-network", Severity: detect.SeverityHigh, Description: "Tor, I2P or a proxy chain started, or a connection to their local proxy ports (9050, 9150, 7656): traffic hidden from the egress policy's view", Techniques: []string{"T1090.003"}},
		kinds: kinds("exec", "connect"),
		match: func(_ *State, ev *detect.Event) *match {
			if ev.Kind == "connect" {
				if ev.Family != "inet" && ev.Family != "inet6" || !anonymityPorts[ev.Port] {
					return nil
				}
				return &match{key: ev.Where(), summary: "connect to an anonymity proxy port: " + ev.Where()}
			}
			if !anonymityTools[base(ev.Path)] && !anonymityTools[argv0(ev)] {
				return nil
			}
			return &match{key: base(ev.Path), summary: "anonymity network: " + describe(ev)}
		},
	},
	{
		Info:  Info{Name: "hidden-file", Severity: detect.SeverityMedium, Description: "a file or directory created under a name made to be overlooked (\"...\", trailing spaces), a hidden directory that is not a tool's cache or settings, or a hidden file in shared memory or /var/tmp", Techniques: []string{"T1564.001"}},
		kinds: kinds("open", "mkdir", "mknod", "rename", "link", "symlink"),
		match: func(_ *State, ev *detect.Event) *match {
			p := creates(ev)
			if p == "" {
				return nil
			}
			name := base(p)
			dotDir := ev.Kind == "mkdir" && strings.HasPrefix(name, ".") && !usualDotDirs[name]
			if !hiddenName(name) && !dotDir && !(strings.HasPrefix(name, ".") && hasPrefixAny(p, hiddenDirs)) {
				return nil
			}
			return &match{key: p, summary: fmt.Sprintf("hidden file made: %q (%s)", p, ev.Kind)}
		},
	},
}

// sweep counts the directories one process listed since a time.
type sweep struct {
	since   int64
	request string // a sweep is counted within one invocation (or phase)
	dirs    map[string]bool
	raised  bool
}
