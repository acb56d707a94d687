package egress

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// netnsRef names the network namespace standing for "the host": -1 is this
// process's own (production); tests pass a namespace of their own so that
// nothing of the real host's network is touched.
type netnsRef int

const processNetns netnsRef = -1

// handle opens a route netlink handle inside the namespace.
func (n netnsRef) handle() (*netlink.Handle, error) {
	ns := netns.None()
	if n != processNetns {
		ns = netns.NsHandle(n)
	}
	return netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
}

// do runs fn on a locked OS thread inside the namespace. A thread that
// cannot return to its original namespace stays locked, so the Go runtime
// discards it instead of reusing it.
func (n netnsRef) do(fn func() error) error {
	if n == processNetns {
		return fn()
	}
	return inNetns(int(n), fn)
}

func inNetns(fd int, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("open own netns: %w", err)
			return
		}
		defer unix.Close(orig)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter netns: %w", err)
			return
		}
		ferr := fn()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("leave netns: %w", err))
			return // the thread stays locked and dies with this goroutine
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// openPidNetns opens the network namespace of process pid.
func openPidNetns(pid int) (int, error) {
	fd, err := unix.Open("/proc/"+strconv.Itoa(pid)+"/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open netns of pid %d: %w", pid, err)
	}
	return fd, nil
}

// sysctl paths of per-interface settings. /proc/sys/net is resolved in the
// network namespace of the thread that opens it, so these run inside do.
func confPath(family int, ifname, key string) string {
	v := "ipv4"
	if family == unix.AF_INET6 {
		v = "ipv6"
	}
	return filepath.Join("/proc/sys/net", v, "conf", ifname, key)
}

func readSysctl(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

func writeSysctl(path, value string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
