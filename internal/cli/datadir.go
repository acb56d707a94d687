package cli

import (
	"os"
	"path/filepath"
)

// DefaultDataDir is where moat keeps its state when --data-dir is not given:
// $MOAT_DATA_DIR, else $XDG_DATA_HOME/moat, else ~/.local/share/moat. It
// returns "" when none of them can be found (no home directory).
func DefaultDataDir() string { return defaultDataDir(os.Getenv) }

func defaultDataDir(getenv func(string) string) string {
	if d := getenv("MOAT_DATA_DIR"); d != "" {
		return d
	}
	// The XDG base directory spec says to ignore a relative XDG_DATA_HOME.
	if x := getenv("XDG_DATA_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "moat")
	}
	home := getenv("HOME")
	if home == "" {
		home, _ = os.UserHomeDir()
	}
	if home == "" {
		return "" // never a shared fallback such as /tmp: the directory holds keys
	}
	return filepath.Join(home, ".local", "share", "moat")
}
