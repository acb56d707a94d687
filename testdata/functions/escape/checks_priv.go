package main

// Checks on privilege: capabilities, ids, namespaces, mounts and the
// system calls the seccomp allow-list must refuse. Attempts that would
// change the function itself if they succeeded run in a forked child
// (fork.go) or on a throwaway thread; attempts that would change the host
// if they succeeded use arguments that make them change nothing, and say
// so.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// judgePrivileged records the errno of a system call whose privilege check
// comes before its argument checks: EPERM or EACCES is a refusal, ENOSYS
// means there is no such call (or seccomp answers so), and any other
// outcome means the privilege check passed, which is an escape even when
// the arguments, chosen to be harmless, were then rejected.
func judgePrivileged(r *report, what string, errno syscall.Errno) {
	switch errno {
	case unix.EPERM, unix.EACCES:
		r.notef("%s: %s", what, errnoText(errno))
	case unix.ENOSYS:
		r.notef("%s: %s (not available)", what, errnoText(errno))
	case 0:
		r.escapef("%s: succeeded", what)
	default:
		r.escapef("%s: passed the privilege check; the harmless arguments were then rejected with %s", what, errnoText(errno))
	}
}

// negArg passes a negative int as a system call argument.
func negArg(v int) uintptr { return uintptr(v) }

func checkCaps(ctx context.Context, p *params) *report {
	r := &report{}
	status := readStatus("self")
	for _, set := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"} {
		v, ok := status[set]
		switch {
		case !ok:
			r.notef("%s: missing from /proc/self/status", set)
		case set == "CapInh":
			r.notef("%s: %s", set, v)
		case strings.Trim(v, "0") != "":
			r.escapef("%s: %s (not empty)", set, v)
		default:
			r.notef("%s: %s", set, v)
		}
	}
	// Try to give itself CAP_SYS_ADMIN and CAP_NET_ADMIN, in a forked
	// child so that the function keeps its own sets.
	hdr := &unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := new([2]unix.CapUserData)
	if err := unix.Capget(hdr, &data[0]); err != nil {
		r.notef("capget: %s", errText(err))
	} else {
		add := uint32(1)<<unix.CAP_SYS_ADMIN | uint32(1)<<unix.CAP_NET_ADMIN
		data[0].Effective |= add
		data[0].Permitted |= add
		data[0].Inheritable |= add
		var prog forkProgram
		prog.add("capset(+CAP_SYS_ADMIN +CAP_NET_ADMIN) in a forked child", unix.SYS_CAPSET,
			prog.ptr(hdr, unsafe.Pointer(hdr)), prog.ptr(data, unsafe.Pointer(&data[0])))
		forkAndReport(r, &prog)
	}
	o, err := forkOne("prctl(PR_CAP_AMBIENT_RAISE, CAP_SYS_ADMIN) in a forked child", unix.SYS_PRCTL,
		unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, unix.CAP_SYS_ADMIN)
	if err != nil {
		r.notef("fork: %s", errText(err))
	} else {
		r.forked(o)
	}
	return r
}

// forkAndReport runs prog in a forked child and records each op as an
// attempt that must fail.
func forkAndReport(r *report, prog *forkProgram) forkRun {
	run, err := runForked(prog, 2*time.Second)
	if err != nil {
		r.notef("%s", errText(err))
		return run
	}
	for _, o := range run.ops {
		r.forked(o)
	}
	if run.timedOut {
		r.notef("the forked child was killed after its timeout")
	}
	return run
}

func checkSeccompNNP(ctx context.Context, p *params) *report {
	r := &report{}
	status := readStatus("self")
	if v := status["NoNewPrivs"]; v != "1" {
		r.escapef("NoNewPrivs: %q (want 1)", v)
	} else {
		r.notef("NoNewPrivs: 1")
	}
	if v := status["Seccomp"]; v != "2" {
		r.escapef("Seccomp: %q (want 2, filter mode)", v)
	} else {
		r.notef("Seccomp: 2, %s filters", status["Seccomp_filters"])
	}
	if v, ok := status["Seccomp_filters"]; ok && v == "0" {
		r.escapef("Seccomp_filters: 0")
	}
	return r
}

