package config

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"

	"ztproxy/riskengine"
)

// TestRiskDefaultsAgree: issue 15.17, the risk weights had two sets of
// defaults (riskengine's and the config's). riskengine's are the one
// source; the config's defaults, config.example.yaml and the table in
// docs/risk.md must show the same numbers.
func TestRiskDefaultsAgree(t *testing.T) {
	w := riskengine.DefaultWeights
	want := map[string]int{
		"new_network": w.NewNetwork, "new_user_agent": w.NewUserAgent, "new_device": w.NewDevice,
		"unusual_hour": w.UnusualHour, "velocity": w.Velocity, "failed_auth": w.FailedAuth,
		"impossible_travel": w.ImpossibleTravel, "flag_watch": w.FlagWatch, "flag_compromised": w.FlagCompromised,
		"device_other_owner": w.DeviceOtherOwner, "device_posture_stale": w.DevicePostureStale, "device_unenrolled": w.DeviceUnenrolled,
	}
	dw := DefaultRisk().Weights
	fromConfig := map[string]int{
		"new_network": dw.NewNetwork, "new_user_agent": dw.NewUserAgent, "new_device": dw.NewDevice,
		"unusual_hour": dw.UnusualHour, "velocity": dw.Velocity, "failed_auth": dw.FailedAuth,
		"impossible_travel": dw.ImpossibleTravel, "flag_watch": dw.FlagWatch, "flag_compromised": dw.FlagCompromised,
		"device_other_owner": dw.DeviceOtherOwner, "device_posture_stale": dw.DevicePostureStale, "device_unenrolled": dw.DeviceUnenrolled,
	}
	if diff := cmp.Diff(want, fromConfig); diff != "" {
		t.Errorf("config.DefaultRisk weights (-riskengine +config):\n%s", diff)
	}

	root := filepath.Join("..")
	data, err := os.ReadFile(filepath.Join(root, "config.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var example struct {
		Risk struct {
			Weights    map[string]int `yaml:"weights"`
			Thresholds map[string]int `yaml:"thresholds"`
			Unknown    int            `yaml:"unknown_user_score"`
		} `yaml:"risk"`
	}
	if err := yaml.Unmarshal(data, &example); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, example.Risk.Weights); diff != "" {
		t.Errorf("config.example.yaml risk.weights (-riskengine +example):\n%s", diff)
	}
	th := riskengine.DefaultThresholds
	if example.Risk.Thresholds["medium"] != th.Medium || example.Risk.Thresholds["high"] != th.High || example.Risk.Unknown != riskengine.DefaultUnknownUserScore {
		t.Errorf("config.example.yaml thresholds %v, unknown_user_score %d", example.Risk.Thresholds, example.Risk.Unknown)
	}

	doc, err := os.ReadFile(filepath.Join(root, "docs", "risk.md"))
	if err != nil {
		t.Fatal(err)
	}
	fromDoc := map[string]int{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\| ([0-9]+) \\|").FindAllSubmatch(doc, -1) {
		fromDoc[string(m[1])], _ = strconv.Atoi(string(m[2]))
	}
	if m := regexp.MustCompile("(?m)^\\| `flag_watch` / `flag_compromised` \\| ([0-9]+) / ([0-9]+) \\|").FindSubmatch(doc); m != nil {
		fromDoc["flag_watch"], _ = strconv.Atoi(string(m[1]))
		fromDoc["flag_compromised"], _ = strconv.Atoi(string(m[2]))
	}
	if diff := cmp.Diff(want, fromDoc); diff != "" {
		t.Errorf("docs/risk.md signal table (-riskengine +doc):\n%s", diff)
	}
}
