package provisiond

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/node/hostinfo"
)

type fakeProber struct {
	facts hostinfo.Facts
	err   error
	calls int
}

func (f *fakeProber) Probe(context.Context) (hostinfo.Facts, error) {
	f.calls++
	return f.facts, f.err
}

func TestHostCapacity(t *testing.T) {
	p := &fakeProber{facts: hostinfo.Facts{
		CPUs:   hostinfo.Fact[uint64]{Value: 8, Known: true},
		Memory: hostinfo.Fact[uint64]{Value: 32 * gridtypes.GiB, Known: true},
		Disks: hostinfo.Fact[hostinfo.DiskList]{Known: true, Value: hostinfo.DiskList{
			{Name: "nvme0n1", Kind: hostinfo.SSD, Size: 1 * gridtypes.TiB},
			{Name: "sda", Kind: hostinfo.HDD, Size: 4 * gridtypes.TiB},
			{Name: "loop0", Skip: "loop device"},
		}},
	}}
	now := time.Unix(1_700_000_000, 0)
	h := NewHostCapacity(p, gridtypes.Resources{MRU: 2 * gridtypes.GiB, SRU: 50 * gridtypes.GiB}, 3, time.Minute, func() time.Time { return now })
	r, err := h.Total(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := gridtypes.Resources{CRU: 8, MRU: 30 * gridtypes.GiB, SRU: 1*gridtypes.TiB - 50*gridtypes.GiB, HRU: 4 * gridtypes.TiB, IPv4: 3}
	if r != want {
		t.Fatalf("total %+v, want %+v", r, want)
	}
	// Cached until the TTL.
	h.Total(context.Background())
	now = now.Add(2 * time.Minute)
	h.Total(context.Background())
	if p.calls != 2 {
		t.Fatalf("%d probes", p.calls)
	}
	p.err = errors.New("no /proc")
	now = now.Add(2 * time.Minute)
	if _, err := h.Total(context.Background()); err == nil {
		t.Fatal("probe error hidden")
	}
}

// TestLiveHostCapacity probes this machine: whatever it has, the node
// must see some CPU and memory.
func TestLiveHostCapacity(t *testing.T) {
	prober, err := hostinfo.New(hostinfo.Config{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewHostCapacity(prober, gridtypes.Resources{}, 0, 0, nil).Total(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r.CRU == 0 || r.MRU == 0 {
		t.Fatalf("probed %+v", r)
	}
	t.Logf("this host: %+v", r)
}
