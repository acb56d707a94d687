package sensor

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// ErrMalformed is returned (wrapped) by decode for a record that does not
// have the layout of its kind. The kernel never writes one; a malformed
// record means a mismatch between the BPF object and this decoder.
var ErrMalformed = errors.New("malformed sensor record")

// Record layouts (bpf/sensor.c). The BPF side writes them in host byte
// order; layout_test.go checks these offsets against the Go types bpf2go
// generates from the C structs.
const (
	// struct event_hdr
	offKind     = 0
	offFlags    = 1
	offPID      = 4
	offTID      = 8
	offPPID     = 12
	offUID      = 16
	offGID      = 20
	offTime     = 24
	offCgroup   = 32
	offComm     = 40
	commLen     = 16
	offNr       = 56
	sizeHdr     = 64
	pathLen     = 256 // PATH_LEN
	argsLen     = 512 // ARGS_LEN
	addrLen     = 128 // ADDR_LEN
	offExecArgc = sizeHdr
	// struct exec_event
	offExecArgsLen     = sizeHdr + 4
	offExecFilenameLen = sizeHdr + 8
	offExecFilename    = sizeHdr + 16
	offExecArgs        = offExecFilename + pathLen
	offExecNlink       = offExecArgs + argsLen
	offExecNameLen     = offExecNlink + 4
	offExecName        = offExecNameLen + 4
	nameLen            = 64  // NAME_LEN
	envLen             = 256 // ENV_LEN
	offExecWhereLen    = offExecName + nameLen
	offExecWhereInfo   = offExecWhereLen + 2
	offExecEnvInfo     = offExecWhereInfo + 1
	offExecEnvLen      = offExecEnvInfo + 1
	offExecWhere       = offExecEnvLen + 4
	offExecEnv         = offExecWhere + pathLen
	sizeExec           = offExecEnv + envLen
	// struct exit_event
	offExitCode = sizeHdr
	sizeExit    = sizeHdr + 8
	// struct sys_event, sys_event_path, sys_event_path2
	offSysRet   = sizeHdr
	offSysArgs  = sizeHdr + 8
	offSysLen1  = offSysArgs + 32
	offSysLen2  = offSysLen1 + 4
	offSysWLen1 = offSysLen2 + 4
	offSysWLen2 = offSysWLen1 + 2
	offSysWInf1 = offSysWLen2 + 2
	offSysWInf2 = offSysWInf1 + 1
	sizeSys     = offSysWInf2 + 3
	offSysBuf1  = sizeSys
	offSysWhere = offSysBuf1 + pathLen // sys_event_path's where1
	sizeSysPath = offSysWhere + pathLen
	offSysBuf2  = offSysBuf1 + pathLen // sys_event_path2's buf2, where1, where2
	offSys2Wh1  = offSysBuf2 + pathLen
	offSys2Wh2  = offSys2Wh1 + pathLen
	sizeSysPth2 = offSys2Wh2 + pathLen
	// struct exec_failed_event: a sys_event, then the filename and argv,
	// the loader variables and the directory of a relative filename
	offFailedFilename = sizeSys
	offFailedArgs     = offFailedFilename + pathLen
	offFailedEnvLen   = offFailedArgs + argsLen
	offFailedEnvInfo  = offFailedEnvLen + 4
	offFailedWhere    = offFailedEnvInfo + 4
	offFailedEnv      = offFailedWhere + pathLen
	sizeExecFailed    = offFailedEnv + envLen
	// struct denied_event
	offDeniedRet = sizeHdr
	sizeDenied   = sizeHdr + 8
)

// event_hdr.flags
const (
	flagTrunc1 = 1 << iota
	flagTrunc2
	flagFault1
	flagFault2
	flagKilled
	flagLate
	flagFileless
)

// What a where buffer holds (WI_*), and env_info (EI_*).
const (
	whereFile  = 1
	whereDir   = 2
	whereTrunc = 4
	envTrunc   = 1
	envFault   = 2
)

// Address families (the same on every Linux architecture).
const (
	afUnix  = 1
	afInet  = 2
	afInet6 = 10
)

// wireExecFailed is the record kind of a failed execve/execveat
// (EV_EXEC_FAILED), decoded as a KindExec with a negative Result.
const wireExecFailed = 11

