package invoke

import (
	"bytes"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// maxCapture bounds what one invocation's log record holds; output past it
// is replaced by a note, so a chatty function cannot exhaust moat's memory.
const maxCapture = 256 * 1024

// capture reads an instance's combined stdout and stderr and collects it
// for the invocation running at the moment.
type capture struct {
	f *os.File

	mu       sync.Mutex
	buf      bytes.Buffer
	dropped  int
	consumed int64
	eof      bool
	progress chan struct{} // signalled after each read
	readBuf  []byte
}

func newCapture(f *os.File) *capture {
	c := &capture{f: f, progress: make(chan struct{}, 1), readBuf: make([]byte, 32*1024)}
	go c.run()
	return c
}

func (c *capture) run() {
	// On the heap: a 32 KiB stack buffer would keep every idle instance's
	// reader goroutine on a 64 KiB stack.
	b := c.readBuf
	for {
		n, err := c.f.Read(b)
		c.mu.Lock()
		if n > 0 {
			room := maxCapture - c.buf.Len()
			if room >= n {
				c.buf.Write(b[:n])
			} else {
				if room > 0 {
					c.buf.Write(b[:room])
				}
				c.dropped += n - max(room, 0)
			}
			c.consumed += int64(n)
		}
		if err != nil {
			c.eof = true
		}
		c.mu.Unlock()
		select {
		case c.progress <- struct{}{}:
		default:
		}
		if err != nil {
			return
		}
	}
}

// sync waits until everything written to the pipe before the call has been
// read, so that lines printed before a response are in its record. It waits
// at most limit.
func (c *capture) sync(limit time.Duration) {
	var pending int
	rc, err := c.f.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		pending, err = unix.IoctlGetInt(int(fd), unix.TIOCINQ)
	})
	if err != nil || pending == 0 {
		return
	}
	c.mu.Lock()
	target := c.consumed + int64(pending)
	c.mu.Unlock()
	timer := time.NewTimer(limit)
	defer timer.Stop()
	for {
		c.mu.Lock()
		done := c.consumed >= target || c.eof
		c.mu.Unlock()
		if done {
			return
		}
		select {
		case <-c.progress:
		case <-timer.C:
			return
		}
	}
}

// take returns and clears what was collected.
func (c *capture) take() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.buf.String()
	if c.dropped > 0 {
		s += "[moat: " + itoa(c.dropped) + " bytes of output dropped: more than 256 KiB in one invocation]\n"
		c.dropped = 0
	}
	c.buf.Reset()
	if len(s) > 0 && s[len(s)-1] != '\n' {
		s += "\n"
	}
	return s
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	if n == 0 {
		return "0"
	}
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}
