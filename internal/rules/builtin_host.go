package rules

import (
	"fmt"
	"path"
	"strings"

	"moat.dev/moat/internal/detect"
)

// Built-in rules for what a function does to the host it believes it runs
// on: privilege-granting file modes, covering its tracks, persistence in
// shell start-up files, reading the kernel's configuration and symbols,
// and installing, wiping or disguising programs. They match behaviour
// (the kind of file, the kind of program), not one tool's exact argv.
func init() { builtinRules = append(builtinRules, hostRules...) }

var (
	// historyNames are shell and interpreter history files (with or
	// without their leading dot); logNames are the host's log files
	// wherever they are.
	historyNames = kinds("bash_history", "zsh_history", "sh_history", "ash_history", "history",
		"python_history", "node_repl_history", "mysql_history", "psql_history", "lesshst", "viminfo")
	logNames = kinds("syslog", "messages", "auth.log", "secure", "kern.log", "daemon.log", "audit.log", "wtmp", "btmp",
		"utmp", "lastlog", "faillog")
	// logDirs hold the host's logs.
	logDirs = []string{"/var/log/", "/var/run/utmp", "/var/log"}
	// profileNames are shell start-up files; profileDirs hold more.
	profileNames = kinds(".bashrc", ".bash_profile", ".bash_login", ".profile", ".zshrc", ".zprofile", ".zshenv",
		".kshrc", ".cshrc", ".tcshrc", ".config/fish/config.fish")
	profileFiles = kinds("/etc/profile", "/etc/bash.bashrc", "/etc/environment", "/etc/zsh/zshrc", "/etc/ld.so.preload")
	profileDirs  = []string{"/etc/profile.d/"}
	// kernelInfo are the kernel's symbols, configuration and modules.
	kernelInfoFiles  = kinds("/proc/kallsyms", "/proc/config.gz", "/proc/modules", "/proc/kcore", "/proc/iomem", "/proc/vmallocinfo", "/sys/kernel/notes")
	kernelInfoPrefix = []string{"/boot/", "/sys/kernel/debug/", "/sys/firmware/", "/lib/modules/"}
	// packageManagers install software.
	packageManagers = kinds("apt", "apt-get", "aptitude", "dpkg", "yum", "dnf", "rpm", "apk", "zypper", "pacman",
		"pip", "pip3", "pipx", "easy_install", "npm", "npx", "yarn", "pnpm", "gem", "cargo", "go", "composer")
	// wipers destroy data beyond recovery.
	wipers = kinds("shred", "wipe", "srm", "sfill", "sswap", "sdmem", "wipefs", "scrub")
	// linkedDirs are directories a link to is a way around the rules
	// on what is in them.
	linkedDirs = kinds("/", "/etc", "/root", "/proc/1/root", "/proc/self/root", "/var/run/secrets", "/run/secrets", "/etc/sudoers.d", "/home")
	// systemNames are the names of host processes a disguised program
	// takes (a function has none of these).
	systemNames = kinds("init", "systemd", "kthreadd", "sshd", "cron", "crond", "rsyslogd", "dbus-daemon",
		"udevd", "systemd-journald", "agetty", "getty", "kworker", "ksoftirqd", "migration", "watchdog")
)

// changesMode reports the mode a chmod, mkdir or mknod sets, if it does.
func changesMode(ev *detect.Event) (uint32, bool) {
	switch ev.Kind {
	case "chmod", "mkdir", "mknod":
		return ev.Mode, true
	case "open":
		for _, in := range ev.Intent {
			if in == "create" {
				return ev.Mode, true
			}
		}
	}
	return 0, false
}

// target is the file an event changes: the new name for a rename, link
// or symlink, else its path.
func target(ev *detect.Event) string {
	switch ev.Kind {
	case "rename", "link", "symlink":
		return ev.NewPath
	}
	return ev.Path
}

func isHistory(p string) bool {
	b := base(p)
	return historyNames[strings.TrimPrefix(b, ".")] || logNames[b] || hasPrefixAny(p, logDirs)
}

func isProfile(p string) bool {
	if profileFiles[p] || hasPrefixAny(p, profileDirs) {
		return true
	}
	for name := range profileNames {
		if strings.HasSuffix(p, "/"+name) {
			return true
		}
	}
	return false
}

// argv0 is the name a process gave itself at exec.
func argv0(ev *detect.Event) string {
	if len(ev.Argv) == 0 {
		return ""
	}
	return base(ev.Argv[0])
}

