package harness

import (
	"encoding/csv"
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// columns of the table, in order: a system in a mode.
var columns = []struct{ system, mode, title string }{
	{"shoal", ModeInProcess, "Shoal, one process"},
	{"shoal", ModeProcesses, "Shoal, processes"},
	{"serf", ModeProcesses, "Serf, processes"},
}

// row is one line of the table: a figure at one N, for every column.
type row struct {
	scenario, stat, unit string
	n                    int
	vals                 []float64 // NaN where not measured
	note                 string
}

var scenarioOrder = []string{"convergence", "burst", "leave", "crash", "bytes-idle", "bytes-churn", "agent-rss", "catalog-memory", "catalog-rss", "api"}

func (rep *Report) rows() []row {
	type key struct {
		scenario, stat string
		n              int
	}
	idx := map[key]int{}
	var rows []row
	for _, r := range rep.Results {
		k := key{r.Scenario, r.Stat, r.N}
		i, ok := idx[k]
		if !ok {
			vals := make([]float64, len(columns))
			for j := range vals {
				vals[j] = math.NaN()
			}
			i = len(rows)
			idx[k] = i
			rows = append(rows, row{scenario: r.Scenario, stat: r.Stat, unit: r.Unit, n: r.N, vals: vals, note: r.Note})
		}
		for j, c := range columns {
			if c.system == r.System && c.mode == r.Mode {
				rows[i].vals[j] = r.Value
			}
		}
	}
	order := func(s string) int {
		if i := slices.Index(scenarioOrder, s); i >= 0 {
			return i
		}
		return len(scenarioOrder)
	}
	slices.SortStableFunc(rows, func(a, b row) int {
		if d := order(a.scenario) - order(b.scenario); d != 0 {
			return d
		}
		return a.n - b.n
	})
	return rows
}

// ratio is Shoal's figure over Serf's, both as processes; NaN without both.
func (r row) ratio() float64 {
	return r.vals[1] / r.vals[2]
}

func format(v float64) string {
	switch {
	case math.IsNaN(v):
		return "–"
	case v >= 100:
		return strconv.FormatFloat(math.Round(v), 'f', -1, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

// WriteTable prints the results as a table, one line per figure and N,
// with a column per system and mode and Shoal's ratio to Serf. markdown
// selects a Markdown table instead of aligned text.
func (rep *Report) WriteTable(w io.Writer, markdown bool) error {
	head := []string{"scenario", "stat", "N", "unit"}
	for _, c := range columns {
		head = append(head, c.title)
	}
	head = append(head, "Shoal/Serf")
	lines := [][]string{head}
	for _, r := range rep.rows() {
		line := []string{r.scenario, r.stat, strconv.Itoa(r.n), r.unit}
		for _, v := range r.vals {
			line = append(line, format(v))
		}
		ratio := "–"
		if q := r.ratio(); !math.IsNaN(q) && !math.IsInf(q, 0) {
			ratio = strconv.FormatFloat(q, 'g', 3, 64) + "×"
		}
		lines = append(lines, append(line, ratio))
	}
	var b strings.Builder
	if markdown {
		for i, l := range lines {
			b.WriteString("| " + strings.Join(l, " | ") + " |\n")
			if i == 0 {
				b.WriteString(strings.Repeat("|---", len(l)) + "|\n")
			}
		}
	} else {
		fmt.Fprintf(&b, "%s\n%s, took %s\n\n", rep.Machine, rep.Started.UTC().Format("2006-01-02 15:04 MST"), rep.Took.Round(1e9))
		widths := make([]int, len(head))
		for _, l := range lines {
			for i, cell := range l {
				widths[i] = max(widths[i], len([]rune(cell)))
			}
		}
		for _, l := range lines {
			for i, cell := range l {
				pad := widths[i] - len([]rune(cell))
				if i >= 2 {
					b.WriteString(strings.Repeat(" ", pad) + cell)
				} else {
					b.WriteString(cell + strings.Repeat(" ", pad))
				}
				b.WriteString("  ")
			}
			b.WriteString("\n")
		}
	}
	for _, s := range rep.Skipped {
		fmt.Fprintf(&b, "\nleft out: %s\n", s)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteCSV writes every result, one per line.
func (rep *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"scenario", "system", "mode", "n", "stat", "value", "unit", "samples", "note"})
	for _, r := range rep.Results {
		cw.Write([]string{r.Scenario, r.System, r.Mode, strconv.Itoa(r.N), r.Stat,
			strconv.FormatFloat(r.Value, 'f', -1, 64), r.Unit, strconv.Itoa(r.Samples), r.Note})
	}
	cw.Flush()
	return cw.Error()
}

// plots are the figures drawn against N, one SVG each.
var plots = []struct{ scenario, title, unit string }{
	{"convergence", "A change served by every agent", "ms"},
	{"burst", "1,000 registrations served by every agent", "ms"},
	{"leave", "A graceful leave seen by every agent", "ms"},
	{"crash", "A crash seen by every agent", "ms"},
	{"bytes-idle", "Gossip traffic, idle", "bytes per agent per second"},
	{"bytes-churn", "Gossip traffic under churn", "bytes per agent per second"},
}

// WriteFiles writes results.csv, results.md and one SVG plot per
// scenario measured into dir, and returns the files written.
func (rep *Report) WriteFiles(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("output directory: %w", err)
	}
	var files []string
	write := func(name string, fn func(io.Writer) error) error {
		path := filepath.Join(dir, name)
		f, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("create %s: %w", path, err)
		}
		if err := fn(f); err != nil {
			f.Close()
			return fmt.Errorf("write %s: %w", path, err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		files = append(files, path)
		return nil
	}
	if err := write("results.csv", rep.WriteCSV); err != nil {
		return files, err
	}
	if err := write("results.md", func(w io.Writer) error { return rep.WriteTable(w, true) }); err != nil {
		return files, err
	}
	for _, p := range plots {
		series := rep.series(p.scenario)
		if len(series) == 0 {
			continue
		}
		err := write(p.scenario+".svg", func(w io.Writer) error { return plotSVG(w, p.title, p.unit, series) })
		if err != nil {
			return files, err
		}
	}
	return files, nil
}

type point struct{ x, y float64 }

type series struct {
	name   string
	points []point
	dashed bool
}

// series gathers a scenario's figures by system, mode and statistic.
func (rep *Report) series(scenario string) []series {
	var out []series
	find := func(name string) *series {
		for i := range out {
			if out[i].name == name {
				return &out[i]
			}
		}
		out = append(out, series{name: name})
		return &out[len(out)-1]
	}
	for _, r := range rep.Results {
		if r.Scenario != scenario || r.Value <= 0 || r.Stat == "max" {
			continue
		}
		name := r.System + ", " + r.Mode
		if r.Stat != "mean" && r.Stat != "all-visible" {
			name += ", " + r.Stat
		}
		s := find(name)
		s.dashed = r.Stat == "p99"
		s.points = append(s.points, point{float64(r.N), r.Value})
	}
	for i := range out {
		slices.SortFunc(out[i].points, func(a, b point) int { return int(a.x - b.x) })
	}
	return out
}

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"}

// plotSVG draws series against N on log-log axes.
func plotSVG(w io.Writer, title, unit string, ss []series) error {
	const W, H, left, right, top, bottom = 720.0, 420.0, 70.0, 230.0, 40.0, 50.0
	pw, ph := W-left-right, H-top-bottom
	xmin, xmax := math.Inf(1), math.Inf(-1)
	ymin, ymax := math.Inf(1), math.Inf(-1)
	for _, s := range ss {
		for _, p := range s.points {
			xmin, xmax = min(xmin, p.x), max(xmax, p.x)
			ymin, ymax = min(ymin, p.y), max(ymax, p.y)
		}
	}
	lx0, lx1 := math.Log2(xmin), math.Log2(xmax)
	if lx1-lx0 < 1 {
		lx0, lx1 = lx0-0.5, lx1+0.5
	}
	ly0, ly1 := math.Floor(math.Log10(ymin)), math.Ceil(math.Log10(ymax))
	if ly1 == ly0 {
		ly1++
	}
	X := func(x float64) float64 { return left + (math.Log2(x)-lx0)/(lx1-lx0)*pw }
	Y := func(y float64) float64 { return top + ph - (math.Log10(y)-ly0)/(ly1-ly0)*ph }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%g" height="%g" viewBox="0 0 %g %g" font-family="sans-serif" font-size="12">`+"\n", W, H, W, H)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%g" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", left, html.EscapeString(title))
	// Decades on y, powers of two on x.
	for e := ly0; e <= ly1; e++ {
		y := Y(math.Pow(10, e))
		fmt.Fprintf(&b, `<line x1="%g" y1="%.1f" x2="%g" y2="%.1f" stroke="#ddd"/>`+"\n", left, y, left+pw, y)
		fmt.Fprintf(&b, `<text x="%g" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`+"\n", left-6, y, strconv.FormatFloat(math.Pow(10, e), 'g', -1, 64))
	}
	for e := math.Ceil(lx0); e <= lx1; e++ {
		x := X(math.Pow(2, e))
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%g" x2="%.1f" y2="%g" stroke="#ddd"/>`+"\n", x, top, x, top+ph)
		fmt.Fprintf(&b, `<text x="%.1f" y="%g" text-anchor="middle">%g</text>`+"\n", x, top+ph+18, math.Pow(2, e))
	}
	fmt.Fprintf(&b, `<rect x="%g" y="%g" width="%g" height="%g" fill="none" stroke="#333"/>`+"\n", left, top, pw, ph)
	fmt.Fprintf(&b, `<text x="%g" y="%g" text-anchor="middle">agents (N)</text>`+"\n", left+pw/2, H-10)
	fmt.Fprintf(&b, `<text transform="translate(16 %g) rotate(-90)" text-anchor="middle">%s (log scale)</text>`+"\n", top+ph/2, html.EscapeString(unit))
	for i, s := range ss {
		color := palette[i%len(palette)]
		dash := ""
		if s.dashed {
			dash = ` stroke-dasharray="6 4"`
		}
		var pts []string
		for _, p := range s.points {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", X(p.x), Y(p.y)))
		}
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", strings.Join(pts, " "), color, dash)
		for _, p := range s.points {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"><title>%s: N=%g, %s</title></circle>`+"\n",
				X(p.x), Y(p.y), color, html.EscapeString(s.name), p.x, format(p.y))
		}
		ly := top + 10 + float64(i)*20
		fmt.Fprintf(&b, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="%s" stroke-width="2"%s/>`+"\n", left+pw+14, ly, left+pw+40, ly, color, dash)
		fmt.Fprintf(&b, `<text x="%g" y="%g" dominant-baseline="middle">%s</text>`+"\n", left+pw+46, ly, html.EscapeString(s.name))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}
