// Package sandbox spawns, watches and destroys function instances.
//
// One Manager owns every instance on a node and all the privileged work that
// goes with them: cgroups, namespaces and the Runtime API socket created
// inside each instance's network namespace. An instance is started by
// re-executing the moat binary as a small init (see Init), which waits until
// the parent has placed it in its cgroups, then sets up the instance and
// execs the function's bootstrap with exactly the environment it was given:
// nothing of moat's own environment or credentials is inherited.
//
// The package never decides what runs or when: the invoke package does.
package sandbox
