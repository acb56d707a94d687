package sensor

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Records are built from the generated C-layout types, as the kernel
// writes them.

func record(t testing.TB, v any) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := binary.Write(&b, binary.NativeEndian, v); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func hdr(kind Kind, nr int32) sensorEventHdr {
	h := sensorEventHdr{
		Kind: uint8(kind), Pid: 100, Tid: 101, Ppid: 99, Uid: 993, Gid: 990,
		TimeNs: 5e9, CgroupId: 4242, Nr: nr,
	}
	copy(h.Comm[:], cchars("bootstrap"))
	return h
}

func cchars(s string) []int8 {
	out := make([]int8, len(s))
	for i := range len(s) {
		out[i] = int8(s[i])
	}
	return out
}

func sysRec(kind Kind, nr int32, ret int64, args [4]uint64, buf1, buf2 []byte) sensorSysEventPath2 {
	r := sensorSysEventPath2{Sys: sensorSysEvent{Hdr: hdr(kind, nr), Ret: ret, Args: args,
		Len1: uint32(len(buf1)), Len2: uint32(len(buf2))}}
	copy(r.Buf1[:], buf1)
	copy(r.Buf2[:], buf2)
	return r
}

func pathRec(kind Kind, nr int32, ret int64, args [4]uint64, path string) sensorSysEventPath {
	full := sysRec(kind, nr, ret, args, []byte(path+"\x00"), nil)
	return sensorSysEventPath{Sys: full.Sys, Buf1: full.Buf1}
}

var boot = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// base is the Event every record built by hdr decodes to.
func base(kind Kind, nr int) Event {
	return Event{Kind: kind, Time: boot.Add(5 * time.Second), CgroupID: 4242, PID: 100, TID: 101,
		PPID: 99, UID: 993, GID: 990, Comm: "bootstrap", Syscall: nr}
}

func with(e Event, f func(*Event)) Event { f(&e); return e }

func sockaddrIn(port uint16, ip [4]byte) []byte {
	b := make([]byte, 16)
	binary.NativeEndian.PutUint16(b, afInet)
	binary.BigEndian.PutUint16(b[2:], port)
	copy(b[4:], ip[:])
	return b
}

func sockaddrIn6(port uint16, ip [16]byte) []byte {
	b := make([]byte, 28)
	binary.NativeEndian.PutUint16(b, afInet6)
	binary.BigEndian.PutUint16(b[2:], port)
	copy(b[8:], ip[:])
	return b
}

func sockaddrUn(path string) []byte {
	b := make([]byte, 2, 2+len(path))
	binary.NativeEndian.PutUint16(b, afUnix)
	return append(b, path...)
}

func connectRec(sa []byte, ret int64) sensorSysEventPath {
	full := sysRec(KindConnect, 42, ret, [4]uint64{3, uint64(len(sa))}, sa, nil)
	return sensorSysEventPath{Sys: full.Sys, Buf1: full.Buf1}
}

// pathRecBytes is a sys_event_path record whose buffer holds raw bytes.
func pathRecBytes(kind Kind, nr int32, ret int64, args [4]uint64, buf []byte) sensorSysEventPath {
	full := sysRec(kind, nr, ret, args, buf, nil)
	return sensorSysEventPath{Sys: full.Sys, Buf1: full.Buf1}
}

// failedExecRec is a failed execveat record (EV_EXEC_FAILED) as
// sys_enter captured it: args as the kernel writes them (NUL-terminated
// strings, one after the other), argc counted.
func failedExecRec(path string, dirfd, flags uint64, args string, argc uint64, ret int64) sensorExecFailedEvent {
	r := sensorExecFailedEvent{Sys: sensorSysEvent{Hdr: hdr(KindExec, 322), Ret: ret,
		Args: [4]uint64{dirfd, flags, argc}, Len1: uint32(len(path) + 1), Len2: uint32(len(args))}}
	r.Sys.Hdr.Kind = wireExecFailed
	copy(r.Filename[:], cchars(path))
	copy(r.Args[:], cchars(args))
	return r
}

func execRec(filename string, args string, argc uint32, flags uint8) sensorExecEvent {
	r := sensorExecEvent{Hdr: hdr(KindExec, -1), Argc: argc,
		ArgsLen: uint32(len(args)), FilenameLen: uint32(len(filename) + 1)}
	r.Hdr.Flags = flags
	copy(r.Filename[:], cchars(filename))
	copy(r.Args[:], cchars(args))
	return r
}

