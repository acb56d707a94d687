package sandbox

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// cgroupLayout describes where instance cgroups are made on this host: a
// pure cgroup v2 host, or the hybrid layout (v1 controllers, and an empty v2
// hierarchy whose cgroup ids the eBPF sensor sees).
type cgroupLayout struct {
	v2Root   string            // mount point of the v2 hierarchy ("" if none)
	v2Memory bool              // memory and pids controllers are available in v2
	v2CPU    bool              // the cpu controller is available in v2
	v1       map[string]string // v1 controller -> mount point (memory, pids, cpu)
	parent   string            // relative path under each root holding moat's instances
}

func detectCgroups(parent string) (*cgroupLayout, error) {
	l := &cgroupLayout{v1: map[string]string{}, parent: parent}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("detect cgroups: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent maj:min root mountpoint opts - fstype source superopts
		line := sc.Text()
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		fields := strings.Fields(pre)
		pfields := strings.Fields(post)
		if len(fields) < 5 || len(pfields) < 3 {
			continue
		}
		mnt := fields[4]
		switch pfields[0] {
		case "cgroup2":
			if l.v2Root == "" || mnt == "/sys/fs/cgroup" {
				l.v2Root = mnt
			}
		case "cgroup":
			for _, o := range strings.Split(pfields[2], ",") {
				switch o {
				case "memory", "pids", "cpu":
					l.v1[o] = mnt
				}
			}
		}
	}
	if l.v2Root != "" {
		ctrl, _ := os.ReadFile(filepath.Join(l.v2Root, "cgroup.controllers"))
		fs := strings.Fields(string(ctrl))
		l.v2Memory = contains(fs, "memory") && contains(fs, "pids")
		l.v2CPU = l.v2Memory && contains(fs, "cpu")
	}
	if !l.v2Memory && l.v1["memory"] == "" {
		return nil, errors.New("detect cgroups: no memory controller in cgroup v2 or v1")
	}
	return l, nil
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// cgroup is one instance's set of cgroup directories.
type cgroup struct {
	v2     string // v2 directory ("" if no v2 hierarchy)
	mem    string // directory holding the memory controller files
	pids   string // directory holding pids.max
	v1dirs []string
	isV2   bool // memory accounting lives in v2
	cpu    bool // a CPU quota is set

	// cpuFile is the open quota file (cpu.max on v2, cpu.cfs_quota_us
	// on v1), written at each phase of the instance (setCPU).
	cpuFile *os.File
	cpuV2   bool

	// peak is the open peak-memory file, read again at offset 0 for each
	// invocation's report (a path lookup per read cost more than the
	// read itself). mu guards it, cpuFile and closed.
	mu     sync.Mutex
	peak   *os.File
	closed bool
}

// prepare makes sure the parent directories exist and, on v2, that the
// controllers are delegated to them.
func (l *cgroupLayout) prepare() error {
	if l.v2Root != "" {
		dir := filepath.Join(l.v2Root, l.parent)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("prepare cgroup %s: %w", dir, err)
		}
		if l.v2Memory {
			// Delegate the controllers down every level to the parent.
			levels := []string{l.v2Root}
			for p := l.v2Root; p != dir; {
				rel, _ := filepath.Rel(p, dir)
				p = filepath.Join(p, strings.SplitN(rel, string(filepath.Separator), 2)[0])
				levels = append(levels, p)
			}
			for _, d := range levels[:len(levels)-1] {
				ctrl := "+memory +pids"
				if l.v2CPU {
					ctrl += " +cpu"
				}
				if err := writeFile(filepath.Join(d, "cgroup.subtree_control"), ctrl); err != nil {
					return fmt.Errorf("prepare cgroup %s: %w", d, err)
				}
			}
		}
	}
	if !l.v2Memory {
		for _, c := range []string{"memory", "pids", "cpu"} {
			if root := l.v1[c]; root != "" {
				if err := os.MkdirAll(filepath.Join(root, l.parent), 0o755); err != nil {
					return fmt.Errorf("prepare cgroup: %w", err)
				}
			}
		}
	}
	return nil
}

