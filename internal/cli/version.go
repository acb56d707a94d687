package cli

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is moat's version, set at link time with
// -ldflags "-X moat.dev/moat/internal/cli.Version=v1.2.3"; otherwise the
// module version from the build info, or "dev".
var Version = ""

func version() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

var versionCommand = &command{
	name:    "version",
	group:   groupOther,
	args:    "",
	summary: "print moat's version",
	help:    "Print moat's version and the Go toolchain and platform it was built for.",
	run: func(ctx context.Context, c *cmdCtx) error {
		if _, err := c.parseN(0, 0); err != nil {
			return err
		}
		_, err := fmt.Fprintf(c.stdout, "moat %s (%s %s/%s)\n", version(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return err
	},
}
