package riskengine

// hoursPerWeek is the number of hour-of-week buckets.
const hoursPerWeek = 168

// maxSparseHours is the most buckets kept as a list before hourWeights
// switches to a full array: a list entry costs 16 bytes, the array 1,344.
const maxSparseHours = 16

// hourWeights is an hour-of-week histogram of forward-decay weights, kept
// compact: nothing while empty, a short list while few buckets are used
// (a pending aggregate usually touches one or two between flushes), and a
// full array beyond that. The zero value is an empty histogram.
type hourWeights struct {
	dense  *[hoursPerWeek]float64
	sparse []hourWeight
}

type hourWeight struct {
	hour int
	w    float64
}

// hourWeightsOf converts a stored histogram.
func hourWeightsOf(a *[hoursPerWeek]float64) hourWeights {
	var h hourWeights
	for i, w := range a {
		if w != 0 {
			h.add(i, w)
		}
	}
	return h
}

// add adds w to bucket hour.
func (h *hourWeights) add(hour int, w float64) {
	if h.dense != nil {
		h.dense[hour] += w
		return
	}
	for i := range h.sparse {
		if h.sparse[i].hour == hour {
			h.sparse[i].w += w
			return
		}
	}
	if len(h.sparse) < maxSparseHours {
		h.sparse = append(h.sparse, hourWeight{hour, w})
		return
	}
	h.dense = new([hoursPerWeek]float64)
	for _, e := range h.sparse {
		h.dense[e.hour] = e.w
	}
	h.sparse = nil
	h.dense[hour] += w
}

// get returns the weight of bucket hour.
func (h *hourWeights) get(hour int) float64 {
	if h.dense != nil {
		return h.dense[hour]
	}
	for _, e := range h.sparse {
		if e.hour == hour {
			return e.w
		}
	}
	return 0
}

// addTo adds every bucket into o.
func (h *hourWeights) addTo(o *hourWeights) {
	if h.dense != nil {
		for i, w := range h.dense {
			if w != 0 {
				o.add(i, w)
			}
		}
		return
	}
	for _, e := range h.sparse {
		o.add(e.hour, e.w)
	}
}

// array returns the histogram as the store's array.
func (h *hourWeights) array() [hoursPerWeek]float64 {
	if h.dense != nil {
		return *h.dense
	}
	var a [hoursPerWeek]float64
	for _, e := range h.sparse {
		a[e.hour] = e.w
	}
	return a
}
