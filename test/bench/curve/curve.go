// Package curve records and draws BenchmarkScaleCurve's figures (make
// bench-scale): by fleet size, the time to converge, the manager's peak
// RSS and the EC2 calls, as docs/scale-curve.png.
package curve

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Point is one fleet size's run.
type Point struct {
	// Objects are the drives and Workstations, half each.
	Objects         int
	ConvergeSeconds float64
	PeakRSSMiB      float64
	EC2Calls        int
	// WorkstationStatusWrites and XDriveStatusWrites are per object, medians.
	WorkstationStatusWrites, XDriveStatusWrites int
	// Load is the machine's 1-minute load average when the fleet was Ready.
	Load float64
}

// Write stores the points as JSON.
func Write(path string, points []Point) error {
	data, err := json.MarshalIndent(points, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

// Read loads points that Write stored.
func Read(path string) ([]Point, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var points []Point
	return points, json.Unmarshal(data, &points)
}

// Caption says what the points measured, with the machine's load.
func Caption(points []Point) string {
	loads := make([]string, len(points))
	for i, p := range points {
		loads[i] = fmt.Sprintf("%.0f", p.Load)
	}
	return fmt.Sprintf("BenchmarkScaleFake's fleet on the fake EC2, 2 shared cores, load %s (1-minute average at each size's end)",
		strings.Join(loads, ", "))
}

// Draw renders three panels side by side, each against the fleet size:
// seconds to converge, peak RSS and EC2 calls; note is the caption.
func Draw(path, note string, points []Point) error {
	panels := []struct {
		title, unit string
		value       func(Point) float64
	}{
		{"Time to converge", "seconds", func(p Point) float64 { return p.ConvergeSeconds }},
		{"Manager peak RSS", "MiB", func(p Point) float64 { return p.PeakRSSMiB }},
		{"EC2 calls to converge", "calls", func(p Point) float64 { return float64(p.EC2Calls) }},
	}
	plots := make([][]*plot.Plot, 1)
	for _, panel := range panels {
		p := plot.New()
		p.Title.Text = panel.title
		p.X.Label.Text = "objects (drives + Workstations)"
		p.Y.Label.Text = panel.unit
		p.Y.Min = 0
		xy := make(plotter.XYs, len(points))
		for i, pt := range points {
			xy[i].X, xy[i].Y = float64(pt.Objects), panel.value(pt)
		}
		line, dots, err := plotter.NewLinePoints(xy)
		if err != nil {
			return fmt.Errorf("plot %s: %w", panel.title, err)
		}
		p.Add(line, dots, plotter.NewGrid())
		labels, err := plotter.NewLabels(plotter.XYLabels{XYs: xy, Labels: labelsOf(xy)})
		if err != nil {
			return fmt.Errorf("label %s: %w", panel.title, err)
		}
		p.Add(labels)
		plots[0] = append(plots[0], p)
	}
	const width, height = 15 * vg.Inch, 4.5 * vg.Inch
	img := vgimg.New(width, height)
	dc := draw.New(img)
	caption := plot.New()
	caption.Title.Text = note
	caption.HideAxes()
	top, body := splitTop(dc, 0.4*vg.Inch)
	caption.Draw(top)
	tiles := draw.Tiles{Rows: 1, Cols: len(panels), PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 2,
		PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 4}
	canvases := plot.Align(plots, tiles, body)
	for i := range plots[0] {
		plots[0][i].Draw(canvases[0][i])
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		_ = f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

func labelsOf(xy plotter.XYs) []string {
	out := make([]string, len(xy))
	for i, p := range xy {
		out[i] = fmt.Sprintf("%.0f", p.Y)
	}
	return out
}

// splitTop cuts a strip of height h off the top of c.
func splitTop(c draw.Canvas, h vg.Length) (top, rest draw.Canvas) {
	top, rest = c, c
	top.Min.Y = c.Max.Y - h
	rest.Max.Y = c.Max.Y - h
	return top, rest
}