func checkMount(ctx context.Context, p *params) *report {
	r := &report{}
	dir, err := os.MkdirTemp("/tmp", "moat-escape-mnt-")
	if err != nil {
		r.notef("mkdir a mount point in /tmp: %s", errText(err))
		dir = "/tmp"
	} else {
		defer os.Remove(dir)
	}
	for _, m := range []struct {
		what, source, fstype string
		flags                uintptr
		data                 string
	}{
		{"mount tmpfs on " + dir, "tmpfs", "tmpfs", 0, "size=1m"},
		{"mount proc on " + dir, "proc", "proc", 0, ""},
		{"bind mount / on " + dir, "/", "", unix.MS_BIND | unix.MS_REC, ""},
		{"mount sysfs on " + dir, "sysfs", "sysfs", 0, ""},
	} {
		if r.try(m.what, unix.Mount(m.source, dir, m.fstype, m.flags, m.data)) {
			r.notef("umount %s: %s", dir, errText(unix.Unmount(dir, unix.MNT_DETACH)))
		}
	}
	remountCodeRW(r, "/var/task")
	if fd, err := unix.Fsopen("tmpfs", unix.FSOPEN_CLOEXEC); r.try("fsopen(tmpfs)", err) {
		unix.Close(fd)
	}
	if fd, err := unix.OpenTree(unix.AT_FDCWD, "/", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE); r.try("open_tree(/, OPEN_TREE_CLONE)", err) {
		unix.Close(fd) // a detached tree: closing it discards it
	}
	return r
}

// mountFlags are the per-mount flags, which statfs reports with the same
// values as the mount flags.
const mountFlags = unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_NOATIME | unix.MS_NODIRATIME | unix.MS_RELATIME

// remountCodeRW tries to make the read-only code mount writable, and puts
// the flags back if that worked.
func remountCodeRW(r *report, dir string) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		r.notef("statfs %s: %s", dir, errText(err))
		return
	}
	flags := uintptr(st.Flags) & mountFlags
	if flags&unix.MS_RDONLY == 0 {
		r.notef("%s is not mounted read-only (statfs flags %#x); no remount attempted", dir, st.Flags)
		return
	}
	err := unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_BIND|(flags&^unix.MS_RDONLY), "")
	if r.try("remount "+dir+" read-write", err) {
		r.notef("remount %s read-only again: %s", dir, errText(unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_BIND|flags, "")))
	}
}

var nsFlags = []struct {
	name string // as in /proc/<pid>/ns
	flag uintptr
	text string
}{
	{"user", unix.CLONE_NEWUSER, "CLONE_NEWUSER"},
	{"mnt", unix.CLONE_NEWNS, "CLONE_NEWNS"},
	{"net", unix.CLONE_NEWNET, "CLONE_NEWNET"},
	{"pid", unix.CLONE_NEWPID, "CLONE_NEWPID"},
	{"uts", unix.CLONE_NEWUTS, "CLONE_NEWUTS"},
	{"ipc", unix.CLONE_NEWIPC, "CLONE_NEWIPC"},
	{"cgroup", unix.CLONE_NEWCGROUP, "CLONE_NEWCGROUP"},
	{"time", unix.CLONE_NEWTIME, "CLONE_NEWTIME"},
}

// checkUnshare tries to create each kind of namespace with unshare, each
// in a forked (single-threaded) child of its own, and a user namespace
// with clone and clone3 as well, which a seccomp filter must also catch.
func checkUnshare(ctx context.Context, p *params) *report {
	r := &report{}
	for _, ns := range nsFlags {
		o, err := forkOne("unshare("+ns.text+")", unix.SYS_UNSHARE, ns.flag)
		if err != nil {
			r.notef("fork for unshare(%s): %s", ns.text, errText(err))
			continue
		}
		r.forked(o)
	}
	for _, ns := range nsFlags[:4] {
		_, err := runForked(&forkProgram{cloneFlags: ns.flag}, 2*time.Second)
		r.try("clone("+ns.text+")", err)
	}
	_, err := runForked(&forkProgram{clone3: &cloneArgs{flags: unix.CLONE_NEWUSER, exitSignal: uint64(unix.SIGCHLD)}}, 2*time.Second)
	r.try("clone3(CLONE_NEWUSER)", err)
	return r
}

