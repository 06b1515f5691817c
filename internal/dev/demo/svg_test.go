package demo

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// svgElements parses an SVG as XML and returns, per element name, the attributes of each element, and
// the text of every <text>.
func svgElements(t *testing.T, b []byte) (map[string][]map[string]string, []string) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	els := map[string][]map[string]string{}
	var texts []string
	inText := false
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, b)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			attrs := map[string]string{}
			for _, a := range tok.Attr {
				attrs[a.Name.Local] = a.Value
			}
			els[tok.Name.Local] = append(els[tok.Name.Local], attrs)
			inText = tok.Name.Local == "text"
		case xml.CharData:
			if inText {
				texts = append(texts, string(tok))
			}
		case xml.EndElement:
			inText = false
		}
	}
	return els, texts
}

func TestWriteSVG(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteSVG(&buf, loop, "a <title> & more", "sub"); err != nil {
		t.Fatal(err)
	}
	els, texts := svgElements(t, buf.Bytes())
	if root := els["svg"]; len(root) != 1 || root[0]["width"] != "960" {
		t.Fatalf("root element: %v", root)
	}
	points := map[string]int{}
	for _, pl := range els["polyline"] {
		points[pl["id"]] = len(strings.Fields(pl["points"]))
	}
	// The backlog has a point per observation; the steps two per observation but the first.
	if diff := cmp.Diff(points, map[string]int{"backlog": 8, "consumers": 15, "replicas": 15, "hpa-desired": 15}); diff != "" {
		t.Errorf("polylines' point counts (-got +want):\n%s", diff)
	}
	for _, want := range []string{"a <title> & more", "ebb: Activated", "ebb: CooledDown", "cooldown", "400", "backlog (messages)", "replicas", "simulated consumers"} {
		found := false
		for _, text := range texts {
			found = found || text == want
		}
		if !found {
			t.Errorf("no text %q in %q", want, texts)
		}
	}
	if got := len(els["rect"]); got != 3 { // background, plot frame, one cooldown
		t.Errorf("%d rects, want 3 (background, frame, the cooldown from 5s to 7s)", got)
	}
}

// With pods, the picture has their step beside the replicas, and the legend says what the consumers are.
func TestWriteSVGPods(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteSVG(&buf, podLoop, "t", "s"); err != nil {
		t.Fatal(err)
	}
	els, texts := svgElements(t, buf.Bytes())
	var ids []string
	for _, pl := range els["polyline"] {
		ids = append(ids, pl["id"])
	}
	if diff := cmp.Diff(ids, []string{"backlog", "consumers", "pods", "replicas", "hpa-desired"}); diff != "" {
		t.Errorf("polylines (-got +want):\n%s", diff)
	}
	for _, text := range texts {
		if text == "simulated consumers" {
			t.Errorf("the legend of a timeline with pods says %q", text)
		}
	}
	for _, want := range []string{"pods Running", "group members"} {
		if !slices.Contains(texts, want) {
			t.Errorf("no text %q in %q", want, texts)
		}
	}
}

// An empty timeline still makes a valid picture (a demo that failed at once still writes one).
func TestWriteSVGEmpty(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteSVG(&buf, nil, "t", "s"); err != nil {
		t.Fatal(err)
	}
	svgElements(t, buf.Bytes())
}

func TestAxis(t *testing.T) {
	for _, tc := range []struct{ v, top, step float64 }{
		{50.3, 60, 20}, {4000, 4000, 1000}, {10, 10, 2}, {1, 1, 0.2}, {123, 150, 50}, {7, 8, 2},
	} {
		top, step := axis(tc.v)
		if top != tc.top || step != tc.step {
			t.Errorf("axis(%v) = %v, %v; want %v, %v", tc.v, top, step, tc.top, tc.step)
		}
	}
}
