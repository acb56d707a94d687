package sensor

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// ErrNotCgroup2 is returned (wrapped) by [CgroupID] for a path that is not
// a directory of a cgroup v2 hierarchy.
var ErrNotCgroup2 = errors.New("not a cgroup v2 directory")

// CgroupID returns the cgroup v2 id of the cgroup directory at path: the
// inode number of the directory, which is what bpf_get_current_cgroup_id()
// returns for the tasks in it. On this project's hybrid hosts the v2
// hierarchy is the one mounted at /sys/fs/cgroup/unified.
//
// It returns ErrNotCgroup2 (wrapped) when path is on another file system
// (a v1 hierarchy, for example).
func CgroupID(path string) (uint64, error) {
	var fs unix.Statfs_t
	if err := unix.Statfs(path, &fs); err != nil {
		return 0, fmt.Errorf("cgroup id of %s: %w", path, err)
	}
	if fs.Type != unix.CGROUP2_SUPER_MAGIC {
		return 0, fmt.Errorf("cgroup id of %s: %w", path, ErrNotCgroup2)
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, fmt.Errorf("cgroup id of %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return 0, fmt.Errorf("cgroup id of %s: %w", path, ErrNotCgroup2)
	}
	return st.Ino, nil
}