func checkSetns(ctx context.Context, p *params) *report {
	r := &report{}
	self := os.Getpid()
	if self == 1 {
		r.notef("pid 1 is this process: setns would enter its own namespaces")
	}
	seen := map[int]bool{}
	for _, pid := range append([]int{1}, p.HostPIDs...) {
		if seen[pid] {
			continue
		}
		seen[pid] = true
		for _, ns := range nsFlags {
			path := fmt.Sprintf("/proc/%d/ns/%s", pid, ns.name)
			fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				r.notef("open %s: %s", path, errText(err))
				continue
			}
			what := fmt.Sprintf("setns(%s, %s)", path, ns.text)
			if sameFile(fd, "/proc/self/ns/"+ns.name) {
				what += " (its own namespace)"
			}
			o, err := forkOne(what+" in a forked child", unix.SYS_SETNS, uintptr(fd), ns.flag)
			unix.Close(fd)
			if err != nil {
				r.notef("fork for %s: %s", what, errText(err))
				continue
			}
			r.forked(o)
		}
	}
	return r
}

// sameFile reports whether fd and path are the same inode.
func sameFile(fd int, path string) bool {
	var a, b unix.Stat_t
	if unix.Fstat(fd, &a) != nil || unix.Stat(path, &b) != nil {
		return false
	}
	return a.Dev == b.Dev && a.Ino == b.Ino
}

// checkChrootEscape tries chroot, then the classic escape from it: keep a
// descriptor of the old root, fchdir to it after the chroot, climb with
// "..", chroot(".") and look for a file that exists only outside the
// jail. All of it in a forked child.
func checkChrootEscape(ctx context.Context, p *params) *report {
	r := &report{}
	dir, err := os.MkdirTemp("/tmp", "moat-escape-chroot-")
	if err != nil {
		r.notef("mkdir in /tmp: %s", errText(err))
		return r
	}
	defer os.RemoveAll(dir)
	jail, outside := filepath.Join(dir, "jail"), filepath.Join(dir, "outside")
	if err := os.Mkdir(jail, 0o755); err != nil {
		r.notef("mkdir %s: %s", jail, errText(err))
		return r
	}
	if err := os.WriteFile(outside, []byte("x"), 0o644); err != nil {
		r.notef("write %s: %s", outside, errText(err))
		return r
	}
	rootFD, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		r.notef("open /: %s", errText(err))
		return r
	}
	defer unix.Close(rootFD)
	var prog forkProgram
	prog.add("chroot("+jail+")", unix.SYS_CHROOT, prog.cstr(jail))
	prog.add("fchdir(old root)", unix.SYS_FCHDIR, uintptr(rootFD))
	dotdot := prog.cstr("..")
	for range 12 {
		prog.add(`chdir("..")`, unix.SYS_CHDIR, dotdot)
	}
	prog.add(`chroot(".")`, unix.SYS_CHROOT, prog.cstr("."))
	prog.add("open "+outside, unix.SYS_OPENAT, negArg(unix.AT_FDCWD), prog.cstr(outside), unix.O_RDONLY)
	run, err := runForked(&prog, 2*time.Second)
	if err != nil {
		r.notef("%s", errText(err))
		return r
	}
	if !r.forked(run.ops[0]) {
		return r
	}
	if run.allOK() {
		r.escapef("the fchdir escape from the chroot reached the file outside the jail")
	} else {
		r.notef("escape from the chroot: %s", run)
	}
	return r
}

