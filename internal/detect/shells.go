package detect

// shells are the command interpreters moat knows by their executable's
// base name.
var shells = map[string]bool{
	"sh": true, "bash": true, "dash": true, "ash": true, "zsh": true, "ksh": true, "mksh": true,
	"csh": true, "tcsh": true, "fish": true, "busybox": true, "pwsh": true,
}

// IsShell reports whether name, an executable's base name, is a shell.
func IsShell(name string) bool { return shells[name] }
