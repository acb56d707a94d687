package main

// Checks on files: secrets and host paths that must be invisible, places
// that must be read-only, device nodes, /proc and /sys knobs.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// readAttempt opens path and reads a little of it, or lists it when it is
// a directory. Opening it at all is an escape. Contents are never reported.
func readAttempt(r *report, path string) {
	f, err := os.Open(path)
	if err != nil {
		r.notef("open %s: %s", path, errText(err))
		return
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		names, err := f.Readdirnames(64)
		if err != nil && err != io.EOF {
			r.escapef("open %s: opened the directory; readdir: %s", path, errText(err))
			return
		}
		r.escapef("open %s: opened the directory, %d entries (of at most 64 read)", path, len(names))
		return
	}
	n, err := f.Read(make([]byte, 4096))
	if err != nil && err != io.EOF {
		r.escapef("open %s: opened; read: %s", path, errText(err))
		return
	}
	r.escapef("open %s: read %d bytes", path, n)
}

func checkReadShadow(ctx context.Context, p *params) *report {
	r := &report{}
	readAttempt(r, "/etc/shadow")
	readAttempt(r, "/etc/gshadow")
	return r
}

func checkReadHostPaths(ctx context.Context, p *params) *report {
	r := &report{}
	for _, path := range []string{"/root", "/home", "/var/lib", "/proc/1/root/etc/shadow"} {
		readAttempt(r, path)
	}
	// pid 1's environment: the function's own when it is pid 1, which is
	// no escape; anyone else's is. Only the variables' names are reported.
	env, err := os.ReadFile("/proc/1/environ")
	switch {
	case err != nil:
		r.notef("read /proc/1/environ: %s", errText(err))
	case os.Getpid() == 1:
		r.notef("read /proc/1/environ: pid 1 is this process; its own environment, %d variables", countEnv(env))
	default:
		r.escapef("read /proc/1/environ: read pid 1's environment (%d variables: %s); pid 1 is not this process (pid %d)",
			countEnv(env), strings.Join(envNames(env, 20), " "), os.Getpid())
	}
	for _, path := range p.HostPaths {
		readAttempt(r, path)
	}
	return r
}

func countEnv(env []byte) int {
	return len(envNames(env, -1))
}

// envNames is the names of the first max variables of a NUL-separated
// environment block (all when max < 0).
func envNames(env []byte, max int) []string {
	var names []string
	for kv := range strings.SplitSeq(string(env), "\x00") {
		if kv == "" {
			continue
		}
		if max >= 0 && len(names) == max {
			break
		}
		name, _, _ := strings.Cut(kv, "=")
		names = append(names, name)
	}
	return names
}

// createAttempt tries to create a new file in dir, and removes it again if
// that worked.
func createAttempt(r *report, dir, nonce string) {
	path := filepath.Join(dir, "moat-escape-"+nonce)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if !r.try("create "+path, err) {
		return
	}
	f.Close()
	if err := os.Remove(path); err != nil {
		r.notef("remove %s: %s", path, errText(err))
	}
}

// openWriteAttempt opens an existing path for writing, without truncating
// it, and closes it again without writing.
func openWriteAttempt(r *report, path string) {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		r.notef("open %s for writing: %s", path, errText(err))
		return
	}
	defer f.Close()
	if isDevNull(f) {
		r.notef("open %s for writing: succeeded, but it is /dev/null (masked)", path)
		return
	}
	r.escapef("open %s for writing: succeeded (closed without writing)", path)
}

// isDevNull reports whether f is the null device, which the sandbox binds
// over /proc files it masks.
func isDevNull(f *os.File) bool {
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) != nil {
		return false
	}
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && unix.Major(st.Rdev) == 1 && unix.Minor(st.Rdev) == 3
}