func checkSetuid(ctx context.Context, p *params) *report {
	r := &report{}
	r.notef("running as uid %d euid %d gid %d egid %d", os.Getuid(), os.Geteuid(), os.Getgid(), os.Getegid())
	if os.Geteuid() == 0 {
		r.notef("already euid 0: the calls below succeed without gaining anything")
	}
	groups := &[1]uint32{0}
	prog := forkProgram{keepGoing: true}
	prog.add("setuid(0)", unix.SYS_SETUID, 0)
	prog.add("setresuid(0, 0, 0)", unix.SYS_SETRESUID, 0, 0, 0)
	prog.add("setgid(0)", unix.SYS_SETGID, 0)
	prog.add("setresgid(0, 0, 0)", unix.SYS_SETRESGID, 0, 0, 0)
	prog.add("setgroups([0])", unix.SYS_SETGROUPS, 1, prog.ptr(groups, unsafe.Pointer(&groups[0])))
	forkAndReport(r, &prog)
	return r
}

// suidProbe is a setuid program and arguments that make it print a usage
// or version text and exit, or wait on its stdin, without doing anything.
var suidProbes = map[string][]string{
	"su": {"--help"}, "passwd": {"--help"}, "chsh": {"--help"}, "chfn": {"--help"},
	"gpasswd": {"--help"}, "chage": {"--help"}, "expiry": {"--help"},
	"mount": {"--version"}, "umount": {"--version"}, "sudo": {"--version"},
	"pkexec": {"--version"}, "fusermount": {"-V"}, "fusermount3": {"-V"},
}

// suidFile is a file with the setuid or setgid bit.
type suidFile struct {
	path    string
	mode    uint32 // permission bits with setuid, setgid and sticky
	uid     uint32
	nosuid  bool
	statErr error
}

// findSetuid lists setuid and setgid files in the usual places, directly
// in each dir and one level below /usr/lib and /usr/libexec.
func findSetuid(deadline time.Time) []suidFile {
	var found []suidFile
	visit := func(path string) {
		var st unix.Stat_t
		if unix.Lstat(path, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Mode&(unix.S_ISUID|unix.S_ISGID) == 0 {
			return
		}
		f := suidFile{path: path, mode: st.Mode & 0o7777, uid: st.Uid}
		var sfs unix.Statfs_t
		if err := unix.Statfs(path, &sfs); err != nil {
			f.statErr = err
		} else {
			f.nosuid = sfs.Flags&unix.ST_NOSUID != 0
		}
		found = append(found, f)
	}
	scan := func(dir string, depth int) {
		var walk func(string, int)
		walk = func(dir string, depth int) {
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if time.Now().After(deadline) {
					return
				}
				path := filepath.Join(dir, e.Name())
				switch {
				case e.Type().IsRegular():
					visit(path)
				case e.IsDir() && depth > 0:
					walk(path, depth-1)
				}
			}
		}
		walk(dir, depth)
	}
	for _, dir := range []string{"/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin", "/bin", "/sbin"} {
		if real, err := filepath.EvalSymlinks(dir); err == nil && real != dir && slices.Contains([]string{"/usr/bin", "/usr/sbin"}, real) {
			continue // /bin -> /usr/bin
		}
		scan(dir, 0)
	}
	scan("/usr/lib", 1)
	scan("/usr/libexec", 1)
	return found
}

func checkSetuidBinary(ctx context.Context, p *params) *report {
	r := &report{}
	nnp := readStatus("self")["NoNewPrivs"]
	r.notef("NoNewPrivs: %q; running as euid %d", nnp, os.Geteuid())
	found := findSetuid(time.Now().Add(3 * time.Second))
	if len(found) == 0 {
		r.notef("no setuid or setgid files found in /usr/bin, /usr/sbin, /usr/local, /usr/lib, /usr/libexec")
	}
	probed := 0
	for _, f := range found {
		where := "on a nosuid mount"
		switch {
		case f.statErr != nil:
			where = "statfs: " + errText(f.statErr)
		case !f.nosuid:
			where = "on a mount without nosuid"
		}
		r.notef("%s: mode %04o, owner uid %d, %s", f.path, f.mode, f.uid, where)
		if nnp != "1" && f.statErr == nil && !f.nosuid && f.mode&0o4000 != 0 && f.uid == 0 {
			r.escapef("%s is setuid root on a mount without nosuid and NoNewPrivs is %q: running it would gain uid 0", f.path, nnp)
		}
		args, ok := suidProbes[filepath.Base(f.path)]
		if !ok || probed == 6 || ctx.Err() != nil {
			continue
		}
		probed++
		probeSetuid(r, f.path, args)
	}
	return r
}

