// Package names holds the rules for the names moat gives and accepts that
// more than one package checks: function names and instance ids. Each is
// safe as one NATS subject token, one path element and one cgroup name.
package names

// MaxFunction is the longest function name, as on Lambda.
const MaxFunction = 64

// Function reports whether s is a bare function name: [A-Za-z0-9_-]{1,64},
// the names Lambda accepts (an ARN or a qualifier is not one).
func Function(s string) bool {
	if len(s) == 0 || len(s) > MaxFunction {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !FunctionByte(s[i]) {
			return false
		}
	}
	return true
}

// FunctionByte reports whether c may appear in a function name.
func FunctionByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

// MaxInstance is the longest instance id.
const MaxInstance = 64

// Instance reports whether s is an instance id: [a-z0-9-]{1,64}, the ids
// the dispatcher gives its instances and the sandbox names their cgroups,
// links and mounts after.
func Instance(s string) bool {
	if len(s) == 0 || len(s) > MaxInstance {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
