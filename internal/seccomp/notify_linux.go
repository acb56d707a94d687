package seccomp

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrListenerClosed is returned by [Listener.Receive] once the listener
// was closed.
var ErrListenerClosed = errors.New("seccomp listener closed")

// ErrGone is returned by [Listener.Continue] and [Listener.Fail] when the
// notification no longer waits for an answer: the calling thread was
// killed, or a signal interrupted the call before the supervisor received
// it (the kernel then restarts the call, which sends a new notification).
var ErrGone = errors.New("notified call no longer waits")

// Notification is one call a filter handed to its supervisor (struct
// seccomp_notif).
type Notification struct {
	// ID names the notification in Valid, Continue and Fail.
	ID uint64
	// Pid is the calling thread, in the supervisor's PID namespace.
	Pid int
	// Nr is the syscall number and Arch its audit architecture; the
	// filter kills foreign ABIs before any call is handed on, so both
	// are native.
	Nr   int
	Arch uint32
	// Args are the call's arguments; pointers point into the caller's
	// memory, which may change at any moment (see [Listener.Continue]).
	Args [6]uint64
}

// Kernel structures of the user-notification ioctls
// (include/uapi/linux/seccomp.h).
type seccompData struct {
	nr   int32
	arch uint32
	ip   uint64
	args [6]uint64
}

type seccompNotif struct {
	id    uint64
	pid   uint32
	flags uint32
	data  seccompData
}

type seccompNotifResp struct {
	id    uint64
	val   int64
	error int32
	flags uint32
}

// The ioctl request numbers encode the structures' sizes; a layout that
// drifted from the kernel's would fail to compile here.
var (
	_ [unsafe.Sizeof(seccompNotif{}) - 0x50]byte
	_ [0x50 - unsafe.Sizeof(seccompNotif{})]byte
	_ [unsafe.Sizeof(seccompNotifResp{}) - 0x18]byte
	_ [0x18 - unsafe.Sizeof(seccompNotifResp{})]byte
)

// Listener is the supervisor's end of a filter loaded by
// [InstallListener]: it receives the calls the filter hands on and
// answers each. One goroutine receives and answers; Close may be called
// from any goroutine and ends a Receive in progress.
type Listener struct {
	f      *os.File
	rc     syscall.RawConn
	closed atomic.Bool
}

// NewListener takes ownership of fd, a listener received from the process
// that loaded the filter. It puts fd in non-blocking mode so that Receive
// waits in the Go runtime's poller, where Close can end the wait; a
// thread blocked in the kernel's receive could not be woken.
func NewListener(fd int) (*Listener, error) {
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("seccomp listener: %w", err)
	}
	f := os.NewFile(uintptr(fd), "seccomp-listener")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("seccomp listener: %w", err)
	}
	return &Listener{f: f, rc: rc}, nil
}

// Receive waits for the next notification. It returns
// [ErrListenerClosed] after Close, and io.EOF once no process runs under
// the filter any more (no notification can come).
func (l *Listener) Receive() (Notification, error) {
	var raw seccompNotif
	var opErr error
	err := l.rc.Read(func(fd uintptr) bool {
		for {
			// Receive only when a notification is pending: the ioctl
			// would otherwise block this thread in the kernel.
			pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			if _, err := unix.Poll(pfd, 0); err != nil {
				if err == unix.EINTR {
					continue
				}
				opErr = fmt.Errorf("poll seccomp listener: %w", err)
				return true
			}
			switch ev := pfd[0].Revents; {
			case ev&unix.POLLIN != 0:
			case ev&unix.POLLHUP != 0:
				opErr = io.EOF
				return true
			case ev&(unix.POLLERR|unix.POLLNVAL) != 0:
				opErr = fmt.Errorf("seccomp listener: poll events %#x", ev)
				return true
			default:
				return false // wait for the poller
			}
			raw = seccompNotif{} // the kernel wants it zeroed
			_, _, errno := unix.Syscall(unix.SYS_IOCTL, fd, unix.SECCOMP_IOCTL_NOTIF_RECV, uintptr(unsafe.Pointer(&raw)))
			switch errno {
			case 0:
				return true
			case unix.EINTR, unix.ENOENT:
				// ENOENT: the caller was killed between the wake-up
				// and the receive; look again.
				continue
			default:
				opErr = fmt.Errorf("receive seccomp notification: %w", errno)
				return true
			}
		}
	})
	if l.closed.Load() {
		return Notification{}, ErrListenerClosed
	}
	if err != nil {
		return Notification{}, fmt.Errorf("receive seccomp notification: %w", err)
	}
	if opErr != nil {
		return Notification{}, opErr
	}
	return Notification{
		ID:   raw.id,
		Pid:  int(raw.pid),
		Nr:   int(raw.data.nr),
		Arch: raw.data.arch,
		Args: raw.data.args,
	}, nil
}

// Valid reports whether notification id still waits for an answer: its
// caller neither died nor left the call. Check it after reading the
// caller's memory or /proc entries and before trusting what was read: a
// pid read from a notification may by then name another process.
func (l *Listener) Valid(id uint64) bool {
	return l.ioctl(unix.SECCOMP_IOCTL_NOTIF_ID_VALID, unsafe.Pointer(&id)) == nil
}

// Continue lets the call run in the kernel as if the filter had allowed
// it (SECCOMP_USER_NOTIF_FLAG_CONTINUE). The kernel then reads the
// call's arguments from the caller's memory again: a pointer argument
// may point at something else than what the supervisor checked, if
// another thread of the caller changed it in between. Continue is
// therefore no security decision on pointed-to data; a wall in the
// kernel (Landlock, for paths) must make that decision too. It returns
// [ErrGone] when the call no longer waits.
func (l *Listener) Continue(id uint64) error {
	return l.send(seccompNotifResp{id: id, flags: unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE})
}

// Fail fails the call with errno. It returns [ErrGone] when the call no
// longer waits.
func (l *Listener) Fail(id uint64, errno syscall.Errno) error {
	if errno == 0 || errno > maxErrno {
		return fmt.Errorf("fail seccomp notification: errno %d out of range", errno)
	}
	return l.send(seccompNotifResp{id: id, error: -int32(errno)})
}

func (l *Listener) send(resp seccompNotifResp) error {
	err := l.ioctl(unix.SECCOMP_IOCTL_NOTIF_SEND, unsafe.Pointer(&resp))
	if errors.Is(err, unix.ENOENT) {
		return ErrGone
	}
	if err != nil {
		return fmt.Errorf("answer seccomp notification: %w", err)
	}
	return nil
}

func (l *Listener) ioctl(req uint, arg unsafe.Pointer) error {
	var errno syscall.Errno
	err := l.rc.Control(func(fd uintptr) {
		for {
			_, _, errno = unix.Syscall(unix.SYS_IOCTL, fd, uintptr(req), uintptr(arg))
			if errno != unix.EINTR {
				return
			}
		}
	})
	if err != nil {
		return err
	}
	if errno != 0 {
		return errno
	}
	return nil
}

// Close closes the listener, ending a Receive in progress. Calls
// waiting for an answer, and later ones, then fail with ENOSYS.
func (l *Listener) Close() error {
	l.closed.Store(true)
	return l.f.Close()
}
