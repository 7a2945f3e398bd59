package api

// Methods that join the parts of a twin's network on several nodes (a
// network-light workload with a mesh): a node that provisions its part
// calls each node the part lists; a node that removes its part tells its
// peers.
const (
	// MethodNetworkJoin (NetworkJoin → NetworkPart): the caller's part of
	// the network is added to the callee's, which answers with its own.
	MethodNetworkJoin = "network.v1.join"
	// MethodNetworkLeave (NetworkLeave → null): the caller's part is gone.
	MethodNetworkLeave = "network.v1.leave"
)

// NetworkJoin is the caller's part of a twin's network. The callee
// accepts it only if it holds a part of the same twin, name and range
// that lists the caller among its nodes, and whose subnet does not
// overlap the caller's.
type NetworkJoin struct {
	// TwinID owns the network; Network is its workload name; Range its
	// range (the same on every node).
	TwinID  uint64 `json:"twin_id"`
	Network string `json:"network"`
	Range   string `json:"range"`
	// Part is the caller's part.
	Part NetworkPart `json:"part"`
}

// NetworkPart is one node's part of a network.
type NetworkPart struct {
	// Subnet is the node's subnet of the range.
	Subnet string `json:"subnet"`
	// PublicKey is its WireGuard key (base64).
	PublicKey string `json:"public_key"`
	// Port is the UDP port it listens on. The address is the node's, as
	// its registrar record publishes it (the host of its API endpoint).
	Port uint16 `json:"port"`
}

// NetworkLeave names the network whose part on the caller is gone.
type NetworkLeave struct {
	TwinID  uint64 `json:"twin_id"`
	Network string `json:"network"`
	Range   string `json:"range"`
}
