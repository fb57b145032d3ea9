// Command draw redraws the scale curve from the points BenchmarkScaleCurve
// stored: go run ./test/bench/curve/draw docs/scale-curve.json docs/scale-curve.png
package main

import (
	"fmt"
	"os"

	"github.com/xdrive-io/xdrive/test/bench/curve"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: draw POINTS.json OUT.png")
		os.Exit(2)
	}
	points, err := curve.Read(os.Args[1])
	if err == nil {
		err = curve.Draw(os.Args[2], curve.Caption(points), points)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "draw:", err)
		os.Exit(1)
	}
}
