package sensor

import (
	"testing"
	"unsafe"
)

// TestLayout compares the decoder's offsets with the Go types bpf2go
// generated from the C structs of bpf/sensor.c, so that a change on one
// side without the other fails here.
func TestLayout(t *testing.T) {
	var (
		h  sensorEventHdr
		ex sensorExecEvent
		xt sensorExitEvent
		sy sensorSysEventPath2
		dn sensorDeniedEvent
	)
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"hdr.kind", unsafe.Offsetof(h.Kind), offKind},
		{"hdr.flags", unsafe.Offsetof(h.Flags), offFlags},
		{"hdr.pid", unsafe.Offsetof(h.Pid), offPID},
		{"hdr.tid", unsafe.Offsetof(h.Tid), offTID},
		{"hdr.ppid", unsafe.Offsetof(h.Ppid), offPPID},
		{"hdr.uid", unsafe.Offsetof(h.Uid), offUID},
		{"hdr.gid", unsafe.Offsetof(h.Gid), offGID},
		{"hdr.time_ns", unsafe.Offsetof(h.TimeNs), offTime},
		{"hdr.cgroup_id", unsafe.Offsetof(h.CgroupId), offCgroup},
		{"hdr.comm", unsafe.Offsetof(h.Comm), offComm},
		{"len(hdr.comm)", unsafe.Sizeof(h.Comm), commLen},
		{"hdr.nr", unsafe.Offsetof(h.Nr), offNr},
		{"sizeof(hdr)", unsafe.Sizeof(h), sizeHdr},
		{"exec.argc", unsafe.Offsetof(ex.Argc), offExecArgc},
		{"exec.args_len", unsafe.Offsetof(ex.ArgsLen), offExecArgsLen},
		{"exec.filename_len", unsafe.Offsetof(ex.FilenameLen), offExecFilenameLen},
		{"exec.filename", unsafe.Offsetof(ex.Filename), offExecFilename},
		{"len(exec.filename)", unsafe.Sizeof(ex.Filename), pathLen},
		{"exec.args", unsafe.Offsetof(ex.Args), offExecArgs},
		{"len(exec.args)", unsafe.Sizeof(ex.Args), argsLen},
		{"sizeof(exec)", unsafe.Sizeof(ex), sizeExec},
		{"exit.exit_code", unsafe.Offsetof(xt.ExitCode), offExitCode},
		{"sizeof(exit)", unsafe.Sizeof(xt), sizeExit},
		{"sys.ret", unsafe.Offsetof(sy.Sys.Ret), offSysRet},
		{"sys.args", unsafe.Offsetof(sy.Sys.Args), offSysArgs},
		{"sys.len1", unsafe.Offsetof(sy.Sys.Len1), offSysLen1},
		{"sys.len2", unsafe.Offsetof(sy.Sys.Len2), offSysLen2},
		{"sizeof(sys)", unsafe.Sizeof(sy.Sys), sizeSys},
		{"sys.buf1", unsafe.Offsetof(sy.Buf1), offSysBuf1},
		{"sys.buf2", unsafe.Offsetof(sy.Buf2), offSysBuf2},
		{"sizeof(sys_event_path)", unsafe.Sizeof(sensorSysEventPath{}), sizeSysPath},
		{"sizeof(sys_event_path2)", unsafe.Sizeof(sy), sizeSysPth2},
		{"denied.ret", unsafe.Offsetof(dn.Ret), offDeniedRet},
		{"sizeof(denied)", unsafe.Sizeof(dn), sizeDenied},
		{"ADDR_LEN <= PATH_LEN", addrLen, min(addrLen, unsafe.Sizeof(sy.Buf1))},
	} {
		if c.got != c.want {
			t.Errorf("%s: C layout %d, decoder %d", c.name, c.got, c.want)
		}
	}
	for _, k := range []struct {
		c sensorEventKind
		g Kind
	}{
		{sensorEventKindEV_EXEC, KindExec},
		{sensorEventKindEV_EXIT, KindExit},
		{sensorEventKindEV_CONNECT, KindConnect},
		{sensorEventKindEV_OPEN, KindOpen},
		{sensorEventKindEV_UNLINK, KindUnlink},
		{sensorEventKindEV_RENAME, KindRename},
		{sensorEventKindEV_CHMOD, KindChmod},
		{sensorEventKindEV_SETID, KindSetID},
		{sensorEventKindEV_CAPSET, KindCapset},
		{sensorEventKindEV_DENIED, KindDenied},
	} {
		if uint32(k.c) != uint32(k.g) {
			t.Errorf("kind %s: C %d, Go %d", k.g, k.c, k.g)
		}
	}
}
