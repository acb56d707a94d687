package invoke

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"moat.dev/moat/internal/detect"
	"moat.dev/moat/internal/egress"
	"moat.dev/moat/internal/logs"
	"moat.dev/moat/internal/profile"
	"moat.dev/moat/internal/registry"
	"moat.dev/moat/internal/runtimeapi"
	"moat.dev/moat/internal/sandbox"
)

// instance is one warm or busy function instance.
type instance struct {
	id        string
	cfg       *registry.Config
	sb        *sandbox.Instance
	api       *runtimeapi.Server
	srv       *http.Server
	out       *capture
	logStream string

	initDur  time.Duration // reported on the first invocation only
	invoked  int
	lastUsed time.Time
	denied   uint64 // refused connection attempts already reported

	pool      *pool       // the pool it returns to between invocations
	retired   atomic.Bool // destroy instead of reusing (Dispatcher.Retire)
	untrack   func()      // forget it in Dispatcher.live
	closeOnce sync.Once
}

// networkSpec adds the function's pinned egress grants and host names.
func networkSpec(cfg *registry.Config, spec *sandbox.Spec) error {
	if cfg.Sandbox == nil || len(cfg.Sandbox.Resolved) == 0 {
		return nil
	}
	for _, s := range cfg.Sandbox.Resolved {
		g, err := egress.ParseGrant(s)
		if err != nil {
			return fmt.Errorf("egress grant %q: %w", s, err)
		}
		spec.Egress = append(spec.Egress, g)
	}
	names := make([]string, 0, len(cfg.Sandbox.Hosts))
	for name := range cfg.Sandbox.Hosts {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		for _, a := range cfg.Sandbox.Hosts[name] {
			spec.Hosts = append(spec.Hosts, a+"\t"+name+"\n")
		}
	}
	return nil
}

// enforceSpec makes the approved profile of a function in enforce mode
// the instance's walls: only its executables run, and its network grants
// shrink to the destinations the profile lists. Until a profile is
// approved the function runs monitored only. A profile that cannot be
// read fails the spawn: an enforced function never runs unenforced
// because of an error.
func (d *Dispatcher) enforceSpec(ctx context.Context, cfg *registry.Config, spec *sandbox.Spec) error {
	if cfg.Sandbox == nil || cfg.Sandbox.Mode != registry.ModeEnforce {
		return nil
	}
	if d.opts.Profiles == nil {
		return errors.New("enforce mode: profiles are not available on this node")
	}
	exec, connect, ok, err := d.opts.Profiles.Enforcement(ctx, cfg.FunctionName, cfg.Version)
	if err != nil {
		return fmt.Errorf("enforce mode: %w", err)
	}
	if !ok {
		d.log.Warn("enforce mode: no approved profile yet; the function runs monitored only", "function", cfg.FunctionName, "version", cfg.Version)
		return nil
	}
	spec.Enforce = &sandbox.Enforcement{Exec: exec}
	spec.Egress = narrowGrants(spec.Egress, connect)
	return nil
}

// narrowGrants keeps of grants only the destinations a profile lists
// (its connect items).
func narrowGrants(grants []egress.Grant, connect []string) []egress.Grant {
	var to []egress.Grant
	for _, d := range profile.IPDests(connect) {
		ports := egress.AnyPort
		if !d.AnyPort {
			ports = egress.PortRange{From: d.Port, To: d.Port}
		}
		to = append(to, egress.Grant{CIDR: d.Prefix, Ports: ports})
	}
	return egress.Narrow(grants, to)
}

// deniedNote reports, in the invocation's log, connection attempts the
// kernel refused since the last invocation.
func (i *instance) deniedNote(reqID string) string {
	n := i.sb.DeniedConnections()
	if n <= i.denied {
		return ""
	}
	note := fmt.Sprintf("moat: RequestId: %s: %d connection attempts to destinations this function was not granted were refused\n", reqID, n-i.denied)
	i.denied = n
	return note
}

func newInstanceID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// errInit is an instance that could not finish its init phase; doc is the
// error document for the caller.
type errInit struct {
	doc     []byte
	typ     string
	logText string
	initDur time.Duration
}

func (e *errInit) Error() string { return "init failed: " + e.typ }

