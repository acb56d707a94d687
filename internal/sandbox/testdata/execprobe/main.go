// Command execprobe is a bootstrap for the sandbox's enforce-mode tests:
// it runs the steps in $MOAT_EXECPROBE (JSON) and prints one JSON result
// per step on stdout, then exits. Every program it starts gets /dev/null
// for stdin, stdout and stderr, so that its output is the results alone.
//
// Steps ("op"):
//
//	exec      fork, then execve(path) in dir ("" keeps the cwd); reports
//	          the exec's errno, or the program's exit status
//	execveat  the same with execveat(fd of dir, path, 0), or, with empty
//	          set, execveat(fd of path, "", AT_EMPTY_PATH); done by a
//	          child (this program again) since Go cannot fork without exec
//	copy      copy path to dst, mode 0755
//	bench     exec path n times, one after the other; reports ns/exec
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	envSteps = "MOAT_EXECPROBE"       // the steps
	envChild = "MOAT_EXECPROBE_CHILD" // one execveat step, for a child
)

type step struct {
	Name  string `json:"name"`
	Op    string `json:"op"`
	Path  string `json:"path"`
	Dir   string `json:"dir,omitempty"`
	Dst   string `json:"dst,omitempty"`
	Empty bool   `json:"empty,omitempty"`
	N     int    `json:"n,omitempty"`
}

type result struct {
	Name      string  `json:"name"`
	Errno     string  `json:"errno,omitempty"` // the exec failed with this
	Exit      int     `json:"exit"`            // else the program's status
	Err       string  `json:"err,omitempty"`   // the step itself failed
	NsPerExec float64 `json:"nsPerExec,omitempty"`
}

func main() {
	if s := os.Getenv(envChild); s != "" {
		os.Exit(child(s))
	}
	var steps []step
	if err := json.Unmarshal([]byte(os.Getenv(envSteps)), &steps); err != nil {
		fmt.Println(`{"name":"steps","err":"` + err.Error() + `"}`)
		os.Exit(2)
	}
	enc := json.NewEncoder(os.Stdout)
	for _, s := range steps {
		r := run(s)
		r.Name = s.Name
		enc.Encode(&r)
	}
}

func run(s step) result {
	switch s.Op {
	case "exec":
		return execStep(s.Path, s.Dir, nil)
	case "execveat":
		b, _ := json.Marshal(&s)
		self, err := os.Executable()
		if err != nil {
			return result{Err: err.Error()}
		}
		return execStep(self, "", []string{envChild + "=" + string(b)})
	case "copy":
		return result{Err: errString(copyFile(s.Path, s.Dst))}
	case "bench":
		start := time.Now()
		for range s.N {
			if r := execStep(s.Path, "", nil); r.Errno != "" || r.Err != "" || r.Exit != 0 {
				return r
			}
		}
		return result{NsPerExec: float64(time.Since(start).Nanoseconds()) / float64(s.N)}
	}
	return result{Err: "unknown op " + s.Op}
}

// execStep starts path in dir and waits for it. A child running an
// execveat step writes the errno of its failed exec on fd 3.
func execStep(path, dir string, env []string) result {
	null, err := os.OpenFile("/dev/null", os.O_RDWR, 0)
	if err != nil {
		return result{Err: err.Error()}
	}
	defer null.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return result{Err: err.Error()}
	}
	defer r.Close()
	pid, err := syscall.ForkExec(path, []string{path}, &syscall.ProcAttr{
		Dir:   dir,
		Env:   env,
		Files: []uintptr{null.Fd(), null.Fd(), null.Fd(), w.Fd()},
	})
	w.Close()
	if err != nil {
		if errno, ok := err.(syscall.Errno); ok {
			return result{Errno: unix.ErrnoName(errno)}
		}
		return result{Err: err.Error()}
	}
	var ws syscall.WaitStatus
	for {
		_, err = syscall.Wait4(pid, &ws, 0, nil)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		return result{Err: err.Error()}
	}
	if msg, _ := io.ReadAll(r); len(msg) > 0 {
		return result{Errno: string(msg)}
	}
	return result{Exit: ws.ExitStatus()}
}

// child runs one execveat step in place; it returns only if the exec
// failed, after writing the errno's name on fd 3.
func child(spec string) int {
	var s step
	if err := json.Unmarshal([]byte(spec), &s); err != nil {
		return 2
	}
	var fd int
	var err error
	path, flags := s.Path, 0
	if s.Empty {
		fd, err = unix.Open(s.Path, unix.O_PATH|unix.O_CLOEXEC, 0)
		path, flags = "", unix.AT_EMPTY_PATH
	} else {
		fd, err = unix.Open(s.Dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return 2
	}
	p, err := unix.BytePtrFromString(path)
	if err != nil {
		return 2
	}
	argv, err := syscall.SlicePtrFromStrings([]string{s.Path})
	if err != nil {
		return 2
	}
	envv := []*byte{nil}
	_, _, errno := unix.Syscall6(unix.SYS_EXECVEAT, uintptr(fd), uintptr(unsafe.Pointer(p)),
		uintptr(unsafe.Pointer(&argv[0])), uintptr(unsafe.Pointer(&envv[0])), uintptr(flags), 0)
	report := os.NewFile(3, "report")
	report.WriteString(unix.ErrnoName(errno))
	return 1
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o755)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
