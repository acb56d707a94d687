package sensor

import (
	"errors"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestProbeLSM runs the probe for real. Where the kernel lists no bpf LSM
// the load must fail; where it lists one, either outcome is the host's
// answer (these machines refuse BPF LSM programs with EPERM although bpf
// is listed), and a refusal must carry the kernel's error.
func TestProbeLSM(t *testing.T) {
	if os.Geteuid() != 0 {
		needOrSkip(t, "loading BPF programs needs root")
	}
	lsms, err := os.ReadFile("/sys/kernel/security/lsm")
	if errors.Is(err, os.ErrNotExist) {
		// Not mounted (systemd would have): mount it, as root may.
		if merr := unix.Mount("securityfs", "/sys/kernel/security", "securityfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); merr == nil {
			lsms, err = os.ReadFile("/sys/kernel/security/lsm")
		}
	}
	if err != nil {
		needOrSkip(t, "securityfs is not mounted: %v", err)
	}
	err = ProbeLSM()
	t.Logf("LSMs %q: probe: %v", lsms, err)
	listed := false
	for _, l := range strings.Split(strings.TrimSpace(string(lsms)), ",") {
		listed = listed || l == "bpf"
	}
	if !listed && err == nil {
		t.Fatal("a BPF LSM program loaded although bpf is not an active LSM")
	}
	if err != nil && errors.Unwrap(err) == nil {
		t.Errorf("refusal without the kernel's error: %v", err)
	}
}
