package load

import (
	"maps"
	"slices"
	"strconv"
	"time"
)

// Latency summarises a run's latencies, in milliseconds.
type Latency struct {
	Mean float64 `json:"mean_ms"`
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	P999 float64 `json:"p999_ms"`
	Max  float64 `json:"max_ms"`
}

// Bucket is one bar of a latency histogram: Count requests took at most
// UpTo (and more than the previous bucket's UpTo); the last bucket, UpTo 0,
// holds the rest.
type Bucket struct {
	UpTo  time.Duration `json:"up_to_ns"`
	Count int           `json:"count"`
}

// histogramEdges are the upper bounds of the histogram's buckets.
func histogramEdges() []time.Duration {
	return []time.Duration{
		250 * time.Microsecond, 500 * time.Microsecond, time.Millisecond, 2 * time.Millisecond,
		5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
		100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond, time.Second,
	}
}

// summarize sorts lat and computes its summary and histogram (nearest-rank
// percentiles). An empty lat gives zeros.
func summarize(lat []time.Duration) (Latency, []Bucket) {
	edges := histogramEdges()
	hist := make([]Bucket, len(edges)+1)
	for i, e := range edges {
		hist[i].UpTo = e
	}
	if len(lat) == 0 {
		return Latency{}, hist
	}
	slices.Sort(lat)
	var sum time.Duration
	b := 0
	for _, d := range lat {
		sum += d
		for b < len(edges) && d > edges[b] {
			b++
		}
		hist[b].Count++
	}
	pct := func(p float64) float64 {
		// nearest rank: the smallest value with at least p of the values
		// at or below it
		i := int(float64(len(lat))*p+0.999999) - 1
		return ms(lat[min(max(i, 0), len(lat)-1)])
	}
	return Latency{
		Mean: ms(sum / time.Duration(len(lat))),
		P50:  pct(0.50),
		P90:  pct(0.90),
		P99:  pct(0.99),
		P999: pct(0.999),
		Max:  ms(lat[len(lat)-1]),
	}, hist
}

// ms converts d to fractional milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// StatusSummary formats answers by status, e.g. "201: 1000, 401: 2".
func StatusSummary(status map[int]int) string {
	if len(status) == 0 {
		return "none"
	}
	var s string
	for _, code := range slices.Sorted(maps.Keys(status)) {
		if s != "" {
			s += ", "
		}
		s += strconv.Itoa(code) + ": " + strconv.Itoa(status[code])
	}
	return s
}
