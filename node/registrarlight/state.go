package registrarlight

import (
	"time"

	"github.com/grid4/grid4/registrar/api"
)

// Phase is where the registration stands.
type Phase string

// Phases of the registration.
const (
	// InProgress: the first attempt (or a re-registration after the
	// registrar lost the node) is running.
	InProgress Phase = "in_progress"
	// Done: the node is registered; State has its node and twin ids.
	Done Phase = "done"
	// Failed: the last attempt failed (Reason says why); another attempt
	// is scheduled (Register.Next).
	Failed Phase = "failed"
)

// Task is the record of one periodic job of registrar_light.
type Task struct {
	// Last is when it last ran.
	Last time.Time `json:"last,omitzero"`
	// OK is true when that run succeeded.
	OK bool `json:"ok"`
	// Error is why that run failed or was skipped.
	Error string `json:"error,omitempty"`
	// LastOK is when it last succeeded.
	LastOK time.Time `json:"last_ok,omitzero"`
	// Next is when it runs next (zero: not scheduled).
	Next time.Time `json:"next,omitzero"`
	// Runs counts the runs, failed ones included.
	Runs uint64 `json:"runs"`
}

// State is registrar_light's state, served on the bus and shown by
// `zosd status`.
type State struct {
	Phase Phase `json:"phase"`
	// Reason is why the registration failed (Phase Failed).
	Reason string `json:"reason,omitempty"`
	// Attempts counts the failed registration attempts in a row.
	Attempts int `json:"attempts"`
	// NodeID and TwinID are the registrar's ids of the node and its twin
	// (zero until known).
	NodeID uint64 `json:"node_id,omitempty"`
	TwinID uint64 `json:"twin_id,omitempty"`
	// FarmID is the farm the node was registered in.
	FarmID uint64 `json:"farm_id,omitempty"`
	// Interface is the management interface as last registered.
	Interface *api.Interface `json:"interface,omitempty"`
	// Resources is the capacity as last registered: what the node
	// measured, or the farmer's override (Config.Capacity). provisiond
	// offers exactly this to workloads.
	Resources *api.Resources `json:"resources,omitempty"`
	// APIEndpoints are the URLs of zos-api-light as last registered.
	APIEndpoints []string `json:"api_endpoints,omitempty"`
	// Location is the location as last registered, and its source.
	Location       *api.Location `json:"location,omitempty"`
	LocationSource string        `json:"location_source,omitempty"`
	// Missing lists the node facts that could not be established at the
	// last registration (sent as zero/false/empty).
	Missing []string `json:"missing,omitempty"`
	// RegisteredAt is when the node was last registered or updated.
	RegisteredAt time.Time `json:"registered_at,omitzero"`

	// The jobs: (re-)registration, account check, information update,
	// uptime report and status report (sent with each uptime report).
	Register     Task `json:"register"`
	AccountCheck Task `json:"account_check"`
	Update       Task `json:"update"`
	Uptime       Task `json:"uptime"`
	Status       Task `json:"status"`
	// Healthy and Reasons are the node's health as last reported to the
	// registrar (with the status report).
	Healthy bool     `json:"healthy,omitempty"`
	Reasons []string `json:"reasons,omitempty"`
	// NextReportIn is the registrar's last next_report_in, in seconds.
	NextReportIn int64 `json:"next_report_in,omitempty"`
}
