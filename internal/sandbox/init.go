package sandbox

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// initArg is the hidden first argument that turns the moat binary into an
// instance init.
const initArg = "__moat_instance_init"

// initSpec is what the parent sends the init over its control pipe once the
// init is in its cgroups.
type initSpec struct {
	Dir  string   `json:"dir"`  // working directory
	Path string   `json:"path"` // executable to run
	Args []string `json:"args"`
	Env  []string `json:"env"`
}

// Init turns the process into an instance init when it was started as one,
// and never returns in that case. Call it first thing in main (and in
// TestMain of packages that spawn instances); otherwise it returns at once.
func Init() {
	if len(os.Args) < 2 || os.Args[1] != initArg {
		return
	}
	err := runInit()
	fmt.Fprintf(os.Stderr, "moat instance init: %v\n", err)
	os.Exit(127)
}

func runInit() error {
	ctl := os.NewFile(3, "control")
	var spec initSpec
	// Blocks until the parent has placed this process in its cgroups.
	if err := json.NewDecoder(ctl).Decode(&spec); err != nil {
		return fmt.Errorf("read spec: %w", err)
	}
	ctl.Close()
	if err := os.Chdir(spec.Dir); err != nil {
		return fmt.Errorf("enter code dir: %w", err)
	}
	path := spec.Path
	if !filepath.IsAbs(path) {
		path = filepath.Join(spec.Dir, path)
	}
	if err := syscall.Exec(path, spec.Args, spec.Env); err != nil {
		return fmt.Errorf("exec %s: %w", spec.Args[0], err)
	}
	return nil
}
