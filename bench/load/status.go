package load

import (
	"encoding/json"
	"math/rand/v2"
	"time"

	"github.com/grid4/grid4/registrar/api"
)

// fleetModules are the processes zosd supervises, as a status report
// names them.
func fleetModules() []string {
	return []string{"redis", "identityd", "noded", "storaged", "flistd", "location", "powerd", "registrar_gateway",
		"registrar_light", "netlightd", "contd", "vmd", "provisiond", "upgrader"}
}

// fleetStatus is the status report of node i of a fleet: 64 GiB of memory
// (as benchNode registers) of which a part drawn from i is in use, and so
// on for CPU, SSD and public IPv4; one node in ten unhealthy (its disk
// check failing); 14 modules and 4 checks, as zosd sends them. The same i
// gives the same figures in every run and process, so that a filter's
// matches are known from the seed.
func fleetStatus(i int, at time.Time, deployments uint64) api.NodeStatusReport {
	r := rand.New(rand.NewPCG(uint64(i), 42))
	total := api.Capacity{CRU: 16, MRU: 64 << 30, SRU: 1 << 40, HRU: 4 << 40, IPv4: 4}
	used := api.Capacity{CRU: r.Uint64N(17), MRU: r.Uint64N(64<<30 + 1), SRU: r.Uint64N(1<<40 + 1), IPv4: r.Uint64N(5)}
	healthy := r.IntN(10) != 0
	rep := api.NodeStatusReport{Timestamp: at.Unix(), Version: "v4.1.0", Healthy: healthy, Total: total, Used: used,
		Deployments: deployments, Workloads: map[string]uint64{"ok": 3 * deployments}}
	for _, m := range fleetModules() {
		rep.Modules = append(rep.Modules, api.ModuleState{Name: m, State: "running"})
	}
	for _, c := range []string{"disk_space", "data_writable", "bus", "clock"} {
		ch := api.HealthCheck{Name: c, OK: true}
		if c == "disk_space" && !healthy {
			ch = api.HealthCheck{Name: c, Reason: "/var/lib/zosd has 52428800 bytes free, less than the 104857600 required"}
		}
		rep.Checks = append(rep.Checks, ch)
	}
	return rep
}

// StatusReport is the body of node i's status report at time at (see
// fleetStatus); deployments varies the body, so that no two reports of a
// node in a run are the same request (the legacy replay guard refuses
// those).
func StatusReport(i int, at time.Time, deployments uint64) []byte {
	b, err := json.Marshal(fleetStatus(i, at, deployments))
	if err != nil {
		panic(err) // a struct of strings and integers always encodes
	}
	return b
}

// seedStatus is node i's status as the registrar stores the report of
// fleetStatus received at at (store.SeedNode.Status).
func seedStatus(i int, at time.Time) *api.NodeStatus {
	rep := fleetStatus(i, at, 1)
	st := &api.NodeStatus{ReportedAt: at, Healthy: rep.Healthy, Version: rep.Version, Total: rep.Total, Used: rep.Used,
		Free: rep.Total.Sub(rep.Used), Deployments: rep.Deployments, Workloads: rep.Workloads, Checks: rep.Checks, Modules: rep.Modules}
	for _, c := range rep.Checks {
		if !c.OK {
			st.Reasons = append(st.Reasons, "check "+c.Name+": "+c.Reason)
		}
	}
	return st
}
