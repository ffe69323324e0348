package plot

import (
	"bufio"
	"errors"
	"fmt"
	"html"
	"io"
	"math"
	"strconv"
	"strings"
)

// Series is one line: Y[i] at X[i]. X and Y must have the same length.
type Series struct {
	Name string
	X, Y []float64
}

// Chart is one panel of a plot. The zero value is an empty chart.
type Chart struct {
	Title  string
	XLabel string
	YLabel string
	// YFormat formats y tick labels (nil: a short decimal).
	YFormat func(float64) string
	// YFromZero starts the y axis at 0 (shares, durations) instead of the data's
	// minimum.
	YFromZero bool
	Series    []Series
}

// Geometry of a chart, in SVG user units (pixels).
const (
	width        = 960
	chartHeight  = 320
	marginLeft   = 80
	marginRight  = 200 // the legend
	marginTop    = 36
	marginBottom = 48
	ticks        = 5
)

// palette tells up to 10 series apart; more repeat it.
var palette = [...]string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"}

// ErrMismatch is returned by Write for a series whose X and Y differ in length.
var ErrMismatch = errors.New("plot: series with different numbers of x and y values")

// Write writes charts, stacked, as one SVG document titled title.
func Write(w io.Writer, title string, charts ...Chart) error {
	for _, c := range charts {
		for _, s := range c.Series {
			if len(s.X) != len(s.Y) {
				return fmt.Errorf("%w: %q has %d and %d", ErrMismatch, s.Name, len(s.X), len(s.Y))
			}
		}
	}
	bw := bufio.NewWriter(w)
	h := len(charts) * chartHeight
	fmt.Fprintf(bw, `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">
<title>%s</title>
<rect width="100%%" height="100%%" fill="white"/>
`, width, h, width, h, esc(title))
	for i := range charts {
		writeChart(bw, &charts[i], i*chartHeight)
	}
	bw.WriteString("</svg>\n")
	return bw.Flush()
}

// bounds returns the range of the values, widened when empty or flat.
func bounds(c *Chart) (x0, x1, y0, y1 float64) {
	x0, y0 = math.Inf(1), math.Inf(1)
	x1, y1 = math.Inf(-1), math.Inf(-1)
	for _, s := range c.Series {
		for i := range s.X {
			if math.IsNaN(s.X[i]) || math.IsNaN(s.Y[i]) || math.IsInf(s.X[i], 0) || math.IsInf(s.Y[i], 0) {
				continue
			}
			x0, x1 = min(x0, s.X[i]), max(x1, s.X[i])
			y0, y1 = min(y0, s.Y[i]), max(y1, s.Y[i])
		}
	}
	if x0 > x1 {
		x0, x1 = 0, 1
	}
	if y0 > y1 {
		y0, y1 = 0, 1
	}
	if c.YFromZero {
		y0 = min(y0, 0)
	}
	if x1 == x0 {
		x1 = x0 + 1
	}
	if y1 == y0 {
		y1 = y0 + 1
	}
	return x0, x1, y0, y1
}

func writeChart(w *bufio.Writer, c *Chart, top int) {
	x0, x1, y0, y1 := bounds(c)
	pw, ph := float64(width-marginLeft-marginRight), float64(chartHeight-marginTop-marginBottom)
	px := func(x float64) float64 { return marginLeft + (x-x0)/(x1-x0)*pw }
	py := func(y float64) float64 { return float64(top+marginTop) + ph - (y-y0)/(y1-y0)*ph }
	yfmt := c.YFormat
	if yfmt == nil {
		yfmt = short
	}
	fmt.Fprintf(w, "<g class=\"chart\" data-title=\"%s\">\n", esc(c.Title))
	fmt.Fprintf(w, "<text x=\"%d\" y=\"%d\" font-size=\"14\" font-weight=\"bold\">%s</text>\n", marginLeft, top+22, esc(c.Title))
	// Axes, grid and ticks.
	fmt.Fprintf(w, "<rect x=\"%d\" y=\"%d\" width=\"%g\" height=\"%g\" fill=\"none\" stroke=\"#333\"/>\n", marginLeft, top+marginTop, pw, ph)
	for i := 0; i <= ticks; i++ {
		fx, fy := x0+(x1-x0)*float64(i)/ticks, y0+(y1-y0)*float64(i)/ticks
		fmt.Fprintf(w, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", px(fx), top+marginTop, px(fx), float64(top+marginTop)+ph)
		fmt.Fprintf(w, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n", px(fx), float64(top+marginTop)+ph+16, esc(short(fx)))
		fmt.Fprintf(w, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", marginLeft, py(fy), float64(marginLeft)+pw, py(fy))
		fmt.Fprintf(w, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", marginLeft-6, py(fy)+4, esc(yfmt(fy)))
	}
	fmt.Fprintf(w, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n", float64(marginLeft)+pw/2, float64(top+marginTop)+ph+36, esc(c.XLabel))
	fmt.Fprintf(w, "<text transform=\"translate(16 %.1f) rotate(-90)\" text-anchor=\"middle\">%s</text>\n", float64(top+marginTop)+ph/2, esc(c.YLabel))
	for i, s := range c.Series {
		color := palette[i%len(palette)]
		var pts strings.Builder
		for k := range s.X {
			if math.IsNaN(s.X[k]) || math.IsNaN(s.Y[k]) || math.IsInf(s.X[k], 0) || math.IsInf(s.Y[k], 0) {
				continue
			}
			if pts.Len() > 0 {
				pts.WriteByte(' ')
			}
			fmt.Fprintf(&pts, "%.1f,%.1f", px(s.X[k]), py(s.Y[k]))
		}
		fmt.Fprintf(w, "<polyline class=\"series\" data-series=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"%s\"/>\n", esc(s.Name), color, pts.String())
		ly := top + marginTop + 14 + 18*i
		lx := width - marginRight + 12
		fmt.Fprintf(w, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"3\"/>\n", lx, ly-4, lx+18, ly-4, color)
		fmt.Fprintf(w, "<text x=\"%d\" y=\"%d\">%s</text>\n", lx+24, ly, esc(s.Name))
	}
	w.WriteString("</g>\n")
}

// short formats a tick value in at most a few significant digits: 1.5k, 2M, 0.25.
func short(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1e9:
		return strconv.FormatFloat(v/1e9, 'g', 3, 64) + "G"
	case a >= 1e6:
		return strconv.FormatFloat(v/1e6, 'g', 3, 64) + "M"
	case a >= 1e3:
		return strconv.FormatFloat(v/1e3, 'g', 3, 64) + "k"
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

// Percent formats a share (0..1) as a percentage, for Chart.YFormat.
func Percent(v float64) string { return strconv.FormatFloat(100*v, 'g', 3, 64) + "%" }

// esc escapes text for SVG content and attribute values.
func esc(s string) string { return html.EscapeString(s) }