func checkWriteVarTask(ctx context.Context, p *params) *report {
	r := &report{}
	dirs := []string{"/var/task"}
	if root := os.Getenv("LAMBDA_TASK_ROOT"); root != "" && filepath.Clean(root) != "/var/task" {
		dirs = append(dirs, filepath.Clean(root))
	}
	for _, dir := range dirs {
		createAttempt(r, dir, p.Nonce)
		sub := filepath.Join(dir, "moat-escape-dir-"+p.Nonce)
		if r.try("mkdir "+sub, os.Mkdir(sub, 0o755)) {
			_ = os.Remove(sub)
		}
		boot := filepath.Join(dir, "bootstrap")
		fi, err := os.Stat(boot)
		if err != nil {
			r.notef("stat %s: %s", boot, errText(err))
			continue
		}
		openWriteAttempt(r, boot)
		// Same mode and times as before: the attempt changes nothing even
		// when it succeeds.
		r.try(fmt.Sprintf("chmod %s %o", boot, fi.Mode().Perm()), os.Chmod(boot, fi.Mode()))
		r.try("utimes "+boot, os.Chtimes(boot, time.Time{}, fi.ModTime()))
	}
	return r
}

func checkWriteRoot(ctx context.Context, p *params) *report {
	r := &report{}
	for _, dir := range []string{"/", "/etc", "/usr", "/usr/bin", "/opt", "/var", "/dev"} {
		createAttempt(r, dir, p.Nonce)
	}
	for _, path := range []string{"/etc/passwd", "/etc/group", "/etc/hosts", "/etc/resolv.conf"} {
		if _, err := os.Lstat(path); err != nil {
			r.notef("stat %s: %s", path, errText(err))
			continue
		}
		openWriteAttempt(r, path)
	}
	return r
}

// checkOverwriteExe tries what CVE-2019-5736 did: open the running binary,
// or pid 1's, for writing through /proc. It never writes.
func checkOverwriteExe(ctx context.Context, p *params) *report {
	r := &report{}
	openWriteAttempt(r, "/proc/self/exe")
	if os.Getpid() != 1 {
		openWriteAttempt(r, "/proc/1/exe")
	} else {
		r.notef("/proc/1/exe: pid 1 is this process")
	}
	return r
}

// deviceRule is what an allowed entry of /dev must be.
type deviceRule struct {
	kind         fs.FileMode // charDevice, fs.ModeSymlink or fs.ModeDir
	major, minor uint32
}

// charDevice is the type bits of a character device.
const charDevice = fs.ModeDevice | fs.ModeCharDevice

var allowedDev = map[string][]deviceRule{
	"null":    {{kind: charDevice, major: 1, minor: 3}},
	"zero":    {{kind: charDevice, major: 1, minor: 5}},
	"full":    {{kind: charDevice, major: 1, minor: 7}},
	"random":  {{kind: charDevice, major: 1, minor: 8}},
	"urandom": {{kind: charDevice, major: 1, minor: 9}},
	"fd":      {{kind: fs.ModeSymlink}},
	"stdin":   {{kind: fs.ModeSymlink}},
	"stdout":  {{kind: fs.ModeSymlink}},
	"stderr":  {{kind: fs.ModeSymlink}},
	"ptmx":    {{kind: fs.ModeSymlink}, {kind: charDevice, major: 5, minor: 2}},
	"pts":     {{kind: fs.ModeDir}},
	"shm":     {{kind: fs.ModeDir}},
	"mqueue":  {{kind: fs.ModeDir}},
}

// judgeDevEntry says why /dev/name is not allowed, or "" when it is.
func judgeDevEntry(name string, mode fs.FileMode, rdev uint64) string {
	kind := mode.Type()
	if kind&fs.ModeDevice != 0 && kind&fs.ModeCharDevice == 0 {
		return fmt.Sprintf("block device %d:%d", unix.Major(rdev), unix.Minor(rdev))
	}
	rules, ok := allowedDev[name]
	if !ok {
		return fmt.Sprintf("unexpected entry (%s)", describeMode(mode, rdev))
	}
	for _, rule := range rules {
		if kind != rule.kind {
			continue
		}
		if rule.kind != charDevice || (unix.Major(rdev) == rule.major && unix.Minor(rdev) == rule.minor) {
			return ""
		}
	}
	return fmt.Sprintf("unexpected %s", describeMode(mode, rdev))
}