// CPU. An instance's processes are in its CPU cgroup from the start, but
// the quota changes with the instance's phase (cgroup.setCPU, from build,
// claim and Instance.InitDone):
//
//   - while moat's init builds the walls, none: moat's own work is not
//     charged to the function;
//   - from the exec of the bootstrap to the runtime's first
//     invocation/next (the function's init phase), at least two CPUs
//     (cpuInitQuota), as Lambda is widely observed to let the init phase
//     run faster than its steady share (bounded by the init timeout; a
//     runtime's start is multi-threaded, and one CPU made the echo
//     example's start 1 ms slower than none);
//   - from then on, the function's share: CPU in proportion to memory,
//     1,769 MB = one CPU (cpuQuota).
//
// cpuPeriod is the CFS period, the kernel's default of 100 ms, chosen by
// measurement (BenchmarkCPUPeriod, in docs/BENCHMARKS.md): a handler whose
// CPU fits in one period's quota (7.2 ms at 128 MB) runs unthrottled in
// one slice, where a 20 ms period cut a 5 ms handler at 128 MB into four
// slices and took its p50 from 5 ms to 37 ms. A shorter period helps only
// handlers that need more than their share, which wait either way (12 ms
// at 128 MB: 161 ms at 20 ms against 198 ms at 100 ms).
const cpuPeriod = 100_000 // µs

// minQuota is the kernel's smallest CFS quota (1 ms).
const minQuota = 1000 // µs

// cpuQuota is the function's steady CPU share per period.
func cpuQuota(memBytes int64) int64 {
	q := memBytes >> 20 * cpuPeriod / 1769
	return max(q, minQuota)
}

// cpuInitQuota is the CPU of the function's init phase: its share, and
// never less than two CPUs.
func cpuInitQuota(memBytes int64) int64 { return max(cpuQuota(memBytes), 2*cpuPeriod) }

func (l *cgroupLayout) create(id string, memBytes int64, maxPids int) (*cgroup, error) {
	cg := &cgroup{isV2: l.v2Memory}
	if l.v2Root != "" {
		cg.v2 = filepath.Join(l.v2Root, l.parent, id)
		if err := os.Mkdir(cg.v2, 0o755); err != nil {
			return nil, fmt.Errorf("create cgroup: %w", err)
		}
	}
	if l.v2Memory {
		cg.mem, cg.pids = cg.v2, cg.v2
		if err := firstErr(
			writeFile(filepath.Join(cg.v2, "memory.max"), strconv.FormatInt(memBytes, 10)),
			writeFile(filepath.Join(cg.v2, "memory.swap.max"), "0"),
			writeFile(filepath.Join(cg.v2, "pids.max"), strconv.Itoa(maxPids)),
		); err != nil {
			cg.destroy()
			return nil, fmt.Errorf("create cgroup: %w", err)
		}
		if l.v2CPU {
			if err := cg.openCPU(filepath.Join(cg.v2, "cpu.max"), true); err != nil {
				cg.destroy()
				return nil, fmt.Errorf("create cgroup: cpu limit: %w", err)
			}
		}
		return cg, nil
	}
	cg.mem = filepath.Join(l.v1["memory"], l.parent, id)
	if err := os.Mkdir(cg.mem, 0o755); err != nil {
		cg.destroy()
		return nil, fmt.Errorf("create cgroup: %w", err)
	}
	cg.v1dirs = append(cg.v1dirs, cg.mem)
	if err := writeFile(filepath.Join(cg.mem, "memory.limit_in_bytes"), strconv.FormatInt(memBytes, 10)); err != nil {
		cg.destroy()
		return nil, fmt.Errorf("create cgroup: memory limit: %w", err)
	}
	// No swap: memsw exists only with swap accounting; without it there is
	// no swap to limit.
	if _, err := os.Stat(filepath.Join(cg.mem, "memory.memsw.limit_in_bytes")); err == nil {
		if err := writeFile(filepath.Join(cg.mem, "memory.memsw.limit_in_bytes"), strconv.FormatInt(memBytes, 10)); err != nil {
			cg.destroy()
			return nil, fmt.Errorf("create cgroup: swap limit: %w", err)
		}
	}
	_ = writeFile(filepath.Join(cg.mem, "memory.swappiness"), "0")
	if root := l.v1["pids"]; root != "" {
		cg.pids = filepath.Join(root, l.parent, id)
		if err := os.Mkdir(cg.pids, 0o755); err != nil {
			cg.destroy()
			return nil, fmt.Errorf("create cgroup: %w", err)
		}
		cg.v1dirs = append(cg.v1dirs, cg.pids)
		if err := writeFile(filepath.Join(cg.pids, "pids.max"), strconv.Itoa(maxPids)); err != nil {
			cg.destroy()
			return nil, fmt.Errorf("create cgroup: pids limit: %w", err)
		}
	}
	if root := l.v1["cpu"]; root != "" {
		d := filepath.Join(root, l.parent, id)
		if err := os.Mkdir(d, 0o755); err != nil {
			cg.destroy()
			return nil, fmt.Errorf("create cgroup: %w", err)
		}
		cg.v1dirs = append(cg.v1dirs, d)
		err := writeFile(filepath.Join(d, "cpu.cfs_period_us"), strconv.Itoa(cpuPeriod))
		if err == nil {
			err = cg.openCPU(filepath.Join(d, "cpu.cfs_quota_us"), false)
		}
		if err != nil {
			cg.destroy()
			return nil, fmt.Errorf("create cgroup: cpu limit: %w", err)
		}
	}
	return cg, nil
}