// probeSetuid runs a setuid program and reads its effective uid from
// /proc/<pid>/status as soon as the exec has happened: whether the kernel
// honoured the setuid bit. Its stdin is a pipe left open, so that a program
// that prompts waits instead of acting; it is killed right after.
func probeSetuid(r *report, path string, args []string) {
	stdin, keep, err := os.Pipe()
	if err != nil {
		r.notef("pipe: %s", errText(err))
		return
	}
	defer keep.Close()
	cmd := exec.Command(path, args...)
	cmd.Stdin = stdin
	cmd.WaitDelay = time.Second
	err = startTracked(cmd)
	stdin.Close()
	what := fmt.Sprintf("exec %s %s", path, strings.Join(args, " "))
	if err != nil {
		r.notef("%s: %s", what, errText(err))
		return
	}
	pid := cmd.Process.Pid
	uids := readStatus(strconv.Itoa(pid))["Uid"] // real effective saved fs
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	untrack(pid)
	fields := strings.Fields(uids)
	switch {
	case len(fields) < 2:
		r.notef("%s: could not read its Uid line (%q)", what, uids)
	case fields[1] == "0" && os.Geteuid() != 0:
		r.escapef("%s: ran with effective uid 0 (Uid: %s)", what, uids)
	default:
		r.notef("%s: ran with Uid: %s (setuid bit not honoured or already that uid)", what, uids)
	}
}

func checkKeyctl(ctx context.Context, p *params) *report {
	r := &report{}
	prog := forkProgram{keepGoing: true}
	payload := []byte("x")
	prog.add("add_key(user, moat-escape, KEY_SPEC_PROCESS_KEYRING) in a forked child", unix.SYS_ADD_KEY,
		prog.cstr("user"), prog.cstr("moat-escape-"+p.Nonce), prog.ptr(payload, unsafe.Pointer(&payload[0])), 1, negArg(unix.KEY_SPEC_PROCESS_KEYRING))
	prog.add("keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL) in a forked child", unix.SYS_KEYCTL, unix.KEYCTL_JOIN_SESSION_KEYRING, 0)
	prog.add("keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING) in a forked child", unix.SYS_KEYCTL, unix.KEYCTL_GET_KEYRING_ID, negArg(unix.KEY_SPEC_USER_KEYRING), 0)
	forkAndReport(r, &prog)
	return r
}

// bpf(2) commands and types.
const (
	bpfMapCreate          = 0
	bpfProgLoad           = 5
	bpfMapTypeArray       = 2
	bpfProgTypeSocketFilt = 1
)

type bpfMapCreateAttr struct {
	mapType, keySize, valueSize, maxEntries, mapFlags uint32
	_                                                 [108]byte
}

type bpfProgLoadAttr struct {
	progType, insnCnt    uint32
	insns, license       uint64
	logLevel, logSize    uint32
	logBuf               uint64
	kernVersion, progFlg uint32
	_                    [80]byte
}

