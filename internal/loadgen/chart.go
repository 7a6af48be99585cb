package loadgen

import (
	"errors"
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// WriteCharts draws a sweep's results as PNG charts in dir: throughput against
// concurrency, and latency percentiles against concurrency. It returns the
// files written. The results must be of one scenario.
func WriteCharts(dir string, results []*Result) ([]string, error) {
	if len(results) == 0 {
		return nil, errors.New("charts: no results")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	first := results[0]
	base := first.Scenario
	title := first.Scenario
	if first.Label != "" {
		base = first.Label + "-" + base
		title += " [" + first.Label + "]"
	}
	if first.Model == "open" {
		title += fmt.Sprintf(", open model %g/s", first.Rate)
	}
	ticks := make(plot.ConstantTicks, len(results))
	for i, r := range results {
		ticks[i] = plot.Tick{Value: float64(r.Concurrency), Label: strconv.Itoa(r.Concurrency)}
	}
	machine := fmt.Sprintf("%d cores, %s", first.Machine.Cores, first.Machine.CPU)

	tp := newChart(title+": throughput", "concurrent clients ("+machine+")", "successful operations per second", ticks)
	pts := make(plotter.XYs, len(results))
	for i, r := range results {
		pts[i] = plotter.XY{X: float64(r.Concurrency), Y: r.Throughput}
	}
	if err := addLine(tp, "throughput", pts, 0); err != nil {
		return nil, err
	}
	lat := newChart(title+": latency", "concurrent clients ("+machine+")", "latency of successful operations (ms)", ticks)
	for i, q := range []struct {
		name string
		get  func(Summary) float64
	}{
		{"p50", func(s Summary) float64 { return s.P50 }},
		{"p90", func(s Summary) float64 { return s.P90 }},
		{"p99", func(s Summary) float64 { return s.P99 }},
	} {
		pts := make(plotter.XYs, len(results))
		for j, r := range results {
			pts[j] = plotter.XY{X: float64(r.Concurrency), Y: q.get(r.Latency)}
		}
		if err := addLine(lat, q.name, pts, i); err != nil {
			return nil, err
		}
	}
	var files []string
	for _, c := range []struct {
		p    *plot.Plot
		name string
	}{{tp, base + "-throughput.png"}, {lat, base + "-latency.png"}} {
		path := filepath.Join(dir, c.name)
		if err := c.p.Save(7*vg.Inch, 4.5*vg.Inch, path); err != nil {
			return files, fmt.Errorf("charts: %w", err)
		}
		files = append(files, path)
	}
	return files, nil
}

func newChart(title, x, y string, ticks plot.ConstantTicks) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Y.Min = 0
	if len(ticks) > 1 {
		p.X.Scale = plot.LogScale{}
	}
	p.X.Tick.Marker = ticks
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	p.Legend.Left = true
	return p
}

var palette = []color.Color{
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
}

func addLine(p *plot.Plot, name string, pts plotter.XYs, i int) error {
	l, s, err := plotter.NewLinePoints(pts)
	if err != nil {
		return err
	}
	c := palette[i%len(palette)]
	l.Color = c
	l.Width = vg.Points(1.5)
	s.Color = c
	s.Shape = draw.CircleGlyph{}
	s.Radius = vg.Points(2.5)
	p.Add(l, s)
	p.Legend.Add(name, l, s)
	return nil
}
