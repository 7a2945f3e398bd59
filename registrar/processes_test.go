package registrar

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
)

// TestSeveralProcesses runs two registrars on one database, as two
// processes behind a load balancer would, and races them: ids stay unique,
// a farm name is taken once, version serials do not collide, and a nonce is
// accepted once (TestSecurity covers the replay across processes).
func TestSeveralProcesses(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		a := newHarness(t, backend, nil)
		admin := a.newTwin()
		b := newHarnessOn(t, a.db, a.clock, func(c *Config) { c.AdminTwins = []uint64{admin.id} })
		a = newHarnessOn(t, a.db, a.clock, func(c *Config) { c.AdminTwins = []uint64{admin.id} })
		hs := []*harness{a, b}

		const n = 8
		twins := make([]twin, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				h := hs[i%2]
				tw := newKey()
				r := h.do("POST", "/api/v1/accounts", accountBody(tw, h.clock.Now().Unix()), nil)
				if r.status != http.StatusCreated {
					t.Errorf("create account: %d %s", r.status, r.body)
					return
				}
				tw.id = uint64(r.obj(t)["twin_id"].(float64))
				twins[i] = tw
			})
		}
		wg.Wait()
		seen := map[uint64]bool{}
		for _, tw := range twins {
			if tw.id == 0 || seen[tw.id] {
				t.Fatalf("twin ids not unique: %v", twins)
			}
			seen[tw.id] = true
		}

		name := uniqueFarmName()
		codes := make([]int, n)
		for i := range n {
			wg.Go(func() {
				h := hs[i%2]
				codes[i] = h.do("POST", "/api/v1/farms", map[string]any{"farm_name": name}, h.v2(twins[i])).status
			})
		}
		wg.Wait()
		created := 0
		for _, c := range codes {
			switch c {
			case http.StatusCreated:
				created++
			case http.StatusConflict:
			default:
				t.Errorf("farm race: status %d", c)
			}
		}
		if created != 1 {
			t.Fatalf("farm name taken %d times: %v", created, codes)
		}

		serials := make([]uint64, n)
		for i := range n {
			wg.Go(func() {
				h := hs[i%2]
				r := h.do("POST", "/api/v1/zos/versions", map[string]any{"version": fmt.Sprintf("v4.0.%d", i), "safe_to_upgrade": true}, h.v2(admin))
				if r.status != http.StatusCreated {
					t.Errorf("set version: %d %s", r.status, r.body)
					return
				}
				serials[i] = uint64(r.obj(t)["serial"].(float64))
			})
		}
		wg.Wait()
		got := map[uint64]bool{}
		for _, s := range serials {
			if s == 0 || got[s] {
				t.Fatalf("serials collide: %v", serials)
			}
			got[s] = true
		}
	})
}
