package gridtypes

// CapacityReport is the node's capacity: what it has, what workloads use
// (queued ones included) and the difference.
type CapacityReport struct {
	// Total is the node's capacity for workloads.
	Total Resources `json:"total"`
	// Used is what workloads in state init, ok or paused hold.
	Used Resources `json:"used"`
	// Free is Total minus Used.
	Free Resources `json:"free"`
}

// Statistics counts what the node runs.
type Statistics struct {
	// Deployments counts deployments not deleted; Deleted the others.
	Deployments int `json:"deployments"`
	Deleted     int `json:"deleted"`
	// Twins counts the distinct owners of deployments not deleted.
	Twins int `json:"twins"`
	// Workloads counts workloads by type and state.
	Workloads map[WorkloadType]map[State]int `json:"workloads"`
	// Queued counts the jobs in the queue (the running one included).
	Queued int `json:"queued"`
}
