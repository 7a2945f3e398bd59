package daemon

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/keys"
	"github.com/grid4/grid4/node/storaged/storagetest"
	zosclient "github.com/grid4/grid4/node/zosapi/client"
	"github.com/grid4/grid4/registrar"
	regclient "github.com/grid4/grid4/registrar/client"
	"github.com/grid4/grid4/store"
)

func TestFlags(t *testing.T) {
	var out bytes.Buffer
	if code := Main(context.Background(), "dev", nil, func(string) string { return "" }, &out, &out); code != 2 || !strings.Contains(out.String(), "--registrar is required") {
		t.Fatalf("no registrar: %d %s", code, out.String())
	}
	env := map[string]string{"PROVISIOND_REGISTRAR": "http://r", "PROVISIOND_LISTEN": ":1"}
	c, err := parse([]string{"--listen", ":2"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil || c.registrar != "http://r" || c.listen != ":2" {
		t.Fatalf("env and flags: %+v %v", c, err)
	}
	if _, err := parse([]string{"--registrar", "http://r", "extra"}, func(string) string { return "" }, io.Discard); err == nil {
		t.Fatal("accepted a positional argument")
	}
	storage := storagetest.New(t)
	if _, err := capacityOf(config{mru: "lots"}, storage); err == nil {
		t.Fatal("accepted --mru lots")
	}
	capa, err := capacityOf(config{cru: 4, mru: "8GiB", sru: "100GB"}, storage)
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := capa.Total(context.Background()); r.CRU != 4 || r.MRU != 8<<30 || r.SRU != 100e9 {
		t.Fatalf("capacity %+v", r)
	}
	// Probed: SRU from storaged's pool (this VM's disk says it rotates,
	// which once gave no SRU), less --reserve-sru.
	capa, err = capacityOf(config{reserveMRU: "0", reserveSRU: "1GiB"}, storage)
	if err != nil {
		t.Fatal(err)
	}
	pools, _ := storage.Capacity(context.Background())
	if r, err := capa.Total(context.Background()); err != nil || r.SRU == 0 || r.SRU != pools.SRU-1<<30 || r.HRU != pools.HRU || r.CRU == 0 {
		t.Fatalf("probed capacity %+v %v; storaged %+v", r, err, pools)
	}
}

// TestServes runs provisiond against a real registrar, deploys a disk
// through the API and stops it.
func TestServes(t *testing.T) {
	db, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "r.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cfg := registrar.DefaultConfig()
	cfg.RateIP, cfg.RateTwin = 0, 0
	rs, err := registrar.New(cfg, registrar.Deps{Store: db, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(rs.Handler())
	defer ts.Close()
	kp, _ := keys.Generate(keys.Sr25519)
	rc, _ := regclient.New(ts.URL, regclient.WithIdentity(kp, 0))
	acc, err := rc.CreateAccount(context.Background(), regclient.AccountOptions{})
	if err != nil {
		t.Fatal(err)
	}

	c, err := parse([]string{"--registrar", ts.URL, "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--cru", "2", "--mru", "4GiB", "--sru", "10GiB", "--log-level", "warn"}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	c.ready = func(a string) { addr <- a }
	c.version = "dev"
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, c, io.Discard) }()
	var url string
	select {
	case a := <-addr:
		url = "http://" + a
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	api, err := zosclient.New(url, kp, acc.TwinID, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := api.Version(ctx)
	if err != nil || v.Version != "dev" || len(v.Types) != 7 {
		t.Fatalf("version %+v %v", v, err)
	}
	d := gridtypes.Deployment{TwinID: acc.TwinID, Workloads: []gridtypes.Workload{{Name: "disk", Type: gridtypes.ZMountType, Data: []byte(`{"size":1048576}`)}}}
	if err := d.Sign(acc.TwinID, kp); err != nil {
		t.Fatal(err)
	}
	rec, err := api.Deploy(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for rec.Pending != "" && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		rec, _ = api.Get(ctx, rec.Deployment.ID)
	}
	if w, _ := rec.Deployment.Get("disk"); w.Result == nil || w.Result.State != gridtypes.StateOk {
		t.Fatalf("disk %+v", rec)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("did not stop")
	}
}