// recordSize is the size of each kind's record.
var recordSize = [...]int{
	KindExec:     sizeExec,
	KindExit:     sizeExit,
	KindConnect:  sizeSysPath,
	KindOpen:     sizeSysPath,
	KindUnlink:   sizeSysPath,
	KindRename:   sizeSysPth2,
	KindChmod:    sizeSysPath,
	KindSetID:    sizeSys,
	KindCapset:   sizeSys,
	KindDenied:   sizeDenied,
	KindBind:     sizeSysPath,
	KindListen:   sizeSysPath,
	KindAccept:   sizeSysPath,
	KindSendto:   sizeSysPath,
	KindMkdir:    sizeSysPath,
	KindLink:     sizeSysPth2,
	KindSymlink:  sizeSysPth2,
	KindTruncate: sizeSysPath,
	KindUtimes:   sizeSysPath,
	KindMknod:    sizeSysPath,
	KindChown:    sizeSysPath,
	KindSetName:  sizeSysPath,
	KindFork:     sizeSys,
}

var ne = binary.NativeEndian

// decode turns one ring buffer record into an Event. boot is the wall
// clock time of CLOCK_BOOTTIME zero. It is a pure function of its input:
// the record comes from the kernel, but its bytes are written by a
// program moat loaded, so decode checks every length and offset and
// returns ErrMalformed rather than trusting one. Instance is left zero.
func decode(rec []byte, boot time.Time) (Event, error) {
	if len(rec) < sizeHdr {
		return Event{}, fmt.Errorf("%w: %d bytes, want at least %d", ErrMalformed, len(rec), sizeHdr)
	}
	k := Kind(rec[offKind])
	failedExec := rec[offKind] == wireExecFailed
	switch {
	case failedExec:
		if len(rec) < sizeExecFailed {
			return Event{}, fmt.Errorf("%w: failed exec record of %d bytes, want %d", ErrMalformed, len(rec), sizeExecFailed)
		}
		k = KindExec
	case !k.valid():
		return Event{}, fmt.Errorf("%w: unknown kind %d", ErrMalformed, rec[offKind])
	case len(rec) < recordSize[k]:
		return Event{}, fmt.Errorf("%w: %s record of %d bytes, want %d", ErrMalformed, k, len(rec), recordSize[k])
	}
	flags := rec[offFlags]
	e := Event{
		Kind:       k,
		Time:       boot.Add(time.Duration(ne.Uint64(rec[offTime:]))),
		CgroupID:   ne.Uint64(rec[offCgroup:]),
		PID:        int(ne.Uint32(rec[offPID:])),
		TID:        int(ne.Uint32(rec[offTID:])),
		PPID:       int(ne.Uint32(rec[offPPID:])),
		UID:        ne.Uint32(rec[offUID:]),
		GID:        ne.Uint32(rec[offGID:]),
		Comm:       cstring(rec[offComm : offComm+commLen]),
		Syscall:    int(int32(ne.Uint32(rec[offNr:]))),
		Truncated:  flags&(flagTrunc1|flagTrunc2) != 0,
		Faulted:    flags&(flagFault1|flagFault2) != 0,
		Killed:     flags&flagKilled != 0,
		ReadAtExit: flags&flagLate != 0,
	}

	if failedExec {
		return decodeExecFailed(rec, e)
	}
	switch k {
	case KindExec:
		return decodeExec(rec, e)
	case KindExit:
		code := int32(ne.Uint32(rec[offExitCode:]))
		e.Signal = int(code & 0x7f)
		e.Result = int(code>>8) & 0xff
		return e, nil
	case KindDenied:
		e.setResult(int64(ne.Uint64(rec[offDeniedRet:])))
		return e, nil
	}

	// A syscall record.
	e.setResult(int64(ne.Uint64(rec[offSysRet:])))
	var args [4]uint64
	for i := range args {
		args[i] = ne.Uint64(rec[offSysArgs+8*i:])
	}
	len1 := ne.Uint32(rec[offSysLen1:])
	len2 := ne.Uint32(rec[offSysLen2:])
	var buf1, buf2 []byte
	var where1, where2 place
	// Two paths, or an open's record that places what was asked as well
	// as what was opened (a relative path: where2 is its directory).
	two := recordSize[k] >= sizeSysPth2 || (k == KindOpen && len(rec) >= sizeSysPth2)
	if recordSize[k] >= sizeSysPath {
		if len1 > pathLen {
			return Event{}, fmt.Errorf("%w: %s buffer length %d", ErrMalformed, k, len1)
		}
		buf1 = rec[offSysBuf1 : offSysBuf1+int(len1)]
		off := offSysWhere
		if two {
			off = offSys2Wh1
		}
		var err error
		if where1, err = decodeWhere(rec, off, offSysWLen1, offSysWInf1); err != nil {
			return Event{}, err
		}
	}
	if two {
		if len2 > pathLen {
			return Event{}, fmt.Errorf("%w: %s second buffer length %d", ErrMalformed, k, len2)
		}
		buf2 = rec[offSysBuf2 : offSysBuf2+int(len2)]
		var err error
		if where2, err = decodeWhere(rec, offSys2Wh2, offSysWLen2, offSysWInf2); err != nil {
			return Event{}, err
		}
	}

	switch k {
	case KindConnect:
		// args: fd, addrlen; buf1: the sockaddr (at most ADDR_LEN bytes).
		if len1 > addrLen {
			return Event{}, fmt.Errorf("%w: address length %d", ErrMalformed, len1)
		}
		e.FD = int(int32(args[0]))
		decodeSockaddr(buf1, &e)
	case KindBind, KindSendto:
		// args: fd, addrlen (, length); buf1: the sockaddr
		if len1 > addrLen {
			return Event{}, fmt.Errorf("%w: address length %d", ErrMalformed, len1)
		}
		e.FD = int(int32(args[0]))
		decodeSockaddr(buf1, &e)
	case KindListen:
		// args: fd, backlog
		e.FD = int(int32(args[0]))
		e.Backlog = int(int32(args[1]))
	case KindAccept:
		// args: fd, flags; buf1: the peer, when the caller asked for it
		if len1 > addrLen {
			return Event{}, fmt.Errorf("%w: address length %d", ErrMalformed, len1)
		}
		e.FD = int(int32(args[0]))
		e.Flags = uint32(args[1])
		decodeSockaddr(buf1, &e)
	case KindOpen:
		// args: dirfd, flags, mode, resolve
		e.Dirfd = int(int32(args[0]))
		e.Flags = uint32(args[1])
		e.Mode = uint32(args[2])
		e.Intent = OpenIntent(e.Flags)
		e.Path = cstring(buf1)
	case KindUnlink:
		// args: dirfd, flags
		e.Dirfd = int(int32(args[0]))
		e.Flags = uint32(args[1])
		e.Path = cstring(buf1)
	case KindRename:
		// args: old dirfd, new dirfd, flags
		e.Dirfd = int(int32(args[0]))
		e.NewDirfd = int(int32(args[1]))
		e.Flags = uint32(args[2])
		e.Path = cstring(buf1)
		e.NewPath = cstring(buf2)
	case KindChmod:
		// args: dirfd, mode, flags; fchmod: fd, mode, 0, 1
		e.Dirfd = int(int32(args[0]))
		e.Mode = uint32(args[1])
		e.Flags = uint32(args[2])
		e.Path = cstring(buf1)
		if args[3] == 1 {
			e.FD, e.Dirfd = e.Dirfd, 0
		}
	case KindMkdir:
		// args: dirfd, mode
		e.Dirfd = int(int32(args[0]))
		e.Mode = uint32(args[1])
		e.Path = cstring(buf1)
	case KindLink:
		// args: old dirfd, new dirfd, flags
		e.Dirfd = int(int32(args[0]))
		e.NewDirfd = int(int32(args[1]))
		e.Flags = uint32(args[2])
		e.Path = cstring(buf1)
		e.NewPath = cstring(buf2)
	case KindSymlink:
		// args: new dirfd; buf1: the target, buf2: the link
		e.NewDirfd = int(int32(args[0]))
		e.Target = cstring(buf1)
		e.NewPath = cstring(buf2)
	case KindTruncate:
		// args: dirfd or fd, length, 1 for a descriptor
		e.Length = int64(args[1])
		if args[2] == 1 {
			e.FD = int(int32(args[0]))
		} else {
			e.Dirfd = int(int32(args[0]))
			e.Path = cstring(buf1)
		}
	case KindUtimes:
		// args: dirfd or fd, flags, times given, 1 for a descriptor
		e.Flags = uint32(args[1])
		e.TimesSet = args[2] != 0
		if args[3] == 1 {
			e.FD = int(int32(args[0]))
		} else {
			e.Dirfd = int(int32(args[0]))
			e.Path = cstring(buf1)
		}
	case KindMknod:
		// args: dirfd, mode, dev
		e.Dirfd = int(int32(args[0]))
		e.Mode = uint32(args[1])
		e.Dev = args[2]
		e.Path = cstring(buf1)
	case KindSetName:
		e.Name = cstring(buf1)
		if len(e.Name) > commLen-1 {
			e.Name = e.Name[:commLen-1] // what the kernel keeps
		}
	case KindChown:
		// args: dirfd or fd, uid, gid, flags | 1 << 32 for a descriptor
		e.IDs = [3]uint32{uint32(args[1]), uint32(args[2]), NoID}
		e.Flags = uint32(args[3])
		if args[3]>>32 == 1 {
			e.FD = int(int32(args[0]))
		} else {
			e.Dirfd = int(int32(args[0]))
			e.Path = cstring(buf1)
		}
	case KindFork:
		// args: the clone flags (fork: SIGCHLD; vfork: CLONE_VM|CLONE_VFORK|SIGCHLD)
		e.Flags = uint32(args[0])
	case KindSetID:
		// args: up to three ids in argument order
		e.IDs = [3]uint32{uint32(args[0]), uint32(args[1]), uint32(args[2])}
	case KindCapset:
		// args: effective, permitted, inheritable, version | pid << 32
		e.Caps = [3]uint64{args[0], args[1], args[2]}
	}
	// where1 places Path (or is the file an open opened, or the one a
	// change by descriptor changed); where2 places NewPath.
	where1.set(&e.Opened, &e.Dir, &e.Truncated)
	if k == KindOpen {
		where2.set(nil, &e.Dir, &e.Truncated)
	} else {
		where2.set(nil, &e.NewDir, &e.Truncated)
	}
	return e, nil
}

