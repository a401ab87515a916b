package main

import (
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"ztproxy/internal/testenv"
)

func TestOnCPUs(t *testing.T) {
	tests := []struct {
		name     string
		cpus     string
		wantBin  string
		wantArgs []string
	}{
		{"unpinned keeps the command", "", "/usr/sbin/nginx", []string{"-p", "/tmp/n", "-g", "daemon off;"}},
		{"pinned goes through taskset", "1", "taskset", []string{"-c", "1", "/usr/sbin/nginx", "-p", "/tmp/n", "-g", "daemon off;"}},
		{"CPU lists pass through", "0,2-3", "taskset", []string{"-c", "0,2-3", "/usr/sbin/nginx", "-p", "/tmp/n", "-g", "daemon off;"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bin, args := onCPUs(tc.cpus, "/usr/sbin/nginx", "-p", "/tmp/n", "-g", "daemon off;")
			if bin != tc.wantBin || !slices.Equal(args, tc.wantArgs) {
				t.Errorf("onCPUs(%q) = %s %q, want %s %q", tc.cpus, bin, args, tc.wantBin, tc.wantArgs)
			}
		})
	}
}

// TestOnCPUsPins runs a child through the built command line and reads its
// allowed CPUs back from /proc: taskset must stop parsing its own options
// at the mask, so the child's "-c" reaches the child.
func TestOnCPUsPins(t *testing.T) {
	_, err := exec.LookPath("taskset")
	testenv.RequireComponent(t, "taskset", err)
	bin, args := onCPUs("0", "sh", "-c", "grep Cpus_allowed_list /proc/self/status")
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %q: %v\n%s", bin, args, err, out)
	}
	if f := strings.Fields(string(out)); len(f) != 2 || f[1] != "0" {
		t.Errorf("child runs on %q, want CPU 0", out)
	}
}

func TestLoadThreads(t *testing.T) {
	e := &env{o: options{threads: 2}}
	if n := e.loadThreads(&Candidate{}); n != 2 {
		t.Errorf("unpinned: %d threads, want -threads (2)", n)
	}
	if n := e.loadThreads(&Candidate{loadCPUs: "0"}); n != 1 {
		t.Errorf("pinned to one CPU: %d threads, want 1", n)
	}
	if s := (&Candidate{loadCPUs: "0"}).tagSuffix(); s != "-pinned" {
		t.Errorf("pinned raw files are not marked: %q", s)
	}
}

func TestCheckPinnable(t *testing.T) {
	if err := checkPinnable(1); err == nil {
		t.Error("one CPU: want an error")
	}
}

// TestReportNamesLayouts checks that both layouts are labelled in the
// Markdown and the JSON, and that the isolated p99 is listed with the
// targets next to the shared one.
func TestReportNamesLayouts(t *testing.T) {
	peak := func(name string, rps float64) *Candidate {
		return &Candidate{Name: name, Tool: "wrk", Runs: []RunResult{{Round: 1, ReqPerSec: rps, P50Ms: 1, P99Ms: 2, CPUPerReqUs: 50}}}
	}
	fixed := func(layout string, zbP99 float64) *FixedRate {
		f := &FixedRate{Layout: layout, Rate: 5000, Basis: "0.50 × ztproxy-browser's median peak 10000 req/s", Conns: 50, Duration: "2s",
			Runs: []FixedRateRun{
				{Name: "direct", Load: LoadResult{P50Ms: 0.2, P99Ms: 0.5, ReqPerSec: 5000}},
				{Name: "ztproxy-browser", Load: LoadResult{P50Ms: 0.4, P99Ms: zbP99, ReqPerSec: 5000}},
			}}
		f.summarize(isolatedNames)
		return f
	}
	rep := &Report{Layout: sharedLayout,
		Candidates: []*Candidate{peak("direct", 60000), peak("ztproxy-browser", 15000)},
		FixedRate:  fixed(sharedLayout, 9.5),
		Isolated: &Isolated{Layout: isolatedLayout, Settings: "closed loop",
			Candidates: []*Candidate{peak("direct", 30000), peak("ztproxy-browser", 10000),
				{Name: "nginx", Tool: "wrk", Unavailable: "skipped (-only)"}},
			FixedRate: fixed(isolatedLayout.Name, 1.25)},
	}
	md := markdown(rep)
	for _, want := range []string{
		"Layout: " + sharedLayout,
		"## Isolated layout (isolated: proxy on its own core)",
		`Fixed rate, layout "` + sharedLayout + `"`,
		`Fixed rate, layout "isolated: proxy on its own core"`,
		"| ztproxy-browser | wrk | 10000 | 10000–10000 | 1.00 | 2.00 | 50.0 |",
		"| nginx | wrk | unavailable: skipped (-only) |",
		"- p99 added over direct ≤ 1 ms at half of peak load (0.50 × ztproxy-browser's median peak 10000 req/s = 5000 req/s): 9.00 ms",
		"- p99 added over direct, isolated: proxy on its own core (0.50 × ztproxy-browser's median peak 10000 req/s = 5000 req/s): 0.75 ms",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	js, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Layout    string `json:"layout"`
		FixedRate struct {
			Layout string `json:"layout"`
		} `json:"fixed_rate"`
		Isolated struct {
			Layout    cpuLayout `json:"layout"`
			FixedRate struct {
				Layout  string           `json:"layout"`
				Summary []FixedRateStats `json:"summary"`
			} `json:"fixed_rate"`
		} `json:"isolated"`
	}
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	if back.Layout != sharedLayout || back.FixedRate.Layout != sharedLayout {
		t.Errorf("shared layout not in the JSON: %s", js)
	}
	if back.Isolated.Layout != isolatedLayout || back.Isolated.FixedRate.Layout != isolatedLayout.Name || len(back.Isolated.FixedRate.Summary) != 2 {
		t.Errorf("isolated layout not in the JSON: %s", js)
	}
}