// openCPU keeps the instance's quota file open (it is written at every
// phase change, on the cold path) and lifts the quota: moat's init runs
// unthrottled.
func (cg *cgroup) openCPU(path string, v2 bool) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	cg.cpuFile, cg.cpuV2, cg.cpu = f, v2, true
	return cg.setCPU(-1)
}

// setCPU sets the CPU quota per cpuPeriod in µs; a negative quota lifts
// it. Without a cpu controller it does nothing.
func (cg *cgroup) setCPU(quota int64) error {
	cg.mu.Lock()
	defer cg.mu.Unlock()
	if cg.cpuFile == nil {
		return nil
	}
	var b []byte
	switch {
	case cg.cpuV2 && quota < 0:
		b = fmt.Appendf(nil, "max %d", cpuPeriod)
	case cg.cpuV2:
		b = fmt.Appendf(nil, "%d %d", quota, cpuPeriod)
	default:
		b = strconv.AppendInt(nil, max(quota, -1), 10)
	}
	if _, err := cg.cpuFile.WriteAt(b, 0); err != nil {
		return fmt.Errorf("set cpu quota: %w", err)
	}
	return nil
}

// setMemory changes the memory limit (and the swap limit with it, which
// may never be below it).
func (cg *cgroup) setMemory(memBytes int64) error {
	v := strconv.FormatInt(memBytes, 10)
	if cg.isV2 {
		if err := writeFile(filepath.Join(cg.v2, "memory.max"), v); err != nil {
			return fmt.Errorf("set memory limit: %w", err)
		}
		return nil
	}
	mem, memsw := filepath.Join(cg.mem, "memory.limit_in_bytes"), filepath.Join(cg.mem, "memory.memsw.limit_in_bytes")
	files := []string{mem}
	if _, err := os.Stat(memsw); err == nil {
		files = []string{mem, memsw} // lowering: the memory limit first
		if cur, err := os.ReadFile(mem); err == nil {
			if n, _ := strconv.ParseInt(strings.TrimSpace(string(cur)), 10, 64); memBytes > n {
				files = []string{memsw, mem}
			}
		}
	}
	for _, f := range files {
		if err := writeFile(f, v); err != nil {
			return fmt.Errorf("set memory limit: %w", err)
		}
	}
	return nil
}