// walked is a where buffer as the kernel fills it: the components of a
// path, the last one first, each NUL-terminated.
func walked(components ...string) []byte {
	var b []byte
	for _, c := range slices.Backward(components) {
		b = append(append(b, c...), 0)
	}
	return b
}

// openRec is a successful open of path that the kernel placed: where1 is
// the file opened; for a relative path, the record is the larger one
// and where2 the directory.
func openRec(path string, fd int64, opened, dir []byte) any {
	full := sysRec(KindOpen, 257, fd, [4]uint64{0xffffffffffffff9c}, []byte(path+"\x00"), nil)
	full.Sys.WhereLen1, full.Sys.WhereInfo1 = uint16(len(opened)), whereFile
	copy(full.Where1[:], opened)
	if dir == nil {
		r := sensorSysEventPath{Sys: full.Sys, Buf1: full.Buf1}
		copy(r.Where1[:], opened)
		return r
	}
	full.Sys.WhereLen2, full.Sys.WhereInfo2 = uint16(len(dir)), whereDir
	copy(full.Where2[:], dir)
	return full
}

func TestDecodeWhere(t *testing.T) {
	exec := execRec("/tmp/x", "x\x00", 1, 0)
	w := walked("usr", "bin", "true")
	exec.WhereLen, exec.WhereInfo = uint16(len(w)), whereFile
	copy(exec.Where[:], cchars(string(w)))
	env := "LD_PRELOAD=/tmp/evil.so\x00LD_LIBRARY_PATHX=no\x00LD_AUDIT=/a.so\x00"
	exec.EnvLen, exec.EnvInfo = uint32(len(env)), envTrunc
	copy(exec.Env[:], cchars(env))

	fchmod := pathRec(KindChmod, 91, 0, [4]uint64{5, 0o4755, 0, 1}, "")
	fchmod.Sys.Len1 = 0
	w = walked("tmp", "x")
	fchmod.Sys.WhereLen1, fchmod.Sys.WhereInfo1 = uint16(len(w)), whereFile
	copy(fchmod.Where1[:], w)

	rename := sysRec(KindRename, 264, 0, [4]uint64{5, 6}, []byte("a\x00"), []byte("b\x00"))
	d1, d2 := walked("var", "task"), walked("tmp")
	rename.Sys.WhereLen1, rename.Sys.WhereInfo1 = uint16(len(d1)), whereDir
	rename.Sys.WhereLen2, rename.Sys.WhereInfo2 = uint16(len(d2)), whereDir|whereTrunc
	copy(rename.Where1[:], d1)
	copy(rename.Where2[:], d2)

	root := pathRec(KindOpen, 257, 3, [4]uint64{0xffffffffffffff9c}, "/")
	root.Sys.WhereInfo1 = whereFile // the root: no component

	for _, tc := range []struct {
		name string
		rec  any
		want func(Event) bool
	}{
		{"open placed", openRec("/etc/../etc/shadow", 3, walked("etc", "shadow"), nil),
			func(e Event) bool { return e.Path == "/etc/../etc/shadow" && e.Opened == "/etc/shadow" && e.Dir == "" }},
		{"relative open: file and directory", openRec("environ", 3, walked("proc", "7", "environ"), walked("proc", "7")),
			func(e Event) bool { return e.Path == "environ" && e.Opened == "/proc/7/environ" && e.Dir == "/proc/7" }},
		{"exec: file run and loader variables", exec,
			func(e Event) bool {
				return e.Opened == "/usr/bin/true" && slices.Equal(e.Env, []string{"LD_PRELOAD=/tmp/evil.so", "LD_AUDIT=/a.so"}) && e.Truncated
			}},
		{"fchmod: the file", fchmod, func(e Event) bool { return e.FD == 5 && e.Opened == "/tmp/x" && e.Path == "" }},
		{"rename: two directories, one cut short", rename,
			func(e Event) bool {
				return e.Dir == "/var/task" && e.NewDir == "…/tmp" && e.Truncated && e.Opened == ""
			}},
		{"the root", root, func(e Event) bool { return e.Opened == "/" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := decode(record(t, tc.rec), boot)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.want(e) {
				t.Errorf("decoded %+v", e)
			}
		})
	}
	long := fchmod
	long.Sys.WhereLen1 = pathLen + 1
	if _, err := decode(record(t, long), boot); !errors.Is(err, ErrMalformed) {
		t.Errorf("where length past its buffer: err %v", err)
	}
	exec.EnvLen = envLen + 1
	if _, err := decode(record(t, exec), boot); !errors.Is(err, ErrMalformed) {
		t.Errorf("env length past its buffer: err %v", err)
	}
}