// place is a decoded where buffer.
type place struct {
	path string
	info uint8
}

// set stores the path where it belongs: file for the file itself (nil:
// not expected here), dir for the directory of a relative path.
func (p place) set(file, dir *string, trunc *bool) {
	if p.info&(whereFile|whereDir) == 0 {
		return
	}
	if p.info&whereTrunc != 0 {
		*trunc = true
	}
	switch {
	case p.info&whereFile != 0 && file != nil:
		*file = p.path
	case p.info&whereDir != 0:
		*dir = p.path
	}
}

// decodeWhere reads the where buffer at off, of the length at offLen and
// the WI_* bits at offInfo: the components of a path the kernel walked up
// to the instance's root, the last one first, each NUL-terminated. It
// returns the path absolute, or, when the walk stopped short, starting
// with "…/" and the components that were found.
func decodeWhere(rec []byte, off, offLen, offInfo int) (place, error) {
	n := int(ne.Uint16(rec[offLen:]))
	info := rec[offInfo]
	if n > pathLen {
		return place{}, fmt.Errorf("%w: where length %d", ErrMalformed, n)
	}
	if info&(whereFile|whereDir) == 0 {
		return place{}, nil
	}
	return place{path: joinWalk(rec[off:off+n], info&whereTrunc != 0), info: info}, nil
}