func checkBPF(ctx context.Context, p *params) *report {
	r := &report{}
	mapAttr := &bpfMapCreateAttr{mapType: bpfMapTypeArray, keySize: 4, valueSize: 4, maxEntries: 1}
	fd, _, errno := unix.Syscall(unix.SYS_BPF, bpfMapCreate, uintptr(unsafe.Pointer(mapAttr)), unsafe.Sizeof(*mapAttr))
	if r.try("bpf(BPF_MAP_CREATE, array)", errnoErr(errno)) {
		unix.Close(int(fd))
	}
	// r0 = 0; exit
	insns := []uint64{0x00000000000000b7, 0x0000000000000095}
	license := []byte("GPL\x00")
	progAttr := &bpfProgLoadAttr{
		progType: bpfProgTypeSocketFilt,
		insnCnt:  uint32(len(insns)),
		insns:    uint64(uintptr(unsafe.Pointer(&insns[0]))),
		license:  uint64(uintptr(unsafe.Pointer(&license[0]))),
	}
	fd, _, errno = unix.Syscall(unix.SYS_BPF, bpfProgLoad, uintptr(unsafe.Pointer(progAttr)), unsafe.Sizeof(*progAttr))
	if r.try("bpf(BPF_PROG_LOAD, socket filter)", errnoErr(errno)) {
		unix.Close(int(fd))
	}
	runtimeKeepAlive(insns, license)
	return r
}

// errnoErr is nil for 0 and the errno otherwise.
func errnoErr(errno syscall.Errno) error {
	if errno == 0 {
		return nil
	}
	return errno
}

func checkPerfEventOpen(ctx context.Context, p *params) *report {
	r := &report{}
	attr := unix.PerfEventAttr{Type: unix.PERF_TYPE_SOFTWARE, Config: unix.PERF_COUNT_SW_DUMMY, Bits: unix.PerfBitDisabled}
	attr.Size = uint32(unsafe.Sizeof(attr))
	if fd, err := unix.PerfEventOpen(&attr, 0, -1, -1, unix.PERF_FLAG_FD_CLOEXEC); r.try("perf_event_open(software dummy, this process)", err) {
		unix.Close(fd)
	}
	if fd, err := unix.PerfEventOpen(&attr, -1, 0, -1, unix.PERF_FLAG_FD_CLOEXEC); r.try("perf_event_open(software dummy, every process on cpu 0)", err) {
		unix.Close(fd)
	}
	return r
}

// uffdUserModeOnly is UFFD_USER_MODE_ONLY.
const uffdUserModeOnly = 1

func checkUserfaultfd(ctx context.Context, p *params) *report {
	r := &report{}
	for _, f := range []struct {
		what  string
		flags uintptr
	}{
		{"userfaultfd(UFFD_USER_MODE_ONLY)", unix.O_CLOEXEC | unix.O_NONBLOCK | uffdUserModeOnly},
		{"userfaultfd(0)", unix.O_CLOEXEC | unix.O_NONBLOCK},
	} {
		fd, _, errno := unix.Syscall(unix.SYS_USERFAULTFD, f.flags, 0, 0)
		if r.try(f.what, errnoErr(errno)) {
			unix.Close(int(fd))
		}
	}
	if fd, err := unix.Open("/dev/userfaultfd", unix.O_RDWR|unix.O_CLOEXEC, 0); r.try("open /dev/userfaultfd", err) {
		unix.Close(fd)
	}
	return r
}

func checkIOUring(ctx context.Context, p *params) *report {
	r := &report{}
	params := new([120]byte) // struct io_uring_params, all zero
	fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, 1, uintptr(unsafe.Pointer(params)), 0)
	if r.try("io_uring_setup(1)", errnoErr(errno)) {
		unix.Close(int(fd))
	}
	return r
}

func checkKernelModules(ctx context.Context, p *params) *report {
	r := &report{}
	empty := []byte{0}
	args := []byte{0}
	_, _, errno := unix.Syscall(unix.SYS_INIT_MODULE, uintptr(unsafe.Pointer(&empty[0])), 0, uintptr(unsafe.Pointer(&args[0])))
	judgePrivileged(r, "init_module(empty image)", errno)
	fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		r.notef("open /dev/null: %s", errText(err))
	} else {
		_, _, errno = unix.Syscall(unix.SYS_FINIT_MODULE, uintptr(fd), uintptr(unsafe.Pointer(&args[0])), 0)
		judgePrivileged(r, "finit_module(/dev/null)", errno)
		unix.Close(fd)
	}
	runtimeKeepAlive(empty, args)
	return r
}

