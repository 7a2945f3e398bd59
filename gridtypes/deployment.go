package gridtypes

import (
	"encoding/json"
	"time"
)

// WorkloadType names a kind of workload; each has a data schema and a type
// manager.
type WorkloadType string

// The workload types of Grid v4.
const (
	ZMountType        WorkloadType = "zmount"
	VolumeType        WorkloadType = "volume"
	QuantumSafeFSType WorkloadType = "qsfs"
	NetworkLightType  WorkloadType = "network-light"
	PublicIPv4Type    WorkloadType = "ipv4"
	ZMachineLightType WorkloadType = "zmachine-light"
	ZLogsType         WorkloadType = "zlogs"
)

// Types lists every workload type in processing order (storage, networks,
// machines, logs).
func Types() []WorkloadType {
	return []WorkloadType{ZMountType, VolumeType, QuantumSafeFSType, NetworkLightType, PublicIPv4Type, ZMachineLightType, ZLogsType}
}

// Stage is the position of a workload type in the processing order: lower
// stages are provisioned first and deprovisioned last, because later
// stages use what earlier ones made (a machine mounts a disk and joins a
// network; a log stream reads a machine).
func (t WorkloadType) Stage() int {
	switch t {
	case ZMountType, VolumeType, QuantumSafeFSType:
		return 0
	case NetworkLightType, PublicIPv4Type:
		return 1
	case ZMachineLightType:
		return 2
	case ZLogsType:
		return 3
	}
	return 4
}

// State is the state of a workload on the node.
type State string

// Workload states. StateInit is the state of a workload whose operation is
// queued; the other four are the results of the seed's state management.
const (
	// StateInit: accepted and queued, not processed yet.
	StateInit State = "init"
	// StateOk: the workload runs as asked.
	StateOk State = "ok"
	// StateError: the last operation failed; Result.Message says why.
	// A workload in error holds no resources (a failed provision is
	// rolled back).
	StateError State = "error"
	// StatePaused: the workload is suspended (its resources are kept).
	StatePaused State = "paused"
	// StateDeleted: the workload was removed from the node.
	StateDeleted State = "deleted"
)

// Deployment is what a twin asks a node to run. It is signed as a whole
// (see Hash); the node keeps its latest accepted version.
type Deployment struct {
	// ID is assigned by the node when the deployment is first deployed
	// (it must be 0 then) and names it afterwards.
	ID uint64 `json:"id"`
	// TwinID is the owner: the only twin that may read or change it.
	TwinID uint64 `json:"twin_id"`
	// Version starts at 0 and is raised by exactly one on every update.
	Version uint32 `json:"version"`
	// ContractID is the registrar contract the deployment runs under: a
	// node contract made for this deployment's hash, or the rent contract
	// of the node. It is not part of the hash (the contract is made for
	// the hash before its id is known); nodes that enforce contracts
	// refuse a deployment without one (ErrContract).
	ContractID uint64 `json:"contract_id,omitempty"`
	// Metadata is free text for the owner's tools (at most 1024 bytes).
	Metadata string `json:"metadata"`
	// Description is free text for humans (at most 1024 bytes).
	Description string `json:"description"`
	// SignatureRequirement says who must sign the deployment. Empty means
	// the owner alone.
	SignatureRequirement SignatureRequirement `json:"signature_requirement"`
	// Workloads are the parts of the deployment; names are unique.
	Workloads []Workload `json:"workloads"`
}

// Workload is one part of a deployment.
type Workload struct {
	// Name is unique in the deployment: 1 to 32 characters of a-z, 0-9,
	// '_' and '-', starting with a letter or digit.
	Name string `json:"name"`
	// Type selects the data schema and the type manager.
	Type WorkloadType `json:"type"`
	// Version is the deployment version in which the workload last
	// changed.
	Version uint32 `json:"version"`
	// Data is the type-specific configuration (a JSON object).
	Data json.RawMessage `json:"data"`
	// Metadata is free text for the owner's tools (at most 1024 bytes).
	Metadata string `json:"metadata"`
	// Description is free text for humans (at most 1024 bytes).
	Description string `json:"description"`
	// Result is set by the node; whatever a client sends is ignored.
	Result *Result `json:"result,omitempty"`
}

// Result is the outcome of the last operation on a workload.
type Result struct {
	// State is the workload's state.
	State State `json:"state"`
	// Created is when the node reached this state.
	Created time.Time `json:"created"`
	// Message explains StateError (empty otherwise).
	Message string `json:"message,omitempty"`
	// Data is what the type manager reports about the workload (a file
	// path, a namespace name, a stream's target...), a JSON object.
	Data json.RawMessage `json:"data,omitempty"`
}