var hostRules = []*builtin{
	{
		Info:  Info{Name: "sensitive-link", Severity: detect.SeverityHigh, Description: "a symbolic or hard link made to a credential file or to a system directory (/, /etc, /root, /proc/1/root, mounted secrets): its contents staged under a name no rule watches", Techniques: []string{"T1552.001"}},
		kinds: kinds("symlink", "link"),
		match: func(_ *State, ev *detect.Event) *match {
			p := ev.Path // link: the existing file
			if ev.Kind == "symlink" {
				if p = ev.Target; !path.IsAbs(p) {
					return nil // relative: resolved against the link's own directory, when used
				}
			}
			p = path.Clean(p)
			if !isCredential(p) && !linkedDirs[p] {
				return nil
			}
			return &match{key: ev.NewPath + "|" + p, summary: fmt.Sprintf("%s made a link to %s (%s)", ev.NewPath, p, ev.Kind)}
		},
	},
	{
		Info:  Info{Name: "setuid-bit", Severity: detect.SeverityHigh, Description: "a setuid or setgid bit set on a file: a program that would run with its owner's privileges", Techniques: []string{"T1548.001"}},
		kinds: kinds("chmod", "mkdir", "mknod", "open"),
		match: func(_ *State, ev *detect.Event) *match {
			mode, ok := changesMode(ev)
			if !ok || mode&0o6000 == 0 {
				return nil
			}
			what := ev.Path
			if what == "" {
				what = fmt.Sprintf("descriptor %d", ev.FD)
			}
			return &match{key: what, summary: fmt.Sprintf("set the setuid/setgid bit on %s (mode %o)", what, mode)}
		},
	},
	{
		Info:  Info{Name: "history-tamper", Severity: detect.SeverityHigh, Description: "shell history or host logs removed, emptied, redirected or backdated", Techniques: []string{"T1070.002", "T1070.003", "T1070.006"}},
		kinds: kinds("unlink", "truncate", "open", "symlink", "rename", "link", "utimes"),
		match: func(_ *State, ev *detect.Event) *match {
			p := target(ev)
			if ev.Kind == "rename" && isHistory(ev.Path) {
				p = ev.Path // moved away
			}
			if !isHistory(p) {
				return nil
			}
			switch ev.Kind {
			case "open":
				trunc := false
				for _, in := range ev.Intent {
					trunc = trunc || in == "trunc"
				}
				if !trunc {
					return nil // appending to one's own history is what shells do
				}
			case "utimes":
				if !ev.TimesSet {
					return nil
				}
			}
			return &match{key: ev.Kind + p, summary: "covering tracks: " + describe(ev)}
		},
	},
	{
		Info:  Info{Name: "shell-profile-write", Severity: detect.SeverityMedium, Description: "a shell start-up file or /etc/ld.so.preload written, created or replaced: persistence", Techniques: []string{"T1546.004", "T1574.006"}},
		kinds: kinds("open", "rename", "link", "symlink", "truncate", "chmod"),
		match: func(_ *State, ev *detect.Event) *match {
			if !writes(ev) || !isProfile(target(ev)) {
				return nil
			}
			return &match{key: target(ev), summary: "persistence in a start-up file: " + describe(ev)}
		},
	},
	{
		Info:  Info{Name: "kernel-info-read", Severity: detect.SeverityMedium, Description: "the kernel's symbols, configuration, modules or boot files read: reconnaissance for an exploit", Techniques: []string{"T1082"}},
		kinds: kinds("open"),
		match: func(_ *State, ev *detect.Event) *match {
			p := ev.Path
			if !kernelInfoFiles[p] && !hasPrefixAny(p, kernelInfoPrefix) {
				return nil
			}
			return &match{key: p, summary: "read kernel information: " + p}
		},
	},
	{
		Info:  Info{Name: "package-manager", Severity: detect.SeverityMedium, Description: "a package manager started after init: software installed at run time", Techniques: []string{"T1105"}},
		kinds: kinds("exec"),
		match: func(_ *State, ev *detect.Event) *match {
			if ev.Phase == detect.PhaseInit || !packageManagers[base(ev.Path)] && !packageManagers[argv0(ev)] {
				return nil
			}
			return &match{key: base(ev.Path), summary: "package manager: " + describe(ev)}
		},
	},
	{
		Info:  Info{Name: "wipe-tool", Severity: detect.SeverityHigh, Description: "a secure-deletion tool started", Techniques: []string{"T1485", "T1070.004"}},
		kinds: kinds("exec"),
		match: func(_ *State, ev *detect.Event) *match {
			if !wipers[base(ev.Path)] {
				return nil
			}
			return &match{key: base(ev.Path), summary: "wipe tool: " + describe(ev)}
		},
	},
	{
		Info:  Info{Name: "masquerade", Severity: detect.SeverityMedium, Description: "a program that calls itself by a host process's name it is not: argv[0], or the name a thread sets with prctl(PR_SET_NAME), a system daemon or kernel thread", Techniques: []string{"T1036.004"}},
		kinds: kinds("exec", "setname"),
		match: func(_ *State, ev *detect.Event) *match {
			if ev.Kind == "setname" {
				name := strings.Trim(ev.Name, "[]")
				if i := strings.IndexAny(name, "/:"); i > 0 {
					name = name[:i]
				}
				if ev.Result < 0 || !systemNames[name] {
					return nil
				}
				return &match{key: "setname|" + ev.Name, summary: fmt.Sprintf("%s (pid %d) renamed itself %q", base(ev.Exe), ev.PID, ev.Name)}
			}
			name := argv0(ev)
			if len(ev.Argv) > 0 && strings.HasPrefix(ev.Argv[0], "[") {
				// a kernel thread's name: [kworker/0:1]
				name = strings.TrimPrefix(ev.Argv[0], "[")
				if i := strings.IndexAny(name, "/:]"); i > 0 {
					name = name[:i]
				}
			}
			file := base(ev.Path)
			if ev.Result < 0 || name == "" || !systemNames[name] || name == file || strings.HasPrefix(file, name) {
				return nil
			}
			if ev.Fileless && ev.ExeName != "" {
				file = ev.ExeName
			}
			return &match{key: name + "|" + file, summary: fmt.Sprintf("%s runs as %q", file, argv0(ev))}
		},
	},
}
