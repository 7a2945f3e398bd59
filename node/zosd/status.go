package zosd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/grid4/grid4/bus"
	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/node/identityd"
	"github.com/grid4/grid4/node/internal/supervisor"
	"github.com/grid4/grid4/node/powerd"
	"github.com/grid4/grid4/node/provisiond"
	"github.com/grid4/grid4/node/registrarlight"
	"github.com/grid4/grid4/node/upgrader"
	"github.com/grid4/grid4/node/vmd"
)

// statusTimeout bounds each call `zosd status` makes.
const statusTimeout = 3 * time.Second

// Report is what `zosd status` shows (and prints with -o json).
type Report struct {
	Run          RunInfo               `json:"run"`
	Identity     *identityd.Info       `json:"identity,omitempty"`
	Modules      []supervisor.Status   `json:"modules"`
	Registration *registrarlight.State `json:"registration,omitempty"`
	Power        *powerd.Status        `json:"power,omitempty"`
	// Provision is provisiond's: where its API listens and what it hosts.
	Provision *ProvisionReport `json:"provision,omitempty"`
	// Upgrade is the upgrader's state: the running version, the last
	// check, a switch in progress or the last rollback.
	Upgrade *upgrader.State `json:"upgrade,omitempty"`
	// Machines is vmd's: the hypervisor new virtual machines get, and why
	// each other one cannot run here.
	Machines *vmd.Info `json:"machines,omitempty"`
	// Errors holds, per part, why it could not be read.
	Errors map[string]string `json:"errors,omitempty"`
}

// ProvisionReport is what provisiond says in `zosd status`.
type ProvisionReport struct {
	// API is the address zos-api-light listens on.
	API string `json:"api"`
	// Statistics counts deployments and workloads.
	Statistics gridtypes.Statistics `json:"statistics"`
}

// SupervisorStub calls zosd's own bus object, SupervisorObject: what the
// upgrader needs, restarting modules included.
type SupervisorStub struct{ c *bus.Client }

// NewSupervisorStub returns a stub calling zosd through c.
func NewSupervisorStub(c *bus.Client) SupervisorStub { return SupervisorStub{c: c} }

// Modules returns the state of every supervised process.
func (s SupervisorStub) Modules(ctx context.Context) ([]supervisor.Status, error) {
	return bus.Call[[]supervisor.Status](ctx, s.c, SupervisorObject, "Modules")
}

// Restart restarts the named modules (none: every module but the
// upgrader and the private Redis) and returns once they are started
// again: the upgrader moves the node onto a new generation with it.
func (s SupervisorStub) Restart(ctx context.Context, names ...string) error {
	if names == nil {
		names = []string{}
	}
	return s.c.Invoke(ctx, SupervisorObject, "Restart", nil, names)
}

// Info returns how zosd runs.
func (s SupervisorStub) Info(ctx context.Context) (RunInfo, error) {
	return bus.Call[RunInfo](ctx, s.c, SupervisorObject, "Info")
}

// ModulesStub calls zosd's read-only object, ModulesObject: for readers
// that may not restart anything (zosd status, registrar_light's reports).
type ModulesStub struct{ c *bus.Client }

// NewModulesStub returns a stub calling zosd's read-only object through c.
func NewModulesStub(c *bus.Client) ModulesStub { return ModulesStub{c: c} }

// Modules returns the state of every supervised process.
func (s ModulesStub) Modules(ctx context.Context) ([]supervisor.Status, error) {
	return bus.Call[[]supervisor.Status](ctx, s.c, ModulesObject, "Modules")
}

// Info returns how zosd runs.
func (s ModulesStub) Info(ctx context.Context) (RunInfo, error) {
	return bus.Call[RunInfo](ctx, s.c, ModulesObject, "Info")
}

