package main

import (
	"fmt"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The actions that hide a technique from a sensor that records paths and
// names as given, and those of the classes found by shape: a path
// relative to a directory descriptor or to a working directory moved
// into /proc, "..", a symlink to the file, a mode set through a
// descriptor, a preload through the environment of an exec, a storm of
// processes, a decode-and-run line, a sweep for keys, an upload, an
// anonymity proxy, a hidden directory.

// environDirfd opens /proc/self as a directory and then "environ"
// relative to it: the path the call names is only "environ".
func environDirfd(r *recorder, _ event) {
	dir, err := unix.Open("/proc/self", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	r.step("open /proc/self (O_PATH)", err)
	if err != nil {
		return
	}
	defer unix.Close(dir)
	fd, err := unix.Openat(dir, "environ", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err == nil {
		unix.Close(fd)
	}
	r.step("openat(/proc/self, environ)", err)
}

// environCwd moves the working directory into /proc/self, opens
// "environ" there, and moves back.
func environCwd(r *recorder, _ event) {
	back, err := os.Getwd()
	r.step("getwd", err)
	if err != nil {
		return
	}
	r.step("chdir /proc/self", os.Chdir("/proc/self"))
	r.open("environ", os.O_RDONLY)
	r.step("chdir "+back, os.Chdir(back))
}

// shadowSymlink makes /tmp/notes a symlink to /etc/shadow and opens it.
func shadowSymlink(r *recorder, _ event) {
	const link = "/tmp/notes"
	os.Remove(link)
	r.step("symlink /etc/shadow "+link, os.Symlink("/etc/shadow", link))
	r.open(link, os.O_RDONLY)
	r.step("remove "+link, os.Remove(link))
}

// setuidFile creates a file in /tmp and sets its setuid bit through its
// descriptor: the call names no path.
func setuidFile(r *recorder, _ event) {
	const p = "/tmp/.suid-x"
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o700)
	r.step("create "+p, err)
	if err != nil {
		return
	}
	r.step("fchmod 04755", unix.Fchmod(int(f.Fd()), 0o4755))
	f.Close()
	r.step("remove "+p, os.Remove(p))
}

// preload runs true with LD_PRELOAD naming a library that does not
// exist: the loader warns and runs true.
func preload(r *recorder, _ event) {
	err := runEnv([]string{"LD_PRELOAD=/tmp/.libhook.so"}, trueBinary())
	r.step("exec "+trueBinary()+" with LD_PRELOAD=/tmp/.libhook.so", err)
}

// forkStorm starts 150 processes that each sleep for up to five seconds,
// then kills and reaps them all: a fork bomb's accumulation, bounded.
// Each child is a raw fork that sleeps and calls exit_group before it
// runs any Go code.
func forkStorm(r *recorder, _ event) {
	ts := unix.Timespec{Sec: 5}
	var pids []int
	var last error
	for range 150 {
		pid, _, e := unix.RawSyscall(unix.SYS_CLONE, uintptr(unix.SIGCHLD), 0, 0)
		if e != 0 {
			last = e
			break
		}
		if pid == 0 {
			unix.RawSyscall(unix.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&ts)), 0, 0)
			unix.RawSyscall(unix.SYS_EXIT_GROUP, 0, 0, 0)
		}
		pids = append(pids, int(pid))
	}
	for _, pid := range pids {
		unix.Kill(pid, unix.SIGKILL)
		var ws unix.WaitStatus
		if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil {
			last = err
		}
	}
	r.step(fmt.Sprintf("fork 150 children that sleep, then kill them (%d started)", len(pids)), last)
}

// hiddenDir makes a directory named "..." in /tmp and removes it.
func hiddenDir(r *recorder, _ event) {
	p := filepath.Join("/tmp", "...")
	r.step("mkdir "+p, os.Mkdir(p, 0o700))
	r.step("remove "+p, os.Remove(p))
}

// runEnv runs a program with only env for an environment and waits.
func runEnv(env []string, name string, args ...string) error {
	p, err := os.StartProcess(name, append([]string{name}, args...), &os.ProcAttr{Env: env, Files: []*os.File{nil, nil, nil}})
	if err != nil {
		return err
	}
	_, err = p.Wait()
	return err
}
