package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"syscall"
)

// childEnv, set in the environment, makes the binary run
// connectThenShell instead of the Lambda runtime loop.
const childEnv = "SUSPICIOUS_CONNECT_THEN_SHELL"

// startConnectThenShell runs this binary again as a child that connects
// out and then becomes a shell, and records what the child printed.
func startConnectThenShell(r *recorder, _ event) {
	self := "/proc/self/exe"
	if _, err := os.Stat(self); err != nil {
		r.step("stat "+self, err)
		if self, err = os.Executable(); err != nil {
			r.step("find this executable", err)
			return
		}
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	out, err := cmd.CombinedOutput()
	if len(out) > maxOutput {
		out = out[:maxOutput]
	}
	r.step(fmt.Sprintf("re-exec %s: connect to %s:4444, then exec /bin/sh: %q", self, outside, out), err)
}

// connectThenShell is the child: one process that connects out (refused
// inside the instance) and then replaces itself with a shell, as a
// reverse shell does. The sensor sees a connect and an exec of the same
// pid.
func connectThenShell() {
	c, err := net.DialTimeout("tcp", outside+":4444", dialTimeout)
	if err == nil {
		c.Close()
	}
	fmt.Println("connect:", err)
	err = syscall.Exec("/bin/sh", []string{"sh", "-c", "exit 0"}, os.Environ())
	fmt.Println("exec /bin/sh:", err)
	os.Exit(1)
}