// collect asks every module for its state. Parts that do not answer are
// listed in Errors.
func collect(ctx context.Context, b *bus.Client, run RunInfo) Report {
	r := Report{Run: run, Modules: []supervisor.Status{}, Errors: map[string]string{}}
	call := func(part string, f func(ctx context.Context) error) {
		cctx, cancel := context.WithTimeout(ctx, statusTimeout)
		defer cancel()
		if err := f(cctx); err != nil {
			r.Errors[part] = err.Error()
		}
	}
	call("zosd", func(ctx context.Context) error {
		m, err := NewModulesStub(b).Modules(ctx)
		if err == nil {
			r.Modules = m
		}
		return err
	})
	call(ModuleIdentity, func(ctx context.Context) error {
		info, err := identityd.NewStub(b).Info(ctx)
		if err == nil {
			r.Identity = &info
		}
		return err
	})
	call(ModuleLight, func(ctx context.Context) error {
		st, err := registrarlight.NewLightStub(b).State(ctx)
		if err == nil {
			r.Registration = &st
		}
		return err
	})
	call(ModulePower, func(ctx context.Context) error {
		st, err := powerd.NewStub(b).Status(ctx)
		if err == nil {
			r.Power = &st
		}
		return err
	})
	call(ModuleProvision, func(ctx context.Context) error {
		stub := provisiond.NewStub(b)
		api, err := stub.API(ctx)
		if err != nil {
			return err
		}
		st, err := stub.Statistics(ctx)
		if err == nil {
			r.Provision = &ProvisionReport{API: api, Statistics: st}
		}
		return err
	})
	call(ModuleMachines, func(ctx context.Context) error {
		info, err := vmd.NewStub(b).Info(ctx)
		if err == nil {
			r.Machines = &info
		}
		return err
	})
	call(ModuleUpgrader, func(ctx context.Context) error {
		st, err := upgrader.NewStub(b).State(ctx)
		if err == nil {
			r.Upgrade = &st
		}
		return err
	})
	if len(r.Errors) == 0 {
		r.Errors = nil
	}
	return r
}

// printReport writes r as text.
func printReport(w io.Writer, r Report, now time.Time) {
	ago := func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return age(now.Sub(t)) + " ago"
	}
	in := func(t time.Time) string {
		if t.IsZero() {
			return "not scheduled"
		}
		if d := t.Sub(now); d > 0 {
			return "in " + age(d)
		}
		return "now"
	}
	fmt.Fprintf(w, "zosd        pid %d, %s, up %s, data %s\n", r.Run.PID, map[bool]string{true: "modules in-process", false: "one process per module"}[r.Run.InProcess], age(now.Sub(r.Run.StartedAt)), r.Run.DataDir)
	fmt.Fprintf(w, "bus         %s (prefix %q)\n", r.Run.Redis, r.Run.BusPrefix)
	if id := r.Identity; id != nil {
		fmt.Fprintf(w, "identity    %s (%s), farm %d, %s\n", id.Address, id.Scheme, id.FarmID, id.Origin)
		for _, c := range id.Copies {
			detail := ""
			if c.Detail != "" {
				detail = " (" + c.Detail + ")"
			}
			fmt.Fprintf(w, "  copy      %s: %s%s\n", c.Path, c.State, detail)
		}
	} else {
		fmt.Fprintf(w, "identity    no answer: %s\n", r.Errors[ModuleIdentity])
	}

	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MODULE\tSTATE\tPID\tRESTARTS\tSINCE\tLAST EXIT")
	if len(r.Modules) == 0 {
		fmt.Fprintf(tw, "?\tno answer from zosd: %s\t\t\t\t\n", r.Errors["zosd"])
	}
	for _, m := range r.Modules {
		pid := "-"
		if m.PID != 0 {
			pid = fmt.Sprint(m.PID)
		}
		state := string(m.State)
		if m.State == supervisor.Restarting {
			state += " " + in(m.NextStart)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", m.Name, state, pid, m.Restarts, age(now.Sub(m.Since)), oneLine(m.LastExit, 60))
	}
	tw.Flush()
	fmt.Fprintln(w)

	printRegistration(w, r, ago, in)
	printUpgrade(w, r, ago, in)
	if p := r.Power; p != nil {
		if p.Health.Healthy {
			fmt.Fprintf(w, "health        healthy; machine up %s\n", age(time.Duration(p.Uptime*float64(time.Second))))
		} else {
			fmt.Fprintf(w, "health        UNHEALTHY (uptime reports skipped): %s\n", p.Health.Reason())
		}
	} else {
		fmt.Fprintf(w, "health        no answer: %s\n", r.Errors[ModulePower])
	}
	printProvision(w, r)
	printMachines(w, r)
}

