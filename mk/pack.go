//go:build ignore

// pack zips a function directory the way moat deploy does (deterministic,
// exec bits kept): go run mk/pack.go DIR OUT.zip
package main

import (
	"fmt"
	"os"

	"moat.dev/moat/internal/codepkg"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: go run mk/pack.go DIR OUT.zip")
		os.Exit(2)
	}
	b, err := codepkg.Zip(os.Args[1])
	if err == nil {
		err = os.WriteFile(os.Args[2], b, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pack:", err)
		os.Exit(1)
	}
}