// SignatureRequirement lists the twins whose signatures the deployment
// needs. It is satisfied when every Required twin signed and the weights
// of the twins that signed add up to at least WeightRequired.
type SignatureRequirement struct {
	// Requests are the twins that may sign. Empty means the owner alone,
	// required, with weight 1.
	Requests []SignatureRequest `json:"requests,omitempty"`
	// WeightRequired is the minimum total weight of valid signatures
	// (0 means 1).
	WeightRequired uint32 `json:"weight_required,omitempty"`
	// Signatures are the signatures collected so far. They are not part of
	// the hash they sign.
	Signatures []Signature `json:"signatures,omitempty"`
}

// SignatureRequest names a twin that may sign.
type SignatureRequest struct {
	// TwinID is the twin.
	TwinID uint64 `json:"twin_id"`
	// Required makes the twin's signature mandatory.
	Required bool `json:"required"`
	// Weight is what the twin's signature counts towards WeightRequired.
	Weight uint32 `json:"weight"`
}

// Signature is one twin's signature of a deployment's Hash.
type Signature struct {
	// TwinID is the signer.
	TwinID uint64 `json:"twin_id"`
	// Signature is the 64-byte signature in lowercase hex, over the ASCII
	// lowercase hex of the deployment hash (64 characters).
	Signature string `json:"signature"`
	// SignatureType is the key scheme: "ed25519" or "sr25519".
	SignatureType string `json:"signature_type"`
}

// Get returns the workload called name.
func (d *Deployment) Get(name string) (*Workload, bool) {
	for i := range d.Workloads {
		if d.Workloads[i].Name == name {
			return &d.Workloads[i], true
		}
	}
	return nil, false
}

// requests returns the effective signature requests and required weight:
// the owner alone when none are listed.
func (r SignatureRequirement) effective(owner uint64) ([]SignatureRequest, uint32) {
	reqs, weight := r.Requests, r.WeightRequired
	if len(reqs) == 0 {
		reqs = []SignatureRequest{{TwinID: owner, Required: true, Weight: 1}}
	}
	if weight == 0 {
		weight = 1
	}
	return reqs, weight
}

// Record is a deployment as the node keeps it: the latest accepted
// version, with each workload's Result, and bookkeeping.
type Record struct {
	// Deployment is the latest accepted version.
	Deployment Deployment `json:"deployment"`
	// Created is when the deployment was first accepted.
	Created time.Time `json:"created"`
	// Updated is when it last changed (accepted or processed).
	Updated time.Time `json:"updated"`
	// Pending names the queued operation ("deploy", "update", "delete",
	// "pause", "resume"), empty when none is.
	Pending string `json:"pending,omitempty"`
	// Deleted is set once a delete was accepted.
	Deleted bool `json:"deleted,omitempty"`
}

// Summary is a short form of a Record for listings.
type Summary struct {
	// ID, TwinID, Version and Description are the deployment's.
	ID          uint64 `json:"id"`
	TwinID      uint64 `json:"twin_id"`
	Version     uint32 `json:"version"`
	Description string `json:"description"`
	// Workloads counts the workloads by state.
	Workloads map[State]int `json:"workloads"`
	// Pending and Deleted are the Record's.
	Pending string `json:"pending,omitempty"`
	Deleted bool   `json:"deleted,omitempty"`
	// Created and Updated are the Record's.
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

// Summary returns r's summary.
func (r *Record) Summary() Summary {
	s := Summary{
		ID: r.Deployment.ID, TwinID: r.Deployment.TwinID, Version: r.Deployment.Version,
		Description: r.Deployment.Description, Workloads: map[State]int{},
		Pending: r.Pending, Deleted: r.Deleted, Created: r.Created, Updated: r.Updated,
	}
	for _, w := range r.Deployment.Workloads {
		st := StateInit
		if w.Result != nil {
			st = w.Result.State
		}
		s.Workloads[st]++
	}
	return s
}

// Op is an operation on a workload.
type Op string

// Operations on workloads, as the node's queue runs them and a
// deployment's history (Change) records them. OpAccept and OpRestore only
// appear in a deployment's history: OpAccept records that a version was
// accepted and its workloads queued, OpRestore that the node could not bring
// a workload back when it started (the workload is then in error).
const (
	OpProvision   Op = "provision"
	OpDeprovision Op = "deprovision"
	OpUpdate      Op = "update"
	OpPause       Op = "pause"
	OpResume      Op = "resume"
	OpAccept      Op = "accept"
	OpRestore     Op = "restore"
)

// Change is one entry of a deployment's history: an operation on a
// workload and its outcome.
type Change struct {
	// Seq orders the changes of a deployment.
	Seq uint64 `json:"seq"`
	// Time is when the outcome was recorded.
	Time time.Time `json:"time"`
	// Version is the deployment version the operation belonged to.
	Version uint32 `json:"version"`
	// Workload and Type name the workload.
	Workload string       `json:"workload"`
	Type     WorkloadType `json:"type"`
	// Op is the operation (provision, deprovision, update, pause,
	// resume; "accept" when a version was accepted and queued).
	Op Op `json:"op"`
	// State is the workload's state after the operation.
	State State `json:"state"`
	// Message explains an error.
	Message string `json:"message,omitempty"`
}
