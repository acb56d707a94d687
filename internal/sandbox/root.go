package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// newRoot is where the instance's root is assembled, inside the instance's
// own mount namespace (the host's /tmp is untouched: the mount is private).
const newRoot = "/tmp"

// hostDirs are bound read-only into every instance: the system a Lambda
// runtime image provides (shell, libc, curl, CA certificates).
var hostDirs = []string{"/usr"}

// topLinks are the merged-/usr links; where the host has a directory
// instead, it is bound read-only.
var topLinks = []string{"/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"}

// hostEtc are the files of /etc a runtime needs, bound read-only if present.
var hostEtc = []string{"/etc/ssl", "/etc/ca-certificates", "/etc/pki", "/etc/ld.so.cache", "/etc/alternatives", "/etc/localtime", "/etc/mime.types"}

// devices are the only device nodes an instance sees.
var devices = []string{"null", "zero", "full", "random", "urandom"}

// maskedProc are /proc files hidden behind /dev/null, as container runtimes do.
var maskedProc = []string{"kcore", "keys", "sysrq-trigger", "timer_list", "sched_debug", "latency_stats", "kmsg", "kallsyms"}

const (
	roFlags = unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV
)

// prepareRoot mounts the part of the instance's root that every function
// shares, at newRoot: the tmpfs root, the host's /usr and the /etc files a
// runtime needs (read-only), /proc with its sensitive files masked, and
// /dev. A shell does this before any function claims it.
func prepareRoot() error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	if err := unix.Mount("moat", newRoot, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size=2m,mode=0755"); err != nil {
		return fmt.Errorf("root tmpfs: %w", err)
	}
	r := func(p string) string { return filepath.Join(newRoot, p) }
	for _, d := range []string{"usr", "etc", "tmp", "proc", "dev", "opt", "var/task", "var/runtime", "var/tmp"} {
		if err := os.MkdirAll(r(d), 0o755); err != nil {
			return err
		}
	}
	for _, d := range hostDirs {
		if err := bindRO(d, r(d)); err != nil {
			return err
		}
	}
	for _, l := range topLinks {
		fi, err := os.Lstat(l)
		switch {
		case err != nil:
			continue
		case fi.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(l)
			if err != nil {
				return err
			}
			if err := os.Symlink(target, r(l)); err != nil {
				return err
			}
		case fi.IsDir():
			if err := os.Mkdir(r(l), 0o755); err != nil {
				return err
			}
			if err := bindRO(l, r(l)); err != nil {
				return err
			}
		}
	}
	for _, p := range hostEtc {
		fi, err := os.Stat(p)
		if err != nil {
			continue
		}
		dst := r(p)
		if fi.IsDir() {
			err = os.MkdirAll(dst, 0o755)
		} else {
			err = os.WriteFile(dst, nil, 0o644)
		}
		if err != nil {
			return err
		}
		if err := bindRO(p, dst); err != nil {
			return err
		}
	}
	if err := unix.Mount("proc", r("proc"), "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("/proc: %w", err)
	}
	if err := buildDev(r("dev")); err != nil {
		return err
	}
	for _, p := range maskedProc {
		dst := r("proc/" + p)
		if _, err := os.Lstat(dst); err != nil {
			continue
		}
		if err := unix.Mount(r("dev/null"), dst, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("mask /proc/%s: %w", p, err)
		}
	}
	if err := bindRO(r("proc/sys"), r("proc/sys")); err != nil {
		return fmt.Errorf("/proc/sys: %w", err)
	}
	if err := unix.Mount("", r("opt"), "", unix.MS_BIND|unix.MS_REC, ""); err == nil {
		_ = unix.Mount("", r("opt"), "", unix.MS_REMOUNT|unix.MS_BIND|roFlags, "")
	}
	return nil
}

