package plot

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
)

// svgDoc is what the tests read back from a plot.
type svgDoc struct {
	Title  string `xml:"title"`
	Charts []struct {
		Title  string `xml:"data-title,attr"`
		Series []struct {
			Class  string `xml:"class,attr"`
			Name   string `xml:"data-series,attr"`
			Points string `xml:"points,attr"`
		} `xml:"polyline"`
	} `xml:"g"`
}

// parse decodes an SVG, failing on anything that is not well-formed XML, and
// checks it refers to nothing outside itself.
func parse(t *testing.T, b []byte) svgDoc {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, b)
		}
		if se, ok := tok.(xml.StartElement); ok {
			switch se.Name.Local {
			case "script", "image", "use", "foreignObject", "style", "link":
				t.Errorf("element <%s>: a plot must be self-contained", se.Name.Local)
			}
			for _, a := range se.Attr {
				if a.Name.Local == "href" || strings.Contains(a.Value, "url(") {
					t.Errorf("attribute %s=%q refers outside the document", a.Name.Local, a.Value)
				}
			}
		}
	}
	var doc svgDoc
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// points returns a polyline's points.
func points(t *testing.T, s string) [][2]float64 {
	t.Helper()
	var out [][2]float64
	for _, p := range strings.Fields(s) {
		x, y, ok := strings.Cut(p, ",")
		fx, err1 := strconv.ParseFloat(x, 64)
		fy, err2 := strconv.ParseFloat(y, 64)
		if !ok || err1 != nil || err2 != nil {
			t.Fatalf("bad point %q", p)
		}
		out = append(out, [2]float64{fx, fy})
	}
	return out
}

func TestWrite(t *testing.T) {
	var b bytes.Buffer
	err := Write(&b, "replay <trace & co>",
		Chart{Title: "share", YFromZero: true, YFormat: Percent, Series: []Series{
			{Name: "198.18.0.5", X: []float64{0, 1, 2}, Y: []float64{0.5, 0.25, 0.75}},
			{Name: "198.18.0.6", X: []float64{0, 1, 2}, Y: []float64{0.5, 0.75, math.NaN()}},
		}},
		Chart{Title: "ns/packet", Series: []Series{{Name: "batch", X: []float64{1, 2}, Y: []float64{100, 100}}}},
	)
	if err != nil {
		t.Fatal(err)
	}
	doc := parse(t, b.Bytes())
	if doc.Title != "replay <trace & co>" {
		t.Errorf("title %q", doc.Title)
	}
	if len(doc.Charts) != 2 || doc.Charts[0].Title != "share" || doc.Charts[1].Title != "ns/packet" {
		t.Fatalf("charts %+v", doc.Charts)
	}
	s := doc.Charts[0].Series
	if len(s) != 2 || s[0].Name != "198.18.0.5" || s[1].Name != "198.18.0.6" {
		t.Fatalf("series %+v", s)
	}
	p0 := points(t, s[0].Points)
	if len(p0) != 3 {
		t.Fatalf("series 0 has %d points, want 3", len(p0))
	}
	if p1 := points(t, s[1].Points); len(p1) != 2 {
		t.Errorf("a NaN value must be left out: %d points", len(p1))
	}
	// x grows to the right, a larger y is higher (smaller SVG y), within the chart.
	if !(p0[0][0] < p0[1][0] && p0[1][0] < p0[2][0]) || !(p0[2][1] < p0[0][1] && p0[0][1] < p0[1][1]) {
		t.Errorf("points not placed by value: %v", p0)
	}
	for _, p := range p0 {
		if p[0] < marginLeft || p[0] > width-marginRight || p[1] < marginTop || p[1] > chartHeight-marginBottom {
			t.Errorf("point %v outside the first chart's plot area", p)
		}
	}
	// A flat series is drawn, not divided by zero.
	for _, p := range points(t, doc.Charts[1].Series[0].Points) {
		if math.IsNaN(p[1]) || p[1] < chartHeight || p[1] > 2*chartHeight {
			t.Errorf("flat series point %v outside the second chart", p)
		}
	}
}

func TestWriteEmptyAndMismatch(t *testing.T) {
	var b bytes.Buffer
	if err := Write(&b, "empty", Chart{Title: "nothing"}); err != nil {
		t.Fatal(err)
	}
	parse(t, b.Bytes())
	err := Write(io.Discard, "bad", Chart{Series: []Series{{Name: "x", X: []float64{1}, Y: nil}}})
	if !errors.Is(err, ErrMismatch) {
		t.Errorf("mismatched series: %v, want ErrMismatch", err)
	}
}

func TestShort(t *testing.T) {
	for in, want := range map[float64]string{0: "0", 0.25: "0.25", 1500: "1.5k", 25000: "25k", 2e6: "2M", 3.5e9: "3.5G"} {
		if got := short(in); got != want {
			t.Errorf("short(%v) = %q, want %q", in, got, want)
		}
	}
}
