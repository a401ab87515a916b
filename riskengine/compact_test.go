package riskengine

import (
	"testing"
	"unsafe"
)

// Issue 23.1: a userState was about 3 KB before it held anything (two
// inline 168-bucket float64 histograms and a 32-entry failed-auth ring).
// Histograms and the ring are now allocated only when used.
func TestUserStateIsCompact(t *testing.T) {
	if n := unsafe.Sizeof(userState{}); n > 1024 {
		t.Errorf("an empty userState takes %d bytes, want at most 1024", n)
	}
	var h hourWeights
	for i := range maxSparseHours {
		h.add(i*3, 1)
	}
	if h.dense != nil || h.get(3) != 1 || h.get(4) != 0 {
		t.Errorf("a histogram of %d hours is not a short list: %+v", maxSparseHours, h)
	}
	h.add(100, 2)
	h.add(3, 1)
	if h.dense == nil || h.get(3) != 2 || h.get(100) != 2 || h.get(6) != 1 {
		t.Errorf("a histogram beyond %d hours: dense %v, h[3]=%v h[100]=%v", maxSparseHours, h.dense != nil, h.get(3), h.get(100))
	}
	if a := h.array(); a[100] != 2 || a[45] != 1 || a[1] != 0 {
		t.Errorf("array() = %v", a)
	}
}