// rebootCmdNone is no reboot command ("moat"): reboot(2) checks
// CAP_SYS_BOOT first and then rejects it with EINVAL.
const rebootCmdNone = 0x6d6f6174

func checkReboot(ctx context.Context, p *params) *report {
	r := &report{}
	_, _, errno := unix.Syscall6(unix.SYS_REBOOT, unix.LINUX_REBOOT_MAGIC1, unix.LINUX_REBOOT_MAGIC2, rebootCmdNone, 0, 0, 0)
	judgePrivileged(r, "reboot(invalid command)", errno)
	return r
}

// kexecSegmentMax is KEXEC_SEGMENT_MAX; one more is rejected after the
// privilege check.
const kexecSegmentMax = 16

func checkKexecLoad(ctx context.Context, p *params) *report {
	r := &report{}
	_, _, errno := unix.Syscall6(unix.SYS_KEXEC_LOAD, 0, kexecSegmentMax+1, 0, 0, 0, 0)
	judgePrivileged(r, "kexec_load(17 segments)", errno)
	return r
}

func checkSwapon(ctx context.Context, p *params) *report {
	r := &report{}
	path, err := unix.BytePtrFromString("/moat-escape-no-such-swap-" + p.Nonce)
	if err != nil {
		r.notef("%s", err)
		return r
	}
	_, _, errno := unix.Syscall(unix.SYS_SWAPON, uintptr(unsafe.Pointer(path)), 0, 0)
	judgePrivileged(r, "swapon(a missing file)", errno)
	_, _, errno = unix.Syscall(unix.SYS_SWAPOFF, uintptr(unsafe.Pointer(path)), 0, 0)
	judgePrivileged(r, "swapoff(a missing file)", errno)
	runtimeKeepAlive(path)
	return r
}

func checkHostname(ctx context.Context, p *params) *report {
	r := &report{}
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		r.notef("uname: %s", errText(err))
		return r
	}
	host, domain := unix.ByteSliceToString(uts.Nodename[:]), unix.ByteSliceToString(uts.Domainname[:])
	r.notef("hostname %q, domainname %q", host, domain)
	// The current names: the calls change nothing even when they succeed.
	r.try(fmt.Sprintf("sethostname(%q)", host), unix.Sethostname([]byte(host)))
	r.try(fmt.Sprintf("setdomainname(%q)", domain), unix.Setdomainname([]byte(domain)))
	return r
}

// checkClock asks for CAP_SYS_TIME without changing the clock:
// settimeofday(NULL, NULL) only runs the privilege check, and ADJ_TICK
// with the current tick changes nothing. Only when both are refused does
// it really set the clock, to the current time.
func checkClock(ctx context.Context, p *params) *report {
	r := &report{}
	_, _, errno := unix.Syscall(unix.SYS_SETTIMEOFDAY, 0, 0, 0)
	probe := r.try("settimeofday(NULL, NULL)", errnoErr(errno))
	var tx unix.Timex
	if _, err := unix.Adjtimex(&tx); err != nil {
		r.notef("adjtimex(read): %s", errText(err))
	} else {
		tx.Modes = unix.ADJ_TICK
		_, err := unix.Adjtimex(&tx)
		probe = r.try(fmt.Sprintf("adjtimex(ADJ_TICK, current tick %d)", tx.Tick), err) || probe
	}
	if probe {
		return r
	}
	var now unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_REALTIME, &now); err == nil {
		r.try("clock_settime(CLOCK_REALTIME, now)", unix.ClockSettime(unix.CLOCK_REALTIME, &now))
	}
	return r
}

func checkDmesg(ctx context.Context, p *params) *report {
	r := &report{}
	buf := make([]byte, 16<<10)
	n, err := unix.Klogctl(unix.SYSLOG_ACTION_READ_ALL, buf)
	if r.try("syslog(SYSLOG_ACTION_READ_ALL)", err) {
		r.notef("read %d bytes of the kernel log", n)
	}
	f, err := os.OpenFile("/dev/kmsg", os.O_RDONLY|unix.O_NONBLOCK, 0)
	if r.try("open /dev/kmsg", err) {
		n, err := unix.Read(int(f.Fd()), buf)
		r.notef("read /dev/kmsg: %d bytes, %s", max(n, 0), errText(err))
		f.Close()
	}
	return r
}

