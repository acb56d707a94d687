package cli

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"moat.dev/moat/internal/node"
)

var upCommand = &command{
	name:    "up",
	group:   groupServer,
	args:    "[flags]",
	summary: "run a moat node",
	help: `
Run a moat node: the Lambda-compatible API, the function registry, the
dispatcher and sandboxes, with storage in an embedded NATS JetStream server
under the data directory (or in the cluster given by --nats). It runs until
interrupted (SIGINT or SIGTERM), then drains running invocations.

On first start it writes API keys to <data dir>/credentials, which the other
moat commands, the AWS CLI and the AWS SDKs can use:

  AWS_SHARED_CREDENTIALS_FILE=<data dir>/credentials AWS_PROFILE=moat \
    aws lambda list-functions --endpoint-url http://127.0.0.1:9000

--examples deploys the example functions built into this binary (echo and
hello-shell) once the node is ready, unless they exist already.`,
	run: runUp,
}

func runUp(ctx context.Context, c *cmdCtx) error {
	listen := c.fs.String("listen", "127.0.0.1:9000", "API `address` to listen on")
	dataDirFlag := c.fs.String("data-dir", "", "state `directory`: credentials, keys, storage, code cache (default "+dataDirHelp+")")
	natsURL := c.fs.String("nats", "", "join the NATS cluster at `URL` instead of embedding a server")
	region := c.fs.String("region", defaultRegion, "`region` in ARNs and request signatures")
	accountID := c.fs.String("account-id", "000000000000", "account `id` in ARNs")
	idle := c.fs.Duration("idle-timeout", 5*time.Minute, "stop instances idle for this `duration`")
	maxConc := c.fs.Int("max-concurrency", 1000, "node-wide limit of `N` concurrent invocations")
	poolN := c.fs.Int("sandbox-pool", 2, "keep `N` sandboxes built ahead of cold starts (0: build each on demand)")
	grace := c.fs.Duration("shutdown-grace", 30*time.Second, "on shutdown, wait at most this `duration` for running invocations")
	weaker := c.fs.Bool("insecure-allow-weaker-isolation", false, "start even if a sandbox wall (namespaces, Landlock, seccomp, cgroups) is unavailable on this host; logged loudly")
	levelName := c.fs.String("log-level", "info", "log `level`: debug, info, warn or error")
	format := c.fs.String("log-format", "text", "log `format`: text or json")
	examples := c.fs.Bool("examples", false, "deploy the bundled example functions once ready")
	noSensor := c.fs.Bool("no-sensor", false, "run without the runtime sensor: no forensic records, profiles or alerts (status shows monitoring off)")
	learnN := c.fs.Int("learn-invocations", 100, "a new behaviour profile learns from this many `N` invocations")
	learnD := c.fs.Duration("learn-duration", 7*24*time.Hour, "or for this long (`duration`), whichever ends first")
	traceRet := c.fs.Duration("trace-retention", 30*24*time.Hour, "keep forensic records and alerts this long (`duration`)")
	webhook := c.fs.String("alert-webhook", "", "POST every alert as JSON to `URL` (retried; signed with $MOAT_ALERT_WEBHOOK_SECRET when set)")
	metrics := c.fs.String("metrics-listen", "", "serve Prometheus metrics at /metrics on `address` (no authentication)")
	urlListen := c.fs.String("url-listen", "127.0.0.1:9002", "serve function URLs on `address` (empty: none)")
	urlDomain := c.fs.String("url-domain", "localhost", "function URLs are <url-id>.lambda-url.<region>.`domain`")
	if _, err := c.parseN(0, 0); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*levelName)); err != nil {
		return usagef("--log-level %q: want debug, info, warn or error", *levelName)
	}
	if *format != "text" && *format != "json" {
		return usagef("--log-format must be text or json, not %q", *format)
	}
	if *maxConc < 1 {
		return usagef("--max-concurrency must be at least 1")
	}
	if *poolN < 0 || *poolN > 1000 {
		return usagef("--sandbox-pool must be between 0 and 1000")
	}
	if *idle <= 0 || *grace <= 0 {
		return usagef("--idle-timeout and --shutdown-grace must be positive")
	}
	if *learnN < 1 || *learnD <= 0 || *traceRet <= 0 {
		return usagef("--learn-invocations, --learn-duration and --trace-retention must be positive")
	}
	dataDir := firstOf(*dataDirFlag, defaultDataDir(c.getenv))
	if dataDir == "" {
		return usagef("no data directory: give --data-dir or set MOAT_DATA_DIR")
	}
	log := newLogger(c.stderr, level, *format)

	var wg sync.WaitGroup
	ready := func(addr string) {
		if !*examples {
			return
		}
		cfg, err := resolveClient(c.getenv, clientFlags{
			endpoint: "http://" + dialable(addr), profile: defaultProfile, dataDir: dataDir, region: *region,
		})
		if err != nil {
			log.Warn("deploy examples", "err", err)
			return
		}
		wg.Go(func() { c.deployExamples(ctx, log, cfg) })
	}
	err := c.runNode(ctx, node.Options{
		Listen:               *listen,
		DataDir:              dataDir,
		NATSURL:              *natsURL,
		Region:               *region,
		AccountID:            *accountID,
		IdleTimeout:          *idle,
		MaxConcurrency:       *maxConc,
		SandboxPool:          *poolN,
		AllowWeakerIsolation: *weaker,
		ShutdownGrace:        *grace,
		Sensor: node.SensorOptions{
			Disabled:         *noSensor,
			LearnInvocations: *learnN,
			LearnDuration:    *learnD,
			TraceRetention:   *traceRet,
			Webhook:          *webhook,
			WebhookSecret:    c.getenv("MOAT_ALERT_WEBHOOK_SECRET"),
		},
		MetricsListen: *metrics,
		URLListen:     *urlListen,
		URLDomain:     *urlDomain,
		Logger:        log,
	}, ready)
	wg.Wait()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

func newLogger(w io.Writer, level slog.Level, format string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// dialable turns a bound listen address into one a client can connect to:
// a wildcard host (0.0.0.0, ::) becomes the loopback address.
func dialable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if ip.To4() != nil {
			host = "127.0.0.1"
		} else {
			host = "::1"
		}
	}
	return net.JoinHostPort(host, port)
}