// spawn starts an instance of cfg and waits until its runtime asks for the
// first invocation (the end of the init phase), at most initTimeout.
func (d *Dispatcher) spawn(ctx context.Context, cfg *registry.Config) (*instance, error) {
	start := time.Now()
	codeDir, err := d.opts.Code.Dir(ctx, cfg.CodeSha256Hex)
	if err != nil {
		return nil, fmt.Errorf("prepare code: %w", err)
	}
	vars, err := d.opts.Resolver.Environment(cfg)
	if err != nil {
		return nil, fmt.Errorf("open environment: %w", err)
	}
	id := newInstanceID()
	inst := &instance{
		id:        id,
		cfg:       cfg,
		api:       runtimeapi.New(),
		logStream: start.UTC().Format("2006/01/02") + "/[" + cfg.Version + "]" + id,
	}
	env := d.environment(cfg, vars, codeDir, inst.logStream)
	spec := sandbox.Spec{
		ID:        id,
		Bootstrap: "bootstrap",
		CodeDir:   codeDir,
		Env:       env,
		MemoryMB:  cfg.MemorySize,
		TmpMB:     cfg.EphemeralStorage,
	}
	if err := networkSpec(cfg, &spec); err != nil {
		return nil, err
	}
	if err := d.enforceSpec(ctx, cfg, &spec); err != nil {
		return nil, err
	}
	spec.Info = detect.InstanceInfo{
		Function: cfg.FunctionName,
		Version:  cfg.Version,
		Runtime:  cfg.Runtime,
		Recycle:  cfg.Sandbox != nil && cfg.Sandbox.OnDenial == registry.OnDenialRecycle,
	}
	sb, err := d.opts.Spawner.Spawn(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("spawn instance: %w", err)
	}
	inst.sb = sb
	inst.pool = d.poolFor(cfg)
	if spec.Info.Recycle && d.opts.Monitor == nil {
		// The walls still refuse; only the reaction (kill, retire) needs
		// the sensor.
		d.log.Warn("Sandbox.OnDenial recycle needs the runtime sensor, which is off on this node: refusals are not acted on",
			"function", cfg.FunctionName, "instance", id)
	}
	d.track(inst)
	inst.out = newCapture(sb.Output)
	inst.srv = &http.Server{Handler: inst.api, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = inst.srv.Serve(sb.Listener) }()
	go func() {
		<-sb.Done()
		inst.api.Close()
	}()

	timer := time.NewTimer(d.opts.InitTimeout)
	defer timer.Stop()
	select {
	case <-inst.api.Ready():
		inst.initDur = time.Since(start)
		// The handler runs on the function's CPU share, the init phase
		// had more.
		if err := sb.InitDone(); err != nil {
			inst.close()
			return nil, fmt.Errorf("spawn instance: %w", err)
		}
		return inst, nil
	case ie := <-inst.api.InitErrors():
		inst.out.sync(50 * time.Millisecond)
		text := inst.out.take()
		inst.close()
		return nil, &errInit{doc: ie.Payload, typ: ie.ErrorType, logText: text, initDur: time.Since(start)}
	case <-sb.Done():
		inst.out.sync(50 * time.Millisecond)
		text := inst.out.take()
		e := exitReason(sb)
		inst.close()
		msg := "RequestId: %s Error: Runtime exited with error: " + e
		return nil, &errInit{doc: []byte(msg), typ: exitType(sb), logText: text, initDur: time.Since(start)}
	case <-timer.C:
		inst.out.sync(50 * time.Millisecond)
		text := inst.out.take()
		inst.close()
		msg := fmt.Sprintf("RequestId: %%s Error: Init phase timed out after %.2f seconds", d.opts.InitTimeout.Seconds())
		return nil, &errInit{doc: []byte(msg), typ: "Runtime.InitTimeout", logText: text, initDur: time.Since(start)}
	case <-ctx.Done():
		inst.close()
		return nil, ctx.Err()
	}
}

// exitType is the error type of an invocation whose runtime exited: out
// of memory when the kernel's OOM killer ended it, as Lambda says.
func exitType(sb *sandbox.Instance) string {
	if sb.OOMKilled() {
		return "Runtime.OutOfMemory"
	}
	return "Runtime.ExitError"
}

// exitReason is how the runtime's exit is worded in its error message.
func exitReason(sb *sandbox.Instance) string {
	err := sb.ExitError()
	if err == nil {
		return "exit status 0"
	}
	var ee interface{ ExitCode() int }
	if errors.As(err, &ee) && ee.ExitCode() >= 0 {
		return "exit status " + strconv.Itoa(ee.ExitCode())
	}
	return err.Error() // "signal: killed"
}

// environment is the bootstrap's whole environment: the function's own
// variables, then the standard Lambda variables, which take precedence.
// Nothing of moat's own environment is passed on.
func (d *Dispatcher) environment(cfg *registry.Config, vars map[string]string, codeDir, logStream string) []string {
	env := make([]string, 0, len(vars)+20)
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	taskRoot := d.opts.TaskRoot
	if taskRoot == "" {
		taskRoot = codeDir
	}
	env = append(env,
		"AWS_LAMBDA_FUNCTION_NAME="+cfg.FunctionName,
		"AWS_LAMBDA_FUNCTION_VERSION="+cfg.Version,
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE="+strconv.Itoa(cfg.MemorySize),
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/"+cfg.FunctionName,
		"AWS_LAMBDA_LOG_STREAM_NAME="+logStream,
		"AWS_LAMBDA_INITIALIZATION_TYPE=on-demand",
		"AWS_REGION="+d.opts.Region,
		"AWS_DEFAULT_REGION="+d.opts.Region,
		"_HANDLER="+cfg.Handler,
		"LAMBDA_TASK_ROOT="+taskRoot,
		"LAMBDA_RUNTIME_DIR=/var/runtime",
		"TZ=:UTC",
		"LANG=en_US.UTF-8",
		"PATH=/usr/local/bin:/usr/bin:/bin:/opt/bin",
		"LD_LIBRARY_PATH=/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:"+taskRoot+":"+taskRoot+"/lib:/opt/lib",
	)
	return env
}

// close destroys the instance and everything it held.
func (i *instance) close() {
	i.closeOnce.Do(func() {
		i.api.Close()
		if i.srv != nil {
			_ = i.srv.Close()
		}
		if i.sb != nil {
			_ = i.sb.Close()
		}
		if i.untrack != nil {
			i.untrack()
		}
	})
}

// reportLine builds the REPORT line of an invocation.
func (i *instance) report(reqID string, dur time.Duration, status string) string {
	r := logs.Report{
		RequestID:       reqID,
		Duration:        dur,
		MemorySizeMB:    i.cfg.MemorySize,
		MaxMemoryUsedMB: i.sb.MaxMemoryMB(),
		Status:          status,
	}
	if i.invoked == 1 {
		r.InitDuration = i.initDur
	}
	return logs.ReportLine(r)
}
