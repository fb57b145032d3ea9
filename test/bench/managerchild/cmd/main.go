// Command managerchild is the manager process of the memory benchmarks
// (test/bench/managerchild): managerchild SPEC.json.
package main

import (
	"fmt"
	"os"

	"github.com/xdrive-io/xdrive/test/bench/managerchild"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: managerchild SPEC.json")
		os.Exit(2)
	}
	os.Exit(managerchild.Run(os.Args[1]))
}
