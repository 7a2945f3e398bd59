// Package gridtypes is the wire format of deployments on grid4 nodes: what
// a twin sends to a node's zos-api-light and what the node answers.
//
// A Deployment belongs to a twin and holds Workloads, one of the types
// ZMount, Volume, QuantumSafeFS, NetworkLight, PublicIPv4, ZMachineLight
// and ZLogs, each with its data schema (ZMountData, VolumeData...). It is
// signed as a whole (Sign, VerifySignatures) by its owner, and by more
// twins when its SignatureRequirement says so; the signatures cover Hash,
// the SHA-256 of the deployment's canonical JSON form (RFC 8785, see
// Canonical). ParseDeployment, Validate and CheckUpdate apply every rule
// the node applies before it accepts a deployment, so a client can check
// a deployment before signing it. Record, Summary, Change, CapacityReport
// and Statistics are what the node answers; the sentinel errors (ErrInvalid,
// ErrNotFound...) are matched the same way on both sides of the API.
//
// The package is apart from the engine (node/provisiond) so that a user's
// program builds and signs deployments with it alone: it imports the
// standard library and packages keys and auth, nothing else of the node,
// no database and no bus. A test holds it to that.
//
// docs/provisioning.md describes the types, states and rules for users;
// this package's tests load that document's examples.
package gridtypes