// finishRoot adds what belongs to the function claiming the instance to the
// root prepareRoot made: the code at /var/task, read-only, from the
// detached mount code (the data directory itself is never reachable from
// here), /etc/hosts and the other generated files, and /tmp of its size;
// then it pivots into the root, detaches the host's and makes the root
// read-only.
func finishRoot(spec *initSpec, code int) error {
	r := func(p string) string { return filepath.Join(newRoot, p) }
	err := unix.MoveMount(code, "", unix.AT_FDCWD, r("var/task"), unix.MOVE_MOUNT_F_EMPTY_PATH)
	unix.Close(code)
	if err != nil {
		return fmt.Errorf("attach code: %w", err)
	}
	if err := writeEtc(r("etc"), spec); err != nil {
		return err
	}
	tmpOpts := fmt.Sprintf("size=%dm,mode=0700,uid=%d,gid=%d", spec.TmpMB, FunctionUID, FunctionGID)
	if err := unix.Mount("tmpfs", r("tmp"), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, tmpOpts); err != nil {
		return fmt.Errorf("/tmp: %w", err)
	}

	// Enter the new root and drop the old one entirely.
	if err := unix.Chdir(newRoot); err != nil {
		return err
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach old root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return err
	}
	if err := unix.Mount("", "/", "", unix.MS_REMOUNT|unix.MS_BIND|roFlags, ""); err != nil {
		return fmt.Errorf("read-only root: %w", err)
	}
	spec.Dir = codeMountPoint
	spec.Path = filepath.Join(codeMountPoint, spec.Bootstrap)
	spec.Args[0] = spec.Path
	return nil
}

// bindRO binds src onto dst read-only, nosuid, nodev.
func bindRO(src, dst string) error {
	if err := unix.Mount(src, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s: %w", src, err)
	}
	if err := unix.Mount("", dst, "", unix.MS_REMOUNT|unix.MS_BIND|roFlags, ""); err != nil {
		// A mount locked with noexec (or atime flags) by the host must be
		// remounted with them kept.
		var st unix.Statfs_t
		if serr := unix.Statfs(dst, &st); serr == nil {
			flags := uintptr(unix.MS_REMOUNT|unix.MS_BIND|roFlags) | uintptr(st.Flags)&(unix.MS_NOEXEC|unix.MS_NOATIME|unix.MS_NODIRATIME|unix.MS_RELATIME)
			if err2 := unix.Mount("", dst, "", flags, ""); err2 == nil {
				return nil
			}
		}
		return fmt.Errorf("read-only %s: %w", dst, err)
	}
	return nil
}

func buildDev(dev string) error {
	if err := unix.Mount("tmpfs", dev, "tmpfs", unix.MS_NOSUID|unix.MS_NOEXEC, "size=64k,mode=0755"); err != nil {
		return fmt.Errorf("/dev: %w", err)
	}
	for _, d := range devices {
		dst := filepath.Join(dev, d)
		if err := os.WriteFile(dst, nil, 0o666); err != nil {
			return err
		}
		if err := unix.Mount("/dev/"+d, dst, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("device %s: %w", d, err)
		}
		_ = unix.Mount("", dst, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_NOSUID|unix.MS_NOEXEC, "")
	}
	links := map[string]string{"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dev, name)); err != nil {
			return err
		}
	}
	if err := unix.Mount("", dev, "", unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NOEXEC, "size=64k,mode=0755"); err != nil {
		return fmt.Errorf("read-only /dev: %w", err)
	}
	return nil
}

func writeEtc(etc string, spec *initSpec) error {
	files := map[string]string{
		"passwd":        fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nsbx_user1051:x:%d:%d::/tmp:/sbin/nologin\n", FunctionUID, FunctionGID),
		"group":         fmt.Sprintf("root:x:0:\nsbx_user1051:x:%d:\n", FunctionGID),
		"hosts":         "127.0.0.1\tlocalhost moat\n::1\tlocalhost ip6-localhost ip6-loopback\n" + strings.Join(spec.Hosts, ""),
		"hostname":      "moat\n",
		"nsswitch.conf": "passwd: files\ngroup: files\nhosts: files dns\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(etc, name), []byte(body), 0o644); err != nil {
			return errors.Join(fmt.Errorf("write /etc/%s", name), err)
		}
	}
	return nil
}

// codeMountPoint is where an instance sees its code, as on Lambda.
const codeMountPoint = "/var/task"