// joinWalk turns a walk's components (the last first) into a path.
func joinWalk(b []byte, partial bool) string {
	b = bytes.TrimSuffix(b, []byte{0})
	var parts []string
	if len(b) > 0 {
		parts = strings.Split(string(b), "\x00")
	}
	slices.Reverse(parts)
	p := "/" + strings.Join(parts, "/")
	if partial {
		p = "…" + p
	}
	return p
}

func decodeExec(rec []byte, e Event) (Event, error) {
	e.Syscall = -1
	e.Argc = int(ne.Uint32(rec[offExecArgc:]))
	nArgs := ne.Uint32(rec[offExecArgsLen:])
	nFile := ne.Uint32(rec[offExecFilenameLen:])
	if nArgs > argsLen || nFile > pathLen {
		return Event{}, fmt.Errorf("%w: exec lengths %d, %d", ErrMalformed, nFile, nArgs)
	}
	e.Path = cstring(rec[offExecFilename : offExecFilename+int(nFile)])
	e.Argv = splitArgs(rec[offExecArgs : offExecArgs+int(nArgs)])
	nName := ne.Uint32(rec[offExecNameLen:])
	if nName > nameLen {
		return Event{}, fmt.Errorf("%w: exec name length %d", ErrMalformed, nName)
	}
	e.ExeName = cstring(rec[offExecName : offExecName+int(nName)])
	e.Fileless = rec[offFlags]&flagFileless != 0
	where, err := decodeWhere(rec, offExecWhere, offExecWhereLen, offExecWhereInfo)
	if err != nil {
		return Event{}, err
	}
	where.set(&e.Opened, &e.Dir, &e.Truncated)
	if err := e.decodeEnv(rec, offExecEnv, int(ne.Uint32(rec[offExecEnvLen:])), rec[offExecEnvInfo]); err != nil {
		return Event{}, err
	}
	return e, nil
}

