package sandbox

import (
	"github.com/landlock-lsm/go-landlock/landlock"
	"golang.org/x/sys/unix"
)

// restrictLandlock is the second wall on the file system and the network:
// everything is read-only (and executable) but /tmp and the writable
// devices, and TCP connect() reaches only the Runtime API and the ports a
// function was granted. It applies to every thread and survives execve.
func restrictLandlock(spec *initSpec) error {
	rules := []landlock.Rule{
		landlock.RODirs("/"),
		landlock.RWDirs("/tmp"),
		landlock.RWFiles("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom").IgnoreIfMissing(),
	}
	cfg := landlock.V7.BestEffort()
	if spec.AllPorts {
		// A grant of every port: the cgroup filter alone decides where
		// connect() may go, so Landlock must not handle TCP connect.
		cfg.HandledAccessNet = 0
	} else {
		rules = append(rules, landlock.ConnectTCP(RuntimeAPIPort))
		for _, p := range spec.Ports {
			rules = append(rules, landlock.ConnectTCP(p))
		}
	}
	return cfg.Restrict(rules...)
}

// landlockABI is the Landlock ABI version this kernel offers (0: none).
func landlockABI() int {
	v, err := llABI()
	if err != nil {
		return 0
	}
	return v
}

func llABI() (int, error) {
	const createRulesetVersion = 1
	v, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, createRulesetVersion)
	if errno != 0 {
		return 0, errno
	}
	return int(v), nil
}