// printMachines writes which hypervisor virtual machines get and why the
// others cannot run.
func printMachines(w io.Writer, r Report) {
	m := r.Machines
	if m == nil {
		fmt.Fprintf(w, "machines      no answer from vmd: %s\n", r.Errors[ModuleMachines])
		return
	}
	var why []string
	for _, b := range m.Backends {
		switch {
		case b.Name == m.Backend:
		case !b.Allowed:
			why = append(why, b.Name+": not allowed")
		case b.Unavailable != "":
			why = append(why, b.Unavailable) // it names the backend
		}
	}
	what := m.Backend
	switch m.Backend {
	case "":
		what = "NONE: virtual machines cannot run here"
	case vmd.QEMUTCG:
		what += " (emulated: slow)"
	}
	fmt.Fprintf(w, "machines      %s\n", what)
	for _, line := range why {
		fmt.Fprintf(w, "  %s\n", line)
	}
}

// printRegistration writes registrar_light's state: the phase, what the
// node registered and its periodic tasks.
func printRegistration(w io.Writer, r Report, ago, in func(time.Time) string) {
	if s := r.Registration; s != nil {
		switch s.Phase {
		case registrarlight.Done:
			fmt.Fprintf(w, "registration  done: node %d, twin %d, farm %d (registered %s)\n", s.NodeID, s.TwinID, s.FarmID, ago(s.RegisteredAt))
		case registrarlight.Failed:
			fmt.Fprintf(w, "registration  failed (%d attempts), retrying %s: %s\n", s.Attempts, in(s.Register.Next), s.Reason)
		default:
			fmt.Fprintf(w, "registration  in progress\n")
		}
		if s.Interface != nil {
			fmt.Fprintf(w, "  interface   %s %s %s\n", s.Interface.Name, s.Interface.Mac, strings.Join(s.Interface.IPs, ", "))
		}
		if len(s.APIEndpoints) > 0 {
			fmt.Fprintf(w, "  api         %s\n", strings.Join(s.APIEndpoints, ", "))
		}
		if s.Location != nil {
			fmt.Fprintf(w, "  location    %s (%s)\n", place(s.Location.Country, s.Location.City, s.Location.Latitude, s.Location.Longitude), s.LocationSource)
		}
		task := func(name string, t registrarlight.Task) {
			status := "ok"
			if !t.OK && t.Runs > 0 {
				status = "FAILED: " + t.Error
			}
			if t.Runs == 0 {
				status = "not run yet"
			}
			fmt.Fprintf(w, "  %-11s last %s, next %s — %s\n", name, ago(t.Last), in(t.Next), status)
		}
		if s.Register.Runs > 0 && !s.Register.OK {
			task("register", s.Register)
		}
		task("account", s.AccountCheck)
		task("update", s.Update)
		task("uptime", s.Uptime)
		if s.Status.Runs > 0 {
			fmt.Fprintf(w, "  status      last %s — %s\n", ago(s.Status.Last), statusLine(s))
		}
	} else {
		fmt.Fprintf(w, "registration  no answer: %s\n", r.Errors[ModuleLight])
	}
}

// statusLine says how the last status report went and what it said.
func statusLine(s *registrarlight.State) string {
	switch {
	case !s.Status.OK:
		return "FAILED: " + s.Status.Error
	case s.Healthy:
		return "sent: healthy"
	}
	return "sent: UNHEALTHY: " + strings.Join(s.Reasons, "; ")
}

