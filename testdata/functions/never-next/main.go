// Command never-next is a Lambda bootstrap that starts, prints a line to
// stdout and to stderr, and then never calls the Runtime API: it blocks
// until it is killed. Tests use it for init timeouts and for instances that
// must be reaped.
package main

import (
	"fmt"
	"os"
	"time"
)

func main() {
	fmt.Fprintln(os.Stdout, "never-next: started; not calling the Runtime API")
	fmt.Fprintln(os.Stderr, "never-next: blocking until killed")
	for {
		time.Sleep(time.Hour)
	}
}