func describeMode(mode fs.FileMode, rdev uint64) string {
	switch t := mode.Type(); {
	case t&fs.ModeCharDevice != 0:
		return fmt.Sprintf("char device %d:%d", unix.Major(rdev), unix.Minor(rdev))
	case t&fs.ModeDevice != 0:
		return fmt.Sprintf("block device %d:%d", unix.Major(rdev), unix.Minor(rdev))
	case t&fs.ModeSymlink != 0:
		return "symlink"
	case t&fs.ModeDir != 0:
		return "directory"
	case t == 0:
		return "regular file"
	default:
		return t.String()
	}
}

func checkDevices(ctx context.Context, p *params) *report {
	r := &report{}
	entries, err := os.ReadDir("/dev")
	if err != nil {
		r.notef("list /dev: %s", errText(err))
	} else {
		var names, bad []string
		for _, e := range entries {
			names = append(names, e.Name())
			var st unix.Stat_t
			if err := unix.Lstat("/dev/"+e.Name(), &st); err != nil {
				r.notef("lstat /dev/%s: %s", e.Name(), errText(err))
				continue
			}
			fi, err := e.Info()
			if err != nil {
				continue
			}
			if why := judgeDevEntry(e.Name(), fi.Mode(), st.Rdev); why != "" {
				bad = append(bad, e.Name()+": "+why)
			}
		}
		r.notef("/dev holds %s", strings.Join(names, " "))
		if len(bad) > 0 {
			if len(bad) > 20 {
				bad = append(bad[:20], fmt.Sprintf("and %d more", len(bad)-20))
			}
			r.escapef("/dev holds entries beyond the minimal set: %s", strings.Join(bad, ", "))
		}
	}
	for _, dev := range []struct {
		name        string
		mode        uint32
		major, minr uint32
	}{
		{"char-1-3", unix.S_IFCHR | 0o666, 1, 3},
		{"block-8-0", unix.S_IFBLK | 0o600, 8, 0},
	} {
		path := fmt.Sprintf("/tmp/moat-escape-%s-%s", dev.name, p.Nonce)
		err := unix.Mknod(path, dev.mode, int(unix.Mkdev(dev.major, dev.minr)))
		if r.try(fmt.Sprintf("mknod %s (%d:%d)", path, dev.major, dev.minr), err) {
			_ = os.Remove(path)
		}
	}
	for _, path := range []string{"/dev/mem", "/dev/kmem", "/dev/port", "/dev/kmsg", "/dev/sda", "/dev/vda", "/dev/xvda", "/dev/nvme0n1", "/dev/kvm", "/dev/tty", "/dev/console"} {
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
		if r.try("open "+path, err) {
			unix.Close(fd)
		}
	}
	return r
}

// fileIDIno32Gen is FILEID_INO32_GEN: a handle of a 32-bit inode number
// and a generation, which ext2/3/4 accept.
const fileIDIno32Gen = 1

func checkOpenByHandleAt(ctx context.Context, p *params) *report {
	r := &report{}
	h, mountID, err := unix.NameToHandleAt(unix.AT_FDCWD, "/", 0)
	if err != nil {
		r.notef("name_to_handle_at /: %s", errText(err))
	} else {
		r.notef("name_to_handle_at /: handle type %d, %d bytes, mount id %d", h.Type(), h.Size(), mountID)
		handleAttempt(r, "/", h, "the handle of /")
	}
	// The "shocker" attack: forge the handle of inode 2, the root of the
	// file system that holds the mount, which is the host's.
	var forged [8]byte
	binary.LittleEndian.PutUint32(forged[:4], 2)
	for _, dir := range []string{"/var/task", "/tmp", "/"} {
		handleAttempt(r, dir, unix.NewFileHandle(fileIDIno32Gen, forged[:]), "a forged handle of inode 2")
	}
	return r
}

func handleAttempt(r *report, mountDir string, h unix.FileHandle, what string) {
	mfd, err := unix.Open(mountDir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		r.notef("open %s: %s", mountDir, errText(err))
		return
	}
	defer unix.Close(mfd)
	fd, err := unix.OpenByHandleAt(mfd, h, unix.O_RDONLY|unix.O_CLOEXEC)
	if err != nil {
		r.notef("open_by_handle_at(%s, %s): %s", mountDir, what, errText(err))
		return
	}
	f := os.NewFile(uintptr(fd), "handle")
	defer f.Close()
	names, _ := f.Readdirnames(16)
	r.escapef("open_by_handle_at(%s, %s): opened it (entries: %s)", mountDir, what, strings.Join(names, " "))
}

