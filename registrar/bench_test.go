package registrar

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/grid4/grid4/store/storetest"
)

// BenchmarkUptimeReport measures the hot path end to end over loopback:
// signature check, owner check, one store write. Run with
//
//	go test -run '^$' -bench UptimeReport -benchtime 5s ./registrar/
func BenchmarkUptimeReport(b *testing.B) {
	for _, backend := range storetest.Backends() {
		for _, scheme := range []string{"legacy", "v2"} {
			b.Run(backend+"/"+scheme, func(b *testing.B) {
				benchUptime(b, backend, scheme)
			})
		}
	}
}

func benchUptime(b *testing.B, backend, scheme string) {
	h := newHarness(b, backend, func(c *Config) { c.LogLevel = 8 })
	const nodes = 64
	type nd struct {
		tw twin
		id uint64
	}
	farmer := h.newTwin()
	farm := h.newFarm(farmer)
	ns := make([]nd, nodes)
	for i := range ns {
		tw := h.newTwin()
		ns[i] = nd{tw, h.newNode(tw, farm)}
	}
	var seq atomic.Uint64
	client := h.ts.Client()
	client.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := seq.Add(1)
			n := ns[i%nodes]
			body := []byte(fmt.Sprintf(`{"uptime":%d,"timestamp":%d}`, 1000+i, h.clock.Now().Unix()))
			req, _ := http.NewRequest("POST", fmt.Sprintf("%s/api/v1/nodes/%d/uptime", h.ts.URL, n.id), bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			if scheme == "legacy" {
				h.legacy(n.tw)(b, req, body)
			} else {
				h.v2(n.tw)(b, req, body)
			}
			res, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, res.Body) // so the connection is reused
			res.Body.Close()
			if res.StatusCode != http.StatusCreated {
				b.Errorf("status %d", res.StatusCode)
				return
			}
		}
	})
}