func TestDecode(t *testing.T) {
	const atFDCWD = -100
	fdcwd := uint64(0xffffffffffffff9c)
	longArgs := strings.Repeat("a", 300) + "\x00" + strings.Repeat("b", 211) + "\x00"
	tests := []struct {
		name string
		rec  any
		want Event
	}{
		{"exec", execRec("/var/task/bootstrap", "/var/task/bootstrap\x00--flag\x00\x00x\x00", 4, 0),
			with(base(KindExec, -1), func(e *Event) {
				e.Path = "/var/task/bootstrap"
				e.Argv = []string{"/var/task/bootstrap", "--flag", "", "x"}
				e.Argc = 4
			})},
		{"exec with argv cut", execRec("/bin/sh", longArgs[:512], 7, flagTrunc2),
			with(base(KindExec, -1), func(e *Event) {
				e.Path = "/bin/sh"
				e.Argv = []string{strings.Repeat("a", 300), strings.Repeat("b", 211)}
				e.Argc = 7
				e.Truncated = true
			})},
		{"exec without argv", execRec("/x", "", 0, flagFault2),
			with(base(KindExec, -1), func(e *Event) { e.Path = "/x"; e.Faulted = true })},
		{"bind", pathRecBytes(KindBind, 49, 0, [4]uint64{5, 16}, sockaddrIn(8080, [4]byte{127, 0, 0, 1})),
			with(base(KindBind, 49), func(e *Event) {
				e.FD, e.Family = 5, afInet
				e.Addr = netip.MustParseAddrPort("127.0.0.1:8080")
			})},
		{"listen", pathRecBytes(KindListen, 50, 0, [4]uint64{5, 128}, nil),
			with(base(KindListen, 50), func(e *Event) { e.FD, e.Backlog = 5, 128 })},
		{"accept with peer", pathRecBytes(KindAccept, 288, 6, [4]uint64{5, 0x80000}, sockaddrIn(40000, [4]byte{10, 0, 0, 9})),
			with(base(KindAccept, 288), func(e *Event) {
				e.FD, e.Flags, e.Result, e.Family = 5, 0x80000, 6, afInet
				e.Addr = netip.MustParseAddrPort("10.0.0.9:40000")
			})},
		{"accept without peer", pathRecBytes(KindAccept, 43, -11, [4]uint64{5}, nil),
			with(base(KindAccept, 43), func(e *Event) { e.FD, e.Result, e.Errno = 5, -11, 11 })},
		{"sendto unix", pathRecBytes(KindSendto, 44, 3, [4]uint64{4, 12, 3}, sockaddrUn("/run/x.sock")),
			with(base(KindSendto, 44), func(e *Event) { e.FD, e.Result, e.Family, e.Path = 4, 3, afUnix, "/run/x.sock" })},
		{"failed execveat", failedExecRec("payload", 7, 0x1000, "payload\x00-c\x00\x00", 3, -2),
			with(base(KindExec, 322), func(e *Event) {
				e.Path = "payload"
				e.Dirfd, e.Flags = 7, 0x1000
				e.Argv, e.Argc = []string{"payload", "-c", ""}, 3
				e.Result, e.Errno = -2, 2
			})},
		{"failed execve, NULL argv", failedExecRec("/x", fdcwd, 0, "", 0, -13),
			with(base(KindExec, 322), func(e *Event) {
				e.Path, e.Dirfd = "/x", atFDCWD
				e.Result, e.Errno = -13, 13
			})},
		{"failed execve, argv cut", func() sensorExecFailedEvent {
			r := failedExecRec("/x", fdcwd, 0, longArgs[:511]+"\x00", 64, -2)
			r.Sys.Hdr.Flags = flagTrunc2
			return r
		}(), with(base(KindExec, 322), func(e *Event) {
			e.Path, e.Dirfd = "/x", atFDCWD
			e.Argv, e.Argc = []string{strings.Repeat("a", 300), strings.Repeat("b", 210)}, 64
			e.Result, e.Errno, e.Truncated = -2, 2, true
		})},
		{"exit status", sensorExitEvent{Hdr: hdr(KindExit, -1), ExitCode: 3 << 8},
			with(base(KindExit, -1), func(e *Event) { e.Result = 3 })},
		{"exit by signal", sensorExitEvent{Hdr: hdr(KindExit, -1), ExitCode: 9},
			with(base(KindExit, -1), func(e *Event) { e.Signal = 9 })},
		{"denied", sensorDeniedEvent{Hdr: hdr(KindDenied, 272), Ret: -1},
			with(base(KindDenied, 272), func(e *Event) { e.Result = -1; e.Errno = 1 })},
		{"connect inet", connectRec(sockaddrIn(443, [4]byte{10, 0, 0, 1}), -111),
			with(base(KindConnect, 42), func(e *Event) {
				e.FD = 3
				e.Family = afInet
				e.Addr = netip.MustParseAddrPort("10.0.0.1:443")
				e.Result, e.Errno = -111, 111
			})},
		{"connect inet6", connectRec(sockaddrIn6(9001, netip.MustParseAddr("::1").As16()), 0),
			with(base(KindConnect, 42), func(e *Event) {
				e.FD = 3
				e.Family = afInet6
				e.Addr = netip.MustParseAddrPort("[::1]:9001")
			})},
		{"connect inet short", connectRec(sockaddrIn(443, [4]byte{10, 0, 0, 1})[:6], -22),
			with(base(KindConnect, 42), func(e *Event) {
				e.FD = 3
				e.Family = afInet
				e.Result, e.Errno = -22, 22
			})},
		{"connect unix", connectRec(sockaddrUn("/run/x.sock\x00"), 0),
			with(base(KindConnect, 42), func(e *Event) {
				e.FD = 3
				e.Family = afUnix
				e.Path = "/run/x.sock"
			})},
		{"connect abstract", connectRec(sockaddrUn("\x00moat"), 0),
			with(base(KindConnect, 42), func(e *Event) {
				e.FD = 3
				e.Family = afUnix
				e.Path = "@moat"
			})},
		{"open", pathRec(KindOpen, 257, 3, [4]uint64{fdcwd, oWronly | oCreat | oTrunc, 0o644}, "/tmp/out"),
			with(base(KindOpen, 257), func(e *Event) {
				e.Result, e.Dirfd, e.Path = 3, atFDCWD, "/tmp/out"
				e.Flags, e.Mode = oWronly|oCreat|oTrunc, 0o644
				e.Intent = IntentWrite | IntentCreate | IntentTrunc
			})},
		{"open refused", pathRec(KindOpen, 257, -13, [4]uint64{5, 0}, "rel/x"),
			with(base(KindOpen, 257), func(e *Event) {
				e.Result, e.Errno, e.Dirfd, e.Path, e.Intent = -13, 13, 5, "rel/x", IntentRead
			})},
		{"unlink dir", pathRec(KindUnlink, 263, 0, [4]uint64{fdcwd, 0x200}, "/tmp/d"),
			with(base(KindUnlink, 263), func(e *Event) { e.Dirfd, e.Flags, e.Path = atFDCWD, 0x200, "/tmp/d" })},
		{"rename", sysRec(KindRename, 316, 0, [4]uint64{fdcwd, fdcwd, 1}, []byte("/a\x00"), []byte("/b\x00")),
			with(base(KindRename, 316), func(e *Event) { e.Dirfd, e.NewDirfd, e.Flags, e.Path, e.NewPath = atFDCWD, atFDCWD, 1, "/a", "/b" })},
		{"chmod", pathRec(KindChmod, 268, 0, [4]uint64{fdcwd, 0o4755}, "/tmp/x"),
			with(base(KindChmod, 268), func(e *Event) { e.Dirfd, e.Mode, e.Path = atFDCWD, 0o4755, "/tmp/x" })},
		{"setresuid", sensorSysEvent{Hdr: hdr(KindSetID, 117), Args: [4]uint64{0, 0xffffffff, 5}},
			with(base(KindSetID, 117), func(e *Event) { e.IDs = [3]uint32{0, NoID, 5} })},
		{"capset", sensorSysEvent{Hdr: hdr(KindCapset, 126), Ret: -1, Args: [4]uint64{1 << 21, 1<<21 | 1, 0, 0x20080522}},
			with(base(KindCapset, 126), func(e *Event) {
				e.Caps = [3]uint64{1 << 21, 1<<21 | 1, 0}
				e.Result, e.Errno = -1, 1
			})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decode(record(t, tc.rec), boot)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
				t.Errorf("decode (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeMalformed(t *testing.T) {
	bad := func(f func(*sensorSysEventPath2)) []byte {
		r := sysRec(KindRename, 316, 0, [4]uint64{}, []byte("/a\x00"), []byte("/b\x00"))
		f(&r)
		return record(t, r)
	}
	ex := execRec("/bin/sh", "sh\x00", 1, 0)
	ex.ArgsLen = argsLen + 1
	failed := func(f func(*sensorExecFailedEvent)) []byte {
		r := failedExecRec("/x", 0, 0, "x\x00", 1, -2)
		f(&r)
		return record(t, r)
	}
	open := record(t, pathRec(KindOpen, 257, 0, [4]uint64{}, "/x"))
	conn := sysRec(KindConnect, 42, 0, [4]uint64{}, make([]byte, 200), nil)
	for _, tc := range []struct {
		name string
		rec  []byte
	}{
		{"empty", nil},
		{"short header", make([]byte, sizeHdr-1)},
		{"unknown kind", bad(func(r *sensorSysEventPath2) { r.Sys.Hdr.Kind = 0 })},
		{"kind past the last", bad(func(r *sensorSysEventPath2) { r.Sys.Hdr.Kind = uint8(KindFork) + 1 })},
		{"failed exec in a shorter record", bad(func(r *sensorSysEventPath2) { r.Sys.Hdr.Kind = wireExecFailed })},
		{"failed exec filename too long", failed(func(r *sensorExecFailedEvent) { r.Sys.Len1 = pathLen + 1 })},
		{"failed exec argv too long", failed(func(r *sensorExecFailedEvent) { r.Sys.Len2 = argsLen + 1 })},
		{"failed exec cut short", failed(func(*sensorExecFailedEvent) {})[:sizeExecFailed-1]},
		{"short record", open[:sizeSysPath-1]},
		{"buf1 too long", bad(func(r *sensorSysEventPath2) { r.Sys.Len1 = pathLen + 1 })},
		{"buf2 too long", bad(func(r *sensorSysEventPath2) { r.Sys.Len2 = 1 << 31 })},
		{"argv too long", record(t, ex)},
		{"address too long", record(t, conn)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decode(tc.rec, boot); !errors.Is(err, ErrMalformed) {
				t.Errorf("decode = %v, want ErrMalformed", err)
			}
		})
	}
}

func TestOpenIntent(t *testing.T) {
	for _, tc := range []struct {
		flags uint32
		want  Intent
	}{
		{0, IntentRead},
		{oWronly, IntentWrite},
		{oRdwr, IntentRead | IntentWrite},
		{oWronly | oCreat | oTrunc, IntentWrite | IntentCreate | IntentTrunc},
		{oRdwr | oTmpfile, IntentRead | IntentWrite | IntentCreate},
		{0o200000, IntentRead},      // O_DIRECTORY alone
		{oPath | oRdwr | oCreat, 0}, // O_PATH ignores the rest
		{0o3, 0},                    // access mode 3: ioctl only
		{0o2000000 | 0o400000 | oWronly, IntentWrite}, // O_CLOEXEC | O_NOFOLLOW
		{0o200000 | oTrunc, IntentRead | IntentTrunc}, // O_DIRECTORY|O_TRUNC: the kernel refuses; report what was asked
	} {
		if got := OpenIntent(tc.flags); got != tc.want {
			t.Errorf("OpenIntent(%#o) = %s, want %s", tc.flags, got, tc.want)
		}
	}
	if s := (IntentRead | IntentCreate).String(); s != "read|create" {
		t.Errorf("String = %q", s)
	}
	if s := Intent(0).String(); s != "none" {
		t.Errorf("String = %q", s)
	}
	if s := Kind(42).String(); s != "kind(42)" {
		t.Errorf("Kind(42).String() = %q", s)
	}
	if s := KindDenied.String(); s != "denied" {
		t.Errorf("KindDenied.String() = %q", s)
	}
}

// FuzzDecode: the record bytes cross a trust boundary (kernel memory
// written by a program, read by moat), so the decoder must never panic,
// and what it accepts must keep the bounds the records promise.
func FuzzDecode(f *testing.F) {
	for _, r := range []any{
		execRec("/var/task/bootstrap", "/var/task/bootstrap\x00-x\x00", 2, 0),
		sensorExitEvent{Hdr: hdr(KindExit, -1), ExitCode: 0x8b},
		sensorDeniedEvent{Hdr: hdr(KindDenied, 272), Ret: -1},
		connectRec(sockaddrIn6(80, [16]byte{}), 0),
		connectRec(sockaddrUn("\x00abstract"), 0),
		pathRec(KindOpen, 257, 3, [4]uint64{0, oRdwr}, "/etc/passwd"),
		sysRec(KindRename, 316, 0, [4]uint64{}, []byte("/a\x00"), []byte("/b\x00")),
		sensorSysEvent{Hdr: hdr(KindCapset, 126)},
		failedExecRec("/nonexistent/payload", 0xffffffffffffff9c, 0, "payload\x00-x\x00", 2, -2),
		pathRecBytes(KindBind, 49, 0, [4]uint64{5, 16}, sockaddrIn(8080, [4]byte{127, 0, 0, 1})),
		pathRecBytes(KindListen, 50, 0, [4]uint64{5, 128}, nil),
		pathRecBytes(KindAccept, 288, 6, [4]uint64{5, 0x80000}, sockaddrIn6(40000, netip.MustParseAddr("::1").As16())),
		pathRecBytes(KindSendto, 46, 9, [4]uint64{4, 16, 9}, sockaddrIn(53, [4]byte{127, 0, 0, 1})),
		pathRecBytes(KindSendto, 44, 3, [4]uint64{4, 12, 3}, sockaddrUn("\x00abstract")),
		openRec("environ", 3, walked("proc", "7", "environ"), walked("proc", "7")),
		openRec("/etc/shadow", 3, walked("etc", "shadow"), nil),
	} {
		f.Add(record(f, r))
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, rec []byte) {
		e, err := decode(rec, boot)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error not ErrMalformed: %v", err)
			}
			return
		}
		if !e.Kind.valid() {
			t.Fatalf("accepted kind %d", e.Kind)
		}
		// A failed exec decodes as an exec from a record of its own size.
		if min := recordSize[e.Kind]; len(rec) < min && !(rec[offKind] == wireExecFailed && len(rec) >= sizeExecFailed) {
			t.Fatalf("accepted a %s record of %d bytes", e.Kind, len(rec))
		}
		if len(e.Path) > pathLen || len(e.NewPath) > pathLen || len(e.Comm) >= commLen+1 ||
			len(e.Opened) > pathLen+len("…/") || len(e.Dir) > pathLen+len("…/") || len(e.NewDir) > pathLen+len("…/") {
			t.Fatalf("string past its bound: %d %d %d", len(e.Path), len(e.NewPath), len(e.Comm))
		}
		if n := len(strings.Join(e.Argv, "\x00")); n > argsLen {
			t.Fatalf("argv of %d bytes", n)
		}
		for _, v := range e.Env {
			if !slices.ContainsFunc(loaderVars, func(name string) bool { return strings.HasPrefix(v, name) }) {
				t.Fatalf("env variable %q is not a loader variable", v)
			}
		}
		if slices.ContainsFunc([]string{e.Comm, e.NewPath}, func(s string) bool { return strings.IndexByte(s, 0) >= 0 }) {
			t.Fatal("NUL inside a C string")
		}
		if (e.Errno != 0) != (e.Result < 0 && e.Result >= -4095 && e.Kind != KindExit) {
			t.Fatalf("errno %d with result %d", e.Errno, e.Result)
		}
		if e.Addr.IsValid() && e.Family != afInet && e.Family != afInet6 {
			t.Fatalf("address %v for family %d", e.Addr, e.Family)
		}
	})
}