// sysctlWrite is one /proc/sys file and the value to write: same reads the
// current value and writes it back, so that a write that succeeds changes
// nothing.
type sysctlWrite struct {
	path  string
	value string
	same  bool
}

var sysctlWrites = []sysctlWrite{
	{path: "/proc/sys/kernel/hostname", same: true},
	{path: "/proc/sys/kernel/domainname", same: true},
	{path: "/proc/sys/kernel/core_pattern", same: true},
	{path: "/proc/sys/net/ipv4/ip_forward", same: true},
	// 4 only silences drop_caches' log line: it drops nothing.
	{path: "/proc/sys/vm/drop_caches", value: "4"},
}

func checkProcSysWrite(ctx context.Context, p *params) *report {
	r := &report{}
	for _, s := range sysctlWrites {
		value := s.value
		if s.same {
			cur, err := os.ReadFile(s.path)
			if err != nil {
				r.notef("read %s: %s", s.path, errText(err))
				continue
			}
			value = string(cur)
		}
		writeAttempt(r, s.path, value)
	}
	return r
}

// writeAttempt opens path for writing and writes value; a write that
// succeeds is an escape.
func writeAttempt(r *report, path, value string) {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		r.notef("open %s for writing: %s", path, errText(err))
		return
	}
	defer f.Close()
	if isDevNull(f) {
		r.notef("open %s for writing: succeeded, but it is /dev/null (masked); nothing attempted", path)
		return
	}
	if _, err := f.WriteString(value); err != nil {
		r.notef("open %s for writing: succeeded; write %q: %s", path, strings.TrimSpace(value), errText(err))
		return
	}
	r.escapef("write %q to %s: succeeded", strings.TrimSpace(value), path)
}

// checkSysrq writes h (print the sysrq help to the kernel log: harmless)
// to /proc/sysrq-trigger.
func checkSysrq(ctx context.Context, p *params) *report {
	r := &report{}
	writeAttempt(r, "/proc/sysrq-trigger", "h")
	return r
}

func checkSysfsWrite(ctx context.Context, p *params) *report {
	r := &report{}
	entries, err := os.ReadDir("/sys")
	if err != nil {
		r.notef("list /sys: %s", errText(err))
	} else {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		r.notef("/sys holds %d entries: %s", len(names), strings.Join(names, " "))
	}
	for _, path := range []string{"/sys/kernel/uevent_helper", "/sys/power/state", "/sys/kernel/mm/transparent_hugepage/enabled", "/sys/fs/cgroup/cgroup.procs"} {
		if _, err := os.Lstat(path); err != nil {
			r.notef("stat %s: %s", path, errText(err))
			continue
		}
		openWriteAttempt(r, path)
	}
	return r
}

const markerPrefix = "/tmp/moat-escape-marker-"

func checkTmpCrossInvocation(ctx context.Context, p *params) *report {
	r := &report{}
	if p.ReadMarker == "" && p.WriteMarker == "" {
		r.notef("no read_marker or write_marker given")
	}
	if p.ReadMarker != "" {
		path := markerPrefix + p.ReadMarker
		data, err := os.ReadFile(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			r.notef("read %s: %s (no marker from another invocation)", path, errText(err))
		case err != nil:
			r.notef("read %s: %s", path, errText(err))
		default:
			r.escapef("read %s: found a marker from another invocation: %q", path, strings.TrimSpace(string(data)))
		}
	}
	others, _ := filepath.Glob(markerPrefix + "*")
	others = slices.DeleteFunc(others, func(s string) bool { return s == markerPrefix+p.ReadMarker })
	if len(others) > 0 {
		r.notef("other markers in /tmp: %s", strings.Join(others, " "))
	}
	if p.WriteMarker != "" {
		path := markerPrefix + p.WriteMarker
		content := fmt.Sprintf("written by pid %d, nonce %s, at %s\n", os.Getpid(), p.Nonce, time.Now().UTC().Format(time.RFC3339Nano))
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			r.notef("write %s: %s", path, errText(err))
		} else {
			r.notef("wrote %s", path)
		}
	}
	return r
}