// printProvision writes where zos-api-light listens and what the node
// hosts.
func printProvision(w io.Writer, r Report) {
	p := r.Provision
	if p == nil {
		fmt.Fprintf(w, "workloads     no answer from provisiond: %s\n", r.Errors[ModuleProvision])
		return
	}
	st := p.Statistics
	byState := map[gridtypes.State]int{}
	for _, states := range st.Workloads {
		for s, n := range states {
			byState[s] += n
		}
	}
	var parts []string
	for _, s := range []gridtypes.State{gridtypes.StateOk, gridtypes.StateInit, gridtypes.StatePaused, gridtypes.StateError} {
		if byState[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", byState[s], s))
		}
	}
	if len(parts) == 0 {
		parts = []string{"none"}
	}
	fmt.Fprintf(w, "workloads     API on %s; deployments %d, twins %d; workloads %s; queued %d\n",
		p.API, st.Deployments, st.Twins, strings.Join(parts, ", "), st.Queued)
}

// printUpgrade writes the running version and the upgrader's state.
func printUpgrade(w io.Writer, r Report, ago, in func(time.Time) string) {
	u := r.Upgrade
	if u == nil {
		fmt.Fprintf(w, "version       no answer from the upgrader: %s\n", r.Errors[ModuleUpgrader])
		return
	}
	fmt.Fprintf(w, "version       %s\n", describeRunning(u.Running, ago))
	if !u.Enabled {
		fmt.Fprintf(w, "upgrades      off: %s\n", u.Disabled)
		return
	}
	if u.Previous != nil {
		fmt.Fprintf(w, "  previous    %s\n", describeRunning(*u.Previous, ago))
	}
	line := fmt.Sprintf("upgrades      %s, farm %d", u.Source, u.Farm)
	switch {
	case u.Trial != nil && u.Trial.Phase == upgrader.PhaseRollingBack:
		line += fmt.Sprintf("; ROLLING BACK from %s: %s", u.Trial.Version, u.Trial.Reason)
	case u.Trial != nil:
		line += fmt.Sprintf("; switched to %s %s, checking its health", u.Trial.Version, ago(u.Trial.Started))
	case u.Activity != "" && u.Activity != upgrader.Idle:
		line += "; " + string(u.Activity)
	}
	fmt.Fprintln(w, line)
	if l := u.Last; l != nil {
		status := string(l.Outcome)
		if l.Outcome == upgrader.Failed || l.Outcome == upgrader.RolledBack || l.Outcome == upgrader.Refused {
			status = strings.ToUpper(strings.ReplaceAll(status, "_", " "))
		}
		fmt.Fprintf(w, "  check       last %s, next %s — %s: %s\n", ago(u.LastCheck), in(u.NextCheck), status, oneLine(l.Detail, 200))
	} else {
		fmt.Fprintf(w, "  check       not run yet, next %s\n", in(u.NextCheck))
	}
	if v := u.Registrar; v != nil {
		rollout := "safe to upgrade"
		if !v.SafeToUpgrade {
			rollout = fmt.Sprintf("test farms %v only", v.TestFarms)
		}
		fmt.Fprintf(w, "  registrar   %s (record %d), %s\n", v.Version, v.Serial, rollout)
	}
	if rb := u.RolledBack; rb != nil {
		what := "refused"
		if rb.Switched {
			what = "rolled back"
		}
		fmt.Fprintf(w, "  %-11s %s (record %d, %s; not retried under this record): %s\n", what, rb.Version, rb.Serial, ago(rb.At), oneLine(rb.Reason, 200))
	}
}

// describeRunning is a generation for people.
func describeRunning(r upgrader.Running, ago func(time.Time) string) string {
	if r.Generation == 0 {
		v := r.Version
		if v == "" {
			v = "unknown"
		}
		return v + " (bootstrap)"
	}
	return fmt.Sprintf("%s (generation %d, release %s, installed %s)", r.Version, r.Generation, r.Release.String()[:12], ago(r.Installed))
}

// printJSON writes r as indented JSON.
func printJSON(w io.Writer, r Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func place(country, city, lat, long string) string {
	parts := []string{}
	for _, p := range []string{city, country} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	if lat != "" || long != "" {
		parts = append(parts, lat+","+long)
	}
	if len(parts) == 0 {
		return "unknown"
	}
	return strings.Join(parts, " ")
}

// age is a duration rounded for humans: 45s, 12m, 3h5m, 2d4h.
func age(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return d.Truncate(time.Second).String()
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
