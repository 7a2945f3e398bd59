package hub

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/grid4/grid4/auth"
	"github.com/grid4/grid4/hub/client"
	"github.com/grid4/grid4/keys"
)

// testHub is a hub on loopback with two publishers, tf and alice.
type testHub struct {
	t       *testing.T
	srv     *Server
	ts      *httptest.Server
	dataDir string
	reg     *prometheus.Registry
	// anon reads; tf and alice publish.
	anon, tf, alice *client.Client
	tfKey, aliceKey keys.KeyPair
}

func newTestHub(t *testing.T) *testHub {
	t.Helper()
	tfKey, err := keys.Generate(keys.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	aliceKey, err := keys.Generate(keys.Sr25519)
	if err != nil {
		t.Fatal(err)
	}
	h := &testHub{t: t, dataDir: t.TempDir(), tfKey: tfKey, aliceKey: aliceKey, reg: prometheus.NewRegistry()}
	cfg := DefaultConfig()
	cfg.DataDir = h.dataDir
	cfg.Publishers = []Publisher{
		{Name: "tf", ID: PublisherID("tf"), PublicKey: tfKey.Public().Key},
		{Name: "alice", ID: PublisherID("alice"), PublicKey: aliceKey.Public().Key},
	}
	h.srv, err = New(cfg, Deps{Metrics: h.reg})
	if err != nil {
		t.Fatal(err)
	}
	h.ts = httptest.NewServer(h.srv.Handler())
	t.Cleanup(h.ts.Close)
	h.anon, err = client.New(h.ts.URL, h.ts.Client())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if h.tf, err = h.anon.AsPublisher(ctx, "tf", tfKey); err != nil {
		t.Fatal(err)
	}
	if h.alice, err = h.anon.AsPublisher(ctx, "alice", aliceKey); err != nil {
		t.Fatal(err)
	}
	return h
}

// putAsTF sends body as a PUT to path, signed as publisher tf, and returns
// the status: the client checks what it sends, so answers to documents it
// would never send are provoked by hand.
func (h *testHub) putAsTF(ctx context.Context, path string, body []byte) int {
	h.t.Helper()
	hc := &http.Client{Transport: auth.NewTransport(h.ts.Client().Transport, h.tfKey, PublisherID("tf"))}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, h.ts.URL+path, bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := hc.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// tree writes files (name -> content; trailing "/" a directory) under a
// new directory.
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if name[len(name)-1] == '/' {
			continue
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// counter reads a counter's value from the registry.
func (h *testHub) counter(name string, labels ...string) float64 {
	mfs, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}
