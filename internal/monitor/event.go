package monitor

import (
	"path"
	"strconv"
	"syscall"

	"moat.dev/moat/internal/detect"
	"moat.dev/moat/internal/sensor"
)

// fromSensor turns a sensor record into the attributed event rules,
// profiles and records are built from.
func fromSensor(ev *sensor.Event, a detect.Attribution) detect.Event {
	e := detect.Event{
		Time:       ev.Time,
		Kind:       ev.Kind.String(),
		Function:   a.Function,
		Version:    a.Version,
		Instance:   a.Instance,
		RequestID:  a.RequestID,
		Phase:      a.Phase,
		Runtime:    a.Runtime,
		Exe:        a.Exe,
		PID:        ev.PID,
		PPID:       ev.PPID,
		UID:        ev.UID,
		Comm:       ev.Comm,
		Result:     ev.Result,
		Signal:     ev.Signal,
		Path:       ev.Path,
		NewPath:    ev.NewPath,
		Argv:       ev.Argv,
		Flags:      ev.Flags,
		Mode:       ev.Mode,
		Truncated:  ev.Truncated,
		ReadAtExit: ev.ReadAtExit,
		Killed:     ev.Killed,
	}
	if ev.Kind != sensor.KindConnect && ev.Kind != sensor.KindBind && ev.Kind != sensor.KindAccept && ev.Kind != sensor.KindSendto {
		// (a unix socket's address is a path too, but one the socket
		// layer resolves; it stays as given)
		dirfd := ev.Dirfd
		if ev.Kind == sensor.KindExec && ev.Syscall < 0 {
			dirfd = atFdcwd // a successful exec's filename: as execve resolved it
		}
		if p := canonical(e.Path, ev.Dir, dirfd); p != e.Path {
			e.Asked, e.Path = e.Path, p
		}
		if p := canonical(e.NewPath, ev.NewDir, ev.NewDirfd); p != e.NewPath {
			e.AskedNew, e.NewPath = e.NewPath, p
		}
		switch {
		case e.Path == "" && ev.Opened != "":
			e.Path = ev.Opened // a change by descriptor: the file it changed
		case ev.Opened != e.Path:
			e.Opened = ev.Opened
		}
	}
	if ev.Syscall >= 0 && ev.Kind != sensor.KindExec && ev.Kind != sensor.KindExit {
		e.Syscall = detect.SyscallName(ev.Syscall)
	}
	if ev.Errno > 0 && ev.Kind != sensor.KindExit {
		e.Errno = detect.ErrnoName(ev.Errno)
	}
	switch ev.Kind {
	case sensor.KindExec:
		e.Exe = e.Path
		e.ExeName, e.Fileless, e.Env = ev.ExeName, ev.Fileless, ev.Env
	case sensor.KindOpen:
		e.Intent = intents(ev.Intent)
	case sensor.KindConnect, sensor.KindBind, sensor.KindAccept, sensor.KindSendto:
		switch ev.Family {
		case syscall.AF_INET:
			e.Family = "inet"
		case syscall.AF_INET6:
			e.Family = "inet6"
		case syscall.AF_UNIX:
			e.Family = "unix"
			e.Addr = ev.Path
		default:
			e.Family = strconv.Itoa(int(ev.Family))
		}
		if ev.Addr.IsValid() {
			e.Addr = ev.Addr.Addr().Unmap().String()
			e.Port = int(ev.Addr.Port())
		}
		if ev.Kind == sensor.KindAccept && ev.Family == 0 {
			e.Family = "" // the caller did not ask for the peer
		}
	case sensor.KindSymlink:
		e.Target = ev.Target
	case sensor.KindSetName:
		e.Name = ev.Name
	case sensor.KindTruncate, sensor.KindUtimes, sensor.KindChmod, sensor.KindChown, sensor.KindMknod:
		if ev.Path == "" {
			e.FD = ev.FD // a change by descriptor (Path: its file, when the sensor walked it)
		}
		e.Length, e.Dev, e.TimesSet = ev.Length, ev.Dev, ev.TimesSet
		if ev.Kind == sensor.KindChown {
			e.IDs = idList(ev.IDs[:2])
		}
	case sensor.KindSetID:
		for _, id := range ev.IDs {
			if id == sensor.NoID {
				e.IDs = append(e.IDs, -1)
			} else {
				e.IDs = append(e.IDs, int64(id))
			}
		}
	case sensor.KindCapset:
		e.Caps = ev.Caps[:]
	}
	return e
}

func intents(in sensor.Intent) []string {
	var out []string
	for _, x := range []struct {
		bit  sensor.Intent
		name string
	}{{sensor.IntentRead, "read"}, {sensor.IntentWrite, "write"}, {sensor.IntentCreate, "create"}, {sensor.IntentTrunc, "trunc"}} {
		if in&x.bit != 0 {
			out = append(out, x.name)
		}
	}
	return out
}

// idList is ids as events carry them: -1 for an id left unchanged.
func idList(ids []uint32) []int64 {
	out := make([]int64, len(ids))
	for i, id := range ids {
		if id == sensor.NoID {
			out[i] = -1
		} else {
			out[i] = int64(id)
		}
	}
	return out
}

// atFdcwd is AT_FDCWD: a path relative to the working directory.
const atFdcwd = -100

// workDir is the working directory of every function's processes.
const workDir = "/var/task"

// canonical makes p absolute and clean where it can be placed: an absolute
// path is cleaned; a relative one is joined to dir, the directory the
// sensor found it relative to, or, when the sensor could not walk that
// one, to workDir when dirfd is AT_FDCWD; a path relative to another
// descriptor the sensor could not walk, or empty, stays as it is. The
// cleaning is lexical: a symlink in p is not followed (the file the
// kernel opened is the event's Opened).
func canonical(p, dir string, dirfd int) string {
	switch {
	case p == "":
		return p
	case path.IsAbs(p):
		return path.Clean(p)
	case dir != "":
		return path.Join(dir, p)
	case dirfd == atFdcwd:
		return path.Join(workDir, p)
	}
	return p
}
