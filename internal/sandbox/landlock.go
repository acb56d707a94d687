package sandbox

import (
	"bufio"
	"debug/elf"
	"os"
	"path/filepath"
	"strings"

	"github.com/landlock-lsm/go-landlock/landlock"
	llsys "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"golang.org/x/sys/unix"
)

// Access sets of enforce mode: read without execute, and /tmp writable
// without execute.
const (
	readOnly        landlock.AccessFSSet = llsys.AccessFSReadFile | llsys.AccessFSReadDir
	readWriteNoExec                      = readOnly | llsys.AccessFSWriteFile | llsys.AccessFSRemoveDir |
		llsys.AccessFSRemoveFile | llsys.AccessFSMakeDir | llsys.AccessFSMakeReg | llsys.AccessFSMakeSym |
		llsys.AccessFSMakeSock | llsys.AccessFSMakeFifo | llsys.AccessFSRefer | llsys.AccessFSTruncate
	execFile = llsys.AccessFSReadFile | llsys.AccessFSExecute
	execDir  = readOnly | llsys.AccessFSExecute
)

// execRules grants execute on the bootstrap and the allowed executables,
// and on what the kernel opens for execution on their behalf: the ELF
// interpreter (ld.so) of a dynamic executable, the interpreter of a #!
// script. A path is resolved (symlinks followed) when the rule is made:
// /bin/sh allows the file it names.
//
// Shared libraries need no execute right. Execute is what execve checks:
// Landlock asks for LANDLOCK_ACCESS_FS_EXECUTE when a file is opened for
// execution (the program, and its ELF interpreter, which the kernel
// opens itself), and it has no hook on mmap or mprotect, so ld.so maps
// libraries PROT_EXEC with the read right alone. The same holds for
// anything else a process maps: the allow-list decides which programs
// the kernel starts, not which code an already running one loads. Since
// a dynamic executable needs ld.so executable, ld.so itself could be
// run as a program ("ld.so /tmp/x" loads x by mmap); the exec supervisor
// refuses such a call unless the profile lists ld.so.
//
// An item ending in "/**" grants its directory's whole tree; one ending
// in "/*" too (Landlock rules hold for hierarchies, so "/*" is widened to
// the subdirectories; the supervisor matches it exactly); any other item
// with a "*" grants the literal directory before its first "*". An item
// under /tmp grants all of /tmp: /tmp is empty when the rules are made,
// so there is no file to grant, and the supervisor decides alone which
// files there may run. An item under /proc (/proc/self/exe) is the
// process's own executable, allowed already. An item naming a directory
// grants nothing. Any other missing item is skipped, so its exec fails
// with EACCES.
func execRules(spec *initSpec) []landlock.Rule {
	var files, dirs []string
	seen := map[string]bool{}
	var add func(p string, depth int)
	add = func(p string, depth int) {
		if seen[p] || depth > 4 || !filepath.IsAbs(p) || strings.HasPrefix(p, "/proc/") {
			return
		}
		seen[p] = true
		if p == "/tmp" || strings.HasPrefix(p, "/tmp/") {
			dirs = append(dirs, "/tmp")
			return
		}
		if i := strings.IndexByte(p, '*'); i >= 0 {
			dir := p[:strings.LastIndexByte(p[:i], '/')]
			if dir == "" {
				dir = "/"
			}
			dirs = append(dirs, dir)
			return
		}
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			return // a directory is no executable: "/usr/bin" is not "/usr/bin/*"
		}
		files = append(files, p)
		if interp := interpreter(p); interp != "" {
			add(interp, depth+1)
		}
	}
	add(spec.Path, 0)
	for _, p := range spec.ExecAllow {
		add(p, 0)
	}
	rules := []landlock.Rule{landlock.PathAccess(execFile, files...).IgnoreIfMissing()}
	if len(dirs) > 0 {
		rules = append(rules, landlock.PathAccess(execDir, dirs...).IgnoreIfMissing())
	}
	return rules
}

// interpreter returns what the kernel also opens for execution to run p:
// a script's #! interpreter, or an ELF executable's PT_INTERP.
func interpreter(p string) string {
	f, err := os.Open(p)
	if err != nil {
		return ""
	}
	defer f.Close()
	head, err := bufio.NewReaderSize(f, 256).Peek(2)
	if err == nil && string(head) == "#!" {
		if _, err := f.Seek(0, 0); err != nil {
			return ""
		}
		line, _ := bufio.NewReaderSize(f, 256).ReadString('\n')
		fields := strings.Fields(strings.TrimPrefix(line, "#!"))
		if len(fields) > 0 {
			return fields[0]
		}
		return ""
	}
	ef, err := elf.NewFile(f)
	if err != nil {
		return ""
	}
	defer ef.Close()
	for _, prog := range ef.Progs {
		if prog.Type == elf.PT_INTERP {
			b := make([]byte, prog.Filesz)
			if _, err := prog.ReadAt(b, 0); err == nil {
				return strings.TrimRight(string(b), "\x00")
			}
		}
	}
	return ""
}

// restrictLandlock is the second wall on the file system and the network:
// everything is read-only (and executable) but /tmp and the writable
// devices, and TCP connect() reaches only the Runtime API and the ports a
// function was granted. It applies to every thread and survives execve.
//
// In enforce mode nothing is executable but the executables the approved
// profile lists (see execRules).
func restrictLandlock(spec *initSpec) error {
	rules := []landlock.Rule{
		landlock.RODirs("/"),
		landlock.RWDirs("/tmp"),
		landlock.RWFiles("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom").IgnoreIfMissing(),
	}
	if spec.Enforce {
		rules = append([]landlock.Rule{
			landlock.PathAccess(readOnly, "/"),
			landlock.PathAccess(readWriteNoExec, "/tmp"),
			landlock.RWFiles("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom").IgnoreIfMissing(),
		}, execRules(spec)...)
	}
	cfg := landlock.V7.BestEffort()
	if spec.AllPorts {
		// A grant of every port: the cgroup filter alone decides where
		// connect() may go, so Landlock must not handle TCP connect.
		cfg.HandledAccessNet = 0
	} else {
		rules = append(rules, landlock.ConnectTCP(RuntimeAPIPort))
		for _, p := range spec.Ports {
			rules = append(rules, landlock.ConnectTCP(p))
		}
	}
	return cfg.Restrict(rules...)
}

// landlockABI is the Landlock ABI version this kernel offers (0: none).
func landlockABI() int {
	v, err := llABI()
	if err != nil {
		return 0
	}
	return v
}

func llABI() (int, error) {
	const createRulesetVersion = 1
	v, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, createRulesetVersion)
	if errno != 0 {
		return 0, errno
	}
	return int(v), nil
}
