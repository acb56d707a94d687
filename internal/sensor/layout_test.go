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
		xf sensorExecFailedEvent
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
		{"exec.nlink", unsafe.Offsetof(ex.Nlink), offExecNlink},
		{"exec.name_len", unsafe.Offsetof(ex.NameLen), offExecNameLen},
		{"exec.name", unsafe.Offsetof(ex.Name), offExecName},
		{"len(exec.args)", unsafe.Sizeof(ex.Args), argsLen},
		{"len(exec.name)", unsafe.Sizeof(ex.Name), nameLen},
		{"exec.where_len", unsafe.Offsetof(ex.WhereLen), offExecWhereLen},
		{"exec.where_info", unsafe.Offsetof(ex.WhereInfo), offExecWhereInfo},
		{"exec.env_info", unsafe.Offsetof(ex.EnvInfo), offExecEnvInfo},
		{"exec.env_len", unsafe.Offsetof(ex.EnvLen), offExecEnvLen},
		{"exec.where", unsafe.Offsetof(ex.Where), offExecWhere},
		{"len(exec.where)", unsafe.Sizeof(ex.Where), pathLen},
		{"exec.env", unsafe.Offsetof(ex.Env), offExecEnv},
		{"len(exec.env)", unsafe.Sizeof(ex.Env), envLen},
		{"sizeof(exec)", unsafe.Sizeof(ex), sizeExec},
		{"exec_failed.sys.ret", unsafe.Offsetof(xf.Sys) + unsafe.Offsetof(xf.Sys.Ret), offSysRet},
		{"exec_failed.sys.args", unsafe.Offsetof(xf.Sys) + unsafe.Offsetof(xf.Sys.Args), offSysArgs},
		{"exec_failed.sys.len1", unsafe.Offsetof(xf.Sys) + unsafe.Offsetof(xf.Sys.Len1), offSysLen1},
		{"exec_failed.sys.len2", unsafe.Offsetof(xf.Sys) + unsafe.Offsetof(xf.Sys.Len2), offSysLen2},
		{"exec_failed.filename", unsafe.Offsetof(xf.Filename), offFailedFilename},
		{"len(exec_failed.filename)", unsafe.Sizeof(xf.Filename), pathLen},
		{"exec_failed.args", unsafe.Offsetof(xf.Args), offFailedArgs},
		{"len(exec_failed.args)", unsafe.Sizeof(xf.Args), argsLen},
		{"exec_failed.env_len", unsafe.Offsetof(xf.EnvLen), offFailedEnvLen},
		{"exec_failed.env_info", unsafe.Offsetof(xf.EnvInfo), offFailedEnvInfo},
		{"exec_failed.where1", unsafe.Offsetof(xf.Where1), offFailedWhere},
		{"exec_failed.env", unsafe.Offsetof(xf.Env), offFailedEnv},
		{"len(exec_failed.env)", unsafe.Sizeof(xf.Env), envLen},
		{"sizeof(exec_failed)", unsafe.Sizeof(xf), sizeExecFailed},
		{"exit.exit_code", unsafe.Offsetof(xt.ExitCode), offExitCode},
		{"sizeof(exit)", unsafe.Sizeof(xt), sizeExit},
		{"sys.ret", unsafe.Offsetof(sy.Sys.Ret), offSysRet},
		{"sys.args", unsafe.Offsetof(sy.Sys.Args), offSysArgs},
		{"sys.len1", unsafe.Offsetof(sy.Sys.Len1), offSysLen1},
		{"sys.len2", unsafe.Offsetof(sy.Sys.Len2), offSysLen2},
		{"sys.where_len1", unsafe.Offsetof(sy.Sys.WhereLen1), offSysWLen1},
		{"sys.where_len2", unsafe.Offsetof(sy.Sys.WhereLen2), offSysWLen2},
		{"sys.where_info1", unsafe.Offsetof(sy.Sys.WhereInfo1), offSysWInf1},
		{"sys.where_info2", unsafe.Offsetof(sy.Sys.WhereInfo2), offSysWInf2},
		{"sizeof(sys)", unsafe.Sizeof(sy.Sys), sizeSys},
		{"sys.buf1", unsafe.Offsetof(sy.Buf1), offSysBuf1},
		{"sys.buf2", unsafe.Offsetof(sy.Buf2), offSysBuf2},
		{"sys_event_path2.where1", unsafe.Offsetof(sy.Where1), offSys2Wh1},
		{"sys_event_path2.where2", unsafe.Offsetof(sy.Where2), offSys2Wh2},
		{"sys_event_path.where1", unsafe.Offsetof(sensorSysEventPath{}.Where1), offSysWhere},
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
		{sensorEventKindEV_BIND, KindBind},
		{sensorEventKindEV_LISTEN, KindListen},
		{sensorEventKindEV_ACCEPT, KindAccept},
		{sensorEventKindEV_SENDTO, KindSendto},
		{sensorEventKindEV_MKDIR, KindMkdir},
		{sensorEventKindEV_LINK, KindLink},
		{sensorEventKindEV_SYMLINK, KindSymlink},
		{sensorEventKindEV_TRUNCATE, KindTruncate},
		{sensorEventKindEV_UTIMES, KindUtimes},
		{sensorEventKindEV_MKNOD, KindMknod},
		{sensorEventKindEV_CHOWN, KindChown},
		{sensorEventKindEV_SETNAME, KindSetName},
		{sensorEventKindEV_FORK, KindFork},
	} {
		if uint32(k.c) != uint32(k.g) {
			t.Errorf("kind %s: C %d, Go %d", k.g, k.c, k.g)
		}
	}
	if sensorEventKindEV_EXEC_FAILED != wireExecFailed || Kind(wireExecFailed).valid() {
		t.Errorf("EV_EXEC_FAILED: C %d, decoder %d (and not a Kind of its own)", sensorEventKindEV_EXEC_FAILED, wireExecFailed)
	}
}