// loaderVars are the environment variables of an exec the sensor keeps:
// those that make the dynamic loader load code the program did not ask
// for.
var loaderVars = []string{"LD_PRELOAD=", "LD_LIBRARY_PATH=", "LD_AUDIT="}

// decodeEnv fills Env from an exec's env buffer of n bytes at off: the
// strings the kernel side kept by their first eight bytes, of which only
// the loader variables themselves are reported.
func (e *Event) decodeEnv(rec []byte, off, n int, info uint8) error {
	if n > envLen {
		return fmt.Errorf("%w: exec env length %d", ErrMalformed, n)
	}
	for _, v := range splitArgs(rec[off : off+n]) {
		for _, name := range loaderVars {
			if strings.HasPrefix(v, name) {
				e.Env = append(e.Env, v)
				break
			}
		}
	}
	if info&envTrunc != 0 {
		e.Truncated = true
	}
	if info&envFault != 0 {
		e.Faulted = true
	}
	return nil
}

// decodeExecFailed decodes an exec_failed_event: sys.args = dirfd, flags,
// argc; len1 and len2 the bytes of filename and args filled.
func decodeExecFailed(rec []byte, e Event) (Event, error) {
	e.setResult(int64(ne.Uint64(rec[offSysRet:])))
	nFile := ne.Uint32(rec[offSysLen1:])
	nArgs := ne.Uint32(rec[offSysLen2:])
	if nFile > pathLen || nArgs > argsLen {
		return Event{}, fmt.Errorf("%w: failed exec lengths %d, %d", ErrMalformed, nFile, nArgs)
	}
	e.Dirfd = int(int32(ne.Uint64(rec[offSysArgs:])))
	e.Flags = uint32(ne.Uint64(rec[offSysArgs+8:]))
	e.Argc = int(uint32(ne.Uint64(rec[offSysArgs+16:])))
	e.Path = cstring(rec[offFailedFilename : offFailedFilename+int(nFile)])
	e.Argv = splitArgs(rec[offFailedArgs : offFailedArgs+int(nArgs)])
	where, err := decodeWhere(rec, offFailedWhere, offSysWLen1, offSysWInf1)
	if err != nil {
		return Event{}, err
	}
	where.set(&e.Opened, &e.Dir, &e.Truncated)
	if err := e.decodeEnv(rec, offFailedEnv, int(ne.Uint32(rec[offFailedEnvLen:])), uint8(ne.Uint32(rec[offFailedEnvInfo:]))); err != nil {
		return Event{}, err
	}
	return e, nil
}

// splitArgs splits argv as the records carry it: NUL-separated strings,
// the last of which may be unterminated when argv was cut.
func splitArgs(b []byte) []string {
	b = bytes.TrimSuffix(b, []byte{0})
	if len(b) == 0 {
		return nil
	}
	var argv []string
	for a := range bytes.SplitSeq(b, []byte{0}) {
		argv = append(argv, string(a))
	}
	return argv
}

// decodeSockaddr fills Family and Addr (or Path, for AF_UNIX) from a
// struct sockaddr of len(b) bytes as the caller passed it.
func decodeSockaddr(b []byte, e *Event) {
	if len(b) < 2 {
		return
	}
	e.Family = ne.Uint16(b)
	switch e.Family {
	case afInet:
		// struct sockaddr_in: family, port (big endian), address
		if len(b) >= 8 {
			port := binary.BigEndian.Uint16(b[2:])
			e.Addr = netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[4:8])), port)
		}
	case afInet6:
		// struct sockaddr_in6: family, port, flowinfo, address, scope id
		if len(b) >= 24 {
			port := binary.BigEndian.Uint16(b[2:])
			e.Addr = netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[8:24])), port)
		}
	case afUnix:
		// struct sockaddr_un: family, path; an abstract name starts
		// with NUL and is as long as the address length says.
		p := b[2:]
		if len(p) > 0 && p[0] == 0 {
			e.Path = "@" + string(bytes.TrimRight(p[1:], "\x00"))
		} else {
			e.Path = cstring(p)
		}
	}
}

func (e *Event) setResult(ret int64) {
	e.Result = int(ret)
	if ret < 0 && ret >= -4095 {
		e.Errno = int(-ret)
	}
}

// cstring returns b up to its first NUL.
func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}