// checkCgroupEscape tries to leave the instance's cgroup (moving itself
// to the root or the parent cgroup), to raise its own limits, and to mount
// a cgroup hierarchy of its own (the release_agent attack needs one).
func checkCgroupEscape(ctx context.Context, p *params) *report {
	r := &report{}
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		r.notef("read /proc/self/cgroup: %s", errText(err))
	} else {
		r.notef("/proc/self/cgroup: %s", strings.Join(strings.Fields(string(data)), " "))
		if leaks := cgroupOutsideRoot(string(data)); len(leaks) > 0 {
			r.notef("not an escape, but these hierarchies place the process outside its cgroup namespace's root, which shows the host's cgroup layout: %s", strings.Join(leaks, " "))
		}
	}
	ownRel := cgroupV2Path(string(data))
	const root = "/sys/fs/cgroup"
	if _, err := os.Stat(root); err != nil {
		r.notef("stat %s: %s", root, errText(err))
	} else if ownRel != "" {
		own := filepath.Join(root, ownRel)
		pid := strconv.Itoa(os.Getpid())
		for _, dir := range slices.Compact([]string{root, filepath.Dir(own)}) {
			if dir == own || !strings.HasPrefix(dir, root) {
				continue
			}
			procs := filepath.Join(dir, "cgroup.procs")
			f, err := os.OpenFile(procs, os.O_WRONLY, 0)
			if err != nil {
				r.notef("open %s for writing: %s", procs, errText(err))
				continue
			}
			_, err = f.WriteString(pid)
			f.Close()
			if r.try("move itself to "+dir+" (write "+procs+")", err) {
				back := filepath.Join(own, "cgroup.procs")
				r.notef("move back to %s: %s", own, errText(os.WriteFile(back, []byte(pid), 0)))
			}
		}
		for _, knob := range []string{"memory.max", "memory.swap.max", "pids.max", "cpu.max"} {
			path := filepath.Join(own, knob)
			cur, err := os.ReadFile(path)
			if err != nil {
				r.notef("read %s: %s", path, errText(err))
				continue
			}
			writeAttempt(r, path, string(cur))
		}
	}
	dir, err := os.MkdirTemp("/tmp", "moat-escape-cg-")
	if err != nil {
		r.notef("mkdir in /tmp: %s", errText(err))
		return r
	}
	defer os.Remove(dir)
	for _, m := range []struct{ what, fstype, data string }{
		{"mount cgroup2 on " + dir, "cgroup2", ""},
		{"mount cgroup v1 (named hierarchy) on " + dir, "cgroup", "none,name=moat-escape"},
	} {
		if r.try(m.what, unix.Mount(m.fstype, dir, m.fstype, 0, m.data)) {
			r.notef("umount %s: %s", dir, errText(unix.Unmount(dir, unix.MNT_DETACH)))
		}
	}
	return r
}

// cgroupV2Path is the path of the unified hierarchy's line ("0::/path")
// of /proc/<pid>/cgroup, or "".
func cgroupV2Path(data string) string {
	for line := range strings.SplitSeq(data, "\n") {
		if rest, ok := strings.CutPrefix(line, "0::"); ok {
			return strings.TrimSpace(rest)
		}
	}
	return ""
}

// cgroupOutsideRoot lists the lines of /proc/<pid>/cgroup whose path
// climbs above the cgroup namespace's root ("/.." or "/../...").
func cgroupOutsideRoot(data string) []string {
	var out []string
	for line := range strings.SplitSeq(data, "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) == 3 && (parts[2] == "/.." || strings.HasPrefix(parts[2], "/../")) {
			out = append(out, line)
		}
	}
	return out
}