// v2fd opens the v2 directory for clone-into-cgroup; -1 when there is none.
func (cg *cgroup) v2fd() (int, error) {
	if cg.v2 == "" {
		return -1, nil
	}
	return syscall.Open(cg.v2, syscall.O_DIRECTORY|syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
}

// addV1 moves pid into the v1 cgroups (the v2 one is joined at clone).
func (cg *cgroup) addV1(pid int) error {
	for _, d := range cg.v1dirs {
		if err := writeFile(filepath.Join(d, "cgroup.procs"), strconv.Itoa(pid)); err != nil {
			return fmt.Errorf("join cgroup: %w", err)
		}
	}
	return nil
}

// maxMemory is the peak memory use of the instance in bytes, 0 if it
// cannot be read.
func (cg *cgroup) maxMemory() int64 {
	cg.mu.Lock()
	defer cg.mu.Unlock()
	if cg.closed || cg.mem == "" {
		return 0
	}
	if cg.peak == nil {
		name := "memory.max_usage_in_bytes"
		if cg.isV2 {
			name = "memory.peak"
		}
		f, err := os.Open(filepath.Join(cg.mem, name))
		if err != nil {
			return 0
		}
		cg.peak = f
	}
	var buf [32]byte
	n, err := cg.peak.ReadAt(buf[:], 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0
	}
	v, _ := strconv.ParseInt(strings.TrimSpace(string(buf[:n])), 10, 64)
	return v
}

// oomKills is how many processes the kernel killed for lack of memory.
func (cg *cgroup) oomKills() int {
	name := "memory.oom_control"
	if cg.isV2 {
		name = "memory.events"
	}
	b, err := os.ReadFile(filepath.Join(cg.mem, name))
	if err != nil {
		return 0
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if k, v, ok := bytes.Cut(line, []byte(" ")); ok && string(k) == "oom_kill" {
			n, _ := strconv.Atoi(string(v))
			return n
		}
	}
	return 0
}

// killAll kills every process left in the instance's cgroups.
func (cg *cgroup) killAll() {
	if cg.v2 != "" {
		if err := writeFile(filepath.Join(cg.v2, "cgroup.kill"), "1"); err == nil && cg.isV2 {
			return
		}
	}
	for _, d := range append([]string{cg.v2}, cg.v1dirs...) {
		if d == "" {
			continue
		}
		killProcs(filepath.Join(d, "cgroup.procs"))
	}
}

func killProcs(procs string) {
	b, err := os.ReadFile(procs)
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// destroy removes the cgroup directories, waiting briefly for the kernel to
// let go of killed processes.
func (cg *cgroup) destroy() error {
	cg.mu.Lock()
	cg.closed = true
	if cg.peak != nil {
		cg.peak.Close()
		cg.peak = nil
	}
	if cg.cpuFile != nil {
		cg.cpuFile.Close()
		cg.cpuFile = nil
	}
	cg.mu.Unlock()
	var errs []error
	for _, d := range append(append([]string{}, cg.v1dirs...), cg.v2) {
		if d == "" {
			continue
		}
		if err := rmdirRetry(d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func rmdirRetry(d string) error {
	var err error
	for i := 0; i < 200; i++ {
		err = syscall.Rmdir(d)
		if err == nil || errors.Is(err, syscall.ENOENT) {
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) {
			break
		}
		killProcs(filepath.Join(d, "cgroup.procs"))
		time.Sleep(time.Millisecond)
	}
	return fmt.Errorf("remove cgroup %s: %w", d, err)
}

// sweep kills and removes every instance cgroup under moat's parent: the
// leftovers of a moat that died without cleaning up.
func (l *cgroupLayout) sweep() (int, error) {
	var roots []string
	if l.v2Root != "" {
		roots = append(roots, filepath.Join(l.v2Root, l.parent))
	}
	for _, c := range []string{"memory", "pids", "cpu"} {
		if r := l.v1[c]; r != "" {
			roots = append(roots, filepath.Join(r, l.parent))
		}
	}
	n := 0
	var errs []error
	for _, root := range roots {
		ents, err := os.ReadDir(root)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if !e.IsDir() {
				continue
			}
			d := filepath.Join(root, e.Name())
			_ = writeFile(filepath.Join(d, "cgroup.kill"), "1")
			killProcs(filepath.Join(d, "cgroup.procs"))
			if err := rmdirRetry(d); err != nil {
				errs = append(errs, err)
				continue
			}
			n++
		}
	}
	return n, errors.Join(errs...)
}

func writeFile(path, s string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(s)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// removeParent removes moat's (empty) parent directories.
func (l *cgroupLayout) removeParent() {
	if l.v2Root != "" {
		_ = syscall.Rmdir(filepath.Join(l.v2Root, l.parent))
	}
	for _, root := range l.v1 {
		_ = syscall.Rmdir(filepath.Join(root, l.parent))
	}
}

// cgroupID is the id the kernel gives the tasks of the cgroup v2
// directory at path (bpf_get_current_cgroup_id): its inode number.
func cgroupID(path string) (uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0, fmt.Errorf("cgroup id: %w", err)
	}
	return st.Ino, nil
}
