package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// The init's report travels over a UNIX SOCK_SEQPACKET socket pair (fd 4
// in the init): one message, the JSON report, carrying in enforce mode
// the instance's seccomp listener as SCM_RIGHTS. Passing the descriptor
// with the report is atomic: the parent has it exactly when it learns
// that the walls are up, needs no ptrace right over the init
// (pidfd_getfd would), and there is no window in which the init must
// stay alive, descriptor open, until the parent has taken it.

// maxReport bounds the report message; a larger one is truncated and
// refused.
const maxReport = 64 << 10

// reportPair returns the parent's and the init's ends of the report
// socket, both close-on-exec (ExtraFiles clears it on the init's copy).
// The parent's end is non-blocking, so reading waits in the poller.
func reportPair() (parent, init *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("report socket: %w", err)
	}
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return nil, nil, fmt.Errorf("report socket: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "report"), os.NewFile(uintptr(fds[1]), "report"), nil
}

// sendReport sends rep on the init's report socket, with listener (when
// not nil) as SCM_RIGHTS.
func sendReport(rep initReport, listener *os.File) error {
	b, err := json.Marshal(&rep)
	if err != nil {
		return err
	}
	var oob []byte
	if listener != nil {
		oob = unix.UnixRights(int(listener.Fd()))
	}
	for {
		err = unix.Sendmsg(fdReport, b, oob, nil, 0)
		if err != unix.EINTR {
			return err
		}
	}
}

// sendFd passes f to the init over the report socket (the parent's end),
// alone in a one-byte message.
func sendFd(sock, f *os.File) error {
	rc, err := sock.SyscallConn()
	if err != nil {
		return err
	}
	var werr error
	err = rc.Write(func(fd uintptr) bool {
		werr = unix.Sendmsg(int(fd), []byte{'f'}, unix.UnixRights(int(f.Fd())), nil, 0)
		return werr != unix.EAGAIN && werr != unix.EINTR
	})
	if err == nil {
		err = werr
	}
	return err
}

// recvFd receives the descriptor sendFd passed, in the init (close on
// exec).
func recvFd() (int, error) {
	buf := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(4*4))
	for {
		n, oobn, flags, _, err := unix.Recvmsg(fdReport, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, err
		}
		fds, err := receivedFds(oob[:oobn])
		if err == nil && (n != 1 || buf[0] != 'f' || flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 || len(fds) != 1) {
			err = fmt.Errorf("want one descriptor in a one-byte message, got %d bytes and %d descriptors", n, len(fds))
		}
		if err != nil {
			for _, fd := range fds {
				unix.Close(fd)
			}
			return -1, err
		}
		return fds[0], nil
	}
}

// The parent answers the report with one byte, "go", once it has set the
// instance's CPU for the function's init phase: until then the init runs
// unthrottled, and nothing of the function runs before its allowance is in
// place.

// sendGo lets the init exec the bootstrap.
func sendGo(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var werr error
	err = rc.Write(func(fd uintptr) bool {
		werr = unix.Send(int(fd), []byte{'g'}, 0)
		return werr != unix.EAGAIN && werr != unix.EINTR
	})
	if err == nil {
		err = werr
	}
	return err
}

// waitGo blocks the init until the parent's go arrives on its report
// socket.
func waitGo() error {
	var b [1]byte
	for {
		n, _, err := unix.Recvfrom(fdReport, b[:], 0)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return err
		case n != 1 || b[0] != 'g':
			return errors.New("the parent closed the report socket")
		}
		return nil
	}
}

// readReport waits for the init's report. It returns the descriptor the
// init passed with it, or -1; the caller owns it. io.ErrUnexpectedEOF
// means the init ended without reporting.
func readReport(f *os.File) (initReport, int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return initReport{}, -1, err
	}
	buf := make([]byte, maxReport)
	oob := make([]byte, unix.CmsgSpace(4*4)) // room to notice extra descriptors
	var n, oobn, flags int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		n, oobn, flags, _, rerr = unix.Recvmsg(int(fd), buf, oob, unix.MSG_CMSG_CLOEXEC)
		return rerr != unix.EAGAIN && rerr != unix.EINTR
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return initReport{}, -1, fmt.Errorf("read report: %w", err)
	}
	fds, cerr := receivedFds(oob[:oobn])
	closeAll := func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}
	switch {
	case cerr != nil:
		closeAll()
		return initReport{}, -1, fmt.Errorf("read report: %w", cerr)
	case n == 0:
		closeAll()
		return initReport{}, -1, io.ErrUnexpectedEOF
	case flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0:
		closeAll()
		return initReport{}, -1, errors.New("read report: message truncated")
	case len(fds) > 1:
		closeAll()
		return initReport{}, -1, fmt.Errorf("read report: %d descriptors, want at most one", len(fds))
	}
	var rep initReport
	if err := json.Unmarshal(buf[:n], &rep); err != nil {
		closeAll()
		return initReport{}, -1, fmt.Errorf("decode report: %w", err)
	}
	if len(fds) == 0 {
		return rep, -1, nil
	}
	return rep, fds[0], nil
}

// receivedFds returns every descriptor SCM_RIGHTS messages in oob
// carry, so that none is left open unaccounted for.
func receivedFds(oob []byte) ([]int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, err
	}
	var fds []int
	for i := range msgs {
		if msgs[i].Header.Level != unix.SOL_SOCKET || msgs[i].Header.Type != unix.SCM_RIGHTS {
			continue
		}
		got, err := unix.ParseUnixRights(&msgs[i])
		if err != nil {
			return fds, err
		}
		fds = append(fds, got...)
	}
	return fds, nil
}
