package harness

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/xml"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testLogger sends the harness's progress to the test log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// TestQuickRun is the harness's quick mode, N = 8: every scenario runs
// against real agents, in this process and as processes, and Serf beside
// them when it can be installed; the figures must be there and make sense.
func TestQuickRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts some 20 agents and builds two binaries")
	}
	o := Quick()
	o.WorkDir = t.TempDir()
	o.Log = testLogger(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	rep, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	var table bytes.Buffer
	if err := rep.WriteTable(&table, false); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", table.String())

	get := func(scenario, system, mode, stat string) Result {
		t.Helper()
		for _, r := range rep.Results {
			if r.Scenario == scenario && r.System == system && r.Mode == mode && r.Stat == stat {
				return r
			}
		}
		t.Fatalf("no %s %s of %s, %s", scenario, stat, system, mode)
		return Result{}
	}
	skipped := strings.Join(rep.Skipped, "; ")
	systems := []struct{ system, mode string }{{"shoal", ModeInProcess}, {"shoal", ModeProcesses}}
	if strings.Contains(skipped, "Serf") {
		t.Logf("Serf left out: %s", skipped)
	} else {
		systems = append(systems, struct{ system, mode string }{"serf", ModeProcesses})
	}
	for _, s := range systems {
		p50 := get("convergence", s.system, s.mode, "p50")
		p99 := get("convergence", s.system, s.mode, "p99")
		if p50.Samples != o.Repeats || p50.Value <= 0 || p50.Value > p99.Value {
			t.Errorf("%s, %s: convergence p50 %v ms over %d samples, p99 %v ms", s.system, s.mode, p50.Value, p50.Samples, p99.Value)
		}
		for _, kind := range []string{"leave", "crash"} {
			if r := get(kind, s.system, s.mode, "p50"); r.Value <= 0 || r.Samples != o.FailRepeats {
				t.Errorf("%s, %s: %s %v ms over %d samples", s.system, s.mode, kind, r.Value, r.Samples)
			}
		}
		// A crash is found by failure detection (a probe must go
		// unanswered), a leave is announced: a crash takes longer.
		if c, l := get("crash", s.system, s.mode, "p50"), get("leave", s.system, s.mode, "p50"); c.Value <= l.Value {
			t.Errorf("%s, %s: crash seen after %v ms, no later than a leave (%v ms)", s.system, s.mode, c.Value, l.Value)
		}
		if !strings.Contains(skipped, "gossip bytes") {
			idle := get("bytes-idle", s.system, s.mode, "mean")
			churn := get("bytes-churn", s.system, s.mode, "mean")
			if idle.Value <= 0 || churn.Value <= idle.Value {
				t.Errorf("%s, %s: gossip %v B/node/s idle, %v under churn", s.system, s.mode, idle.Value, churn.Value)
			}
		}
	}
	for _, mode := range o.Modes {
		if r := get("burst", "shoal", mode, "all-visible"); r.Value <= 0 {
			t.Errorf("burst, %s: %v ms", mode, r.Value)
		}
	}
	if r := get("api", "shoal", ModeProcesses, "req/s"); r.Value <= 0 {
		t.Errorf("local API: %v req/s", r.Value)
	}

	dir := t.TempDir()
	files, err := rep.WriteFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	checkFiles(t, rep, dir, files)
}

// checkFiles reads back what WriteFiles wrote: the CSV has every result,
// every SVG is well-formed XML with a line per series.
func checkFiles(t *testing.T, rep *Report, dir string, files []string) {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "results.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("results.csv: %v", err)
	}
	if len(recs) != len(rep.Results)+1 {
		t.Errorf("results.csv has %d lines for %d results", len(recs), len(rep.Results))
	}
	svgs := 0
	for _, path := range files {
		if !strings.HasSuffix(path, ".svg") {
			continue
		}
		svgs++
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		lines := 0
		d := xml.NewDecoder(bytes.NewReader(b))
		for {
			tok, err := d.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s is not well-formed: %v", path, err)
			}
			if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "polyline" {
				lines++
			}
		}
		scenario := strings.TrimSuffix(filepath.Base(path), ".svg")
		if want := len(rep.series(scenario)); lines != want {
			t.Errorf("%s draws %d lines for %d series", path, lines, want)
		}
	}
	if svgs == 0 {
		t.Error("no plot written")
	}
}

// TestReportRatios checks the table against figures given by hand: Shoal's
// column over Serf's, a dash where a figure is missing.
func TestReportRatios(t *testing.T) {
	rep := &Report{Results: []Result{
		{Scenario: "convergence", System: "shoal", Mode: ModeProcesses, N: 8, Stat: "p50", Value: 5, Unit: "ms"},
		{Scenario: "convergence", System: "serf", Mode: ModeProcesses, N: 8, Stat: "p50", Value: 400, Unit: "ms"},
		{Scenario: "convergence", System: "shoal", Mode: ModeInProcess, N: 8, Stat: "p50", Value: 4, Unit: "ms"},
		{Scenario: "crash", System: "shoal", Mode: ModeInProcess, N: 8, Stat: "p50", Value: 5000, Unit: "ms"},
	}}
	var b bytes.Buffer
	if err := rep.WriteTable(&b, true); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("table has %d lines, want header, rule and 2 rows:\n%s", len(lines), b.String())
	}
	if want := "| convergence | p50 | 8 | ms | 4.00 | 5.00 | 400 | 0.0125× |"; lines[2] != want {
		t.Errorf("convergence row\n got %s\nwant %s", lines[2], want)
	}
	if want := "| crash | p50 | 8 | ms | 5000 | – | – | – |"; lines[3] != want {
		t.Errorf("crash row\n got %s\nwant %s", lines[3], want)
	}
	dir := t.TempDir()
	files, err := rep.WriteFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	checkFiles(t, rep, dir, files)
}
