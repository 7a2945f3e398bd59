package load

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// MiB formats a byte count in mebibytes.
func MiB(b uint64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

// WriteResult writes a human-readable account of one run.
func WriteResult(w io.Writer, r Result) error {
	var b strings.Builder
	fmt.Fprintf(&b, "== %s: %d nodes in %d farms, concurrency %d", r.Name, r.Nodes, r.Farms, r.Concurrency)
	if r.Rate > 0 {
		fmt.Fprintf(&b, ", paced at %.0f/s", r.Rate)
	}
	if r.Presigned {
		fmt.Fprintf(&b, ", presigned in %.1f s", r.PresignSeconds)
	}
	fmt.Fprintf(&b, "\n   %d requests in %.2f s (stopped: %s, after %d warm-up): %.0f req/s, %d ok\n",
		r.Requests, r.ElapsedSeconds, r.Stop, r.Warmup, r.Throughput, r.OK)
	l := r.Latency
	fmt.Fprintf(&b, "   latency ms: mean %.2f  p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f\n",
		l.Mean, l.P50, l.P90, l.P99, l.P999, l.Max)
	fmt.Fprintf(&b, "   histogram: %s\n", FormatHistogram(r.Histogram))
	fmt.Fprintf(&b, "   status: %s; transport errors %d; bad bodies %d; restarts %d\n",
		StatusSummary(r.Status), r.TransportErrors, r.BadBodies, r.Restarts)
	if r.FirstError != "" {
		fmt.Fprintf(&b, "   first error: %s\n", r.FirstError)
	}
	if r.Memory != nil {
		fmt.Fprintf(&b, "   registrar memory: RSS %s now, %s peak during the run, VmHWM %s\n",
			MiB(r.Memory.RSS), MiB(r.PeakRSS), MiB(r.Memory.HWM))
	}
	switch srv, db := r.CPUPerRequest(); {
	case db > 0:
		fmt.Fprintf(&b, "   CPU per request: registrar %.0f µs, PostgreSQL backends %.0f µs\n", srv, db)
	case srv > 0:
		fmt.Fprintf(&b, "   CPU per request: registrar %.0f µs\n", srv)
	}
	if c := r.ClientCPUPerRequest(); c > 0 {
		fmt.Fprintf(&b, "   load generator CPU per measured request: %.0f µs\n", c)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// FormatHistogram formats the non-empty buckets, e.g. "≤1ms 812, ≤2ms 170, >1s 1".
func FormatHistogram(h []Bucket) string {
	var parts []string
	var prev time.Duration
	for _, b := range h {
		if b.Count > 0 {
			if b.UpTo == 0 {
				parts = append(parts, fmt.Sprintf(">%v %d", prev, b.Count))
			} else {
				parts = append(parts, fmt.Sprintf("≤%v %d", b.UpTo, b.Count))
			}
		}
		prev = b.UpTo
	}
	if len(parts) == 0 {
		return "empty"
	}
	return strings.Join(parts, ", ")
}

// WriteSummary writes one line per run as a table.
func WriteSummary(w io.Writer, rs []Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "run\tnodes\tconc\trequests\tok\treq/s\tp50 ms\tp90 ms\tp99 ms\tmax ms\tRSS\tpeak RSS\tsrv µs/req\tdb µs/req\t")
	for _, r := range rs {
		rss, peak := "-", "-"
		if r.Memory != nil {
			rss, peak = MiB(r.Memory.RSS), MiB(r.PeakRSS)
		}
		srv, db := r.CPUPerRequest()
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%.0f\t%.2f\t%.2f\t%.2f\t%.2f\t%s\t%s\t%.0f\t%.0f\t\n",
			r.Name, r.Nodes, r.Concurrency, r.Requests, r.OK, r.Throughput,
			r.Latency.P50, r.Latency.P90, r.Latency.P99, r.Latency.Max, rss, peak, srv, db)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("load: writing the summary: %w", err)
	}
	return nil
}
