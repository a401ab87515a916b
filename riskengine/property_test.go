package riskengine

import (
	"testing"
	"testing/quick"
)

// TestMonotonicExhaustive: over all 2^10 subsets of signals with the
// default weights, adding any signal never lowers the score or the level.
func TestMonotonicExhaustive(t *testing.T) {
	cfg, err := Config{Store: newFakeStore()}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	sc := newScorer(cfg)
	checkMonotonic(t, &sc)
}

// TestMonotonicRandomWeights checks the same property for random weights
// and thresholds, disabled signals included.
func TestMonotonicRandomWeights(t *testing.T) {
	prop := func(raw [numSignals]int8, medium, high uint8, set, extra uint16) bool {
		var sc scorer
		for i, w := range raw {
			sc.points[i] = max(0, int(w)) // negative weights are disabled by config
		}
		sc.thresholds.Medium = 1 + int(medium)%98
		sc.thresholds.High = sc.thresholds.Medium + 1 + int(high)%(100-sc.thresholds.Medium)
		s := signalSet(set) & (1<<numSignals - 1)
		x := signalSet(1) << (extra % numSignals)
		a, b := sc.risk(s), sc.risk(s|x)
		return b.Score >= a.Score && levelRank(b.Level) >= levelRank(a.Level) && b.Score <= 100
	}
	if err := quick.Check(prop, &quick.Config{MaxCount: 20000}); err != nil {
		t.Error(err)
	}
}

func checkMonotonic(t *testing.T, sc *scorer) {
	t.Helper()
	for s := signalSet(0); s < 1<<numSignals; s++ {
		base := sc.risk(s)
		for i := range numSignals {
			more := sc.risk(s | signalSet(1)<<i)
			if more.Score < base.Score || levelRank(more.Level) < levelRank(base.Level) {
				t.Fatalf("adding %s to %010b lowered the risk: %+v → %+v", signalCodes[i], s, base, more)
			}
		}
	}
}

// TestReasonsSorted: reasons come highest points first; ties keep the
// fixed signal order.
func TestReasonsSorted(t *testing.T) {
	cfg, _ := Config{Store: newFakeStore()}.withDefaults()
	sc := newScorer(cfg)
	for s := signalSet(1); s < 1<<numSignals; s++ {
		r := sc.risk(s)
		for i := 1; i < len(r.Reasons); i++ {
			if r.Reasons[i-1].Points < r.Reasons[i].Points {
				t.Fatalf("%010b: reasons not sorted: %+v", s, r.Reasons)
			}
		}
	}
}
