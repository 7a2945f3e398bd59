package gridtypes

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
)

// Limits of a deployment document.
const (
	// MaxDeploymentBytes bounds the JSON of a deployment.
	MaxDeploymentBytes = 512 << 10
	// MaxWorkloads bounds the workloads of a deployment.
	MaxWorkloads = 64
	// MaxTextBytes bounds metadata and description fields.
	MaxTextBytes = 1024
	// MaxSignatureRequests bounds the twins of a signature requirement.
	MaxSignatureRequests = 16
)

// workloadNameRE is compiled once; a Regexp never changes and is safe for
// concurrent use.
var workloadNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// ParseDeployment decodes a deployment from JSON (DecodeDeployment) and
// validates it (Validate).
func ParseDeployment(data []byte) (Deployment, error) {
	d, err := DecodeDeployment(data)
	if err != nil {
		return Deployment{}, err
	}
	if err := d.Validate(); err != nil {
		return Deployment{}, err
	}
	return d, nil
}

// DecodeDeployment decodes a deployment from JSON without validating it.
// Decoding is strict: one JSON object, no unknown or duplicate members,
// integers only, valid UTF-8, at most MaxDeploymentBytes. Workload results
// in the input are dropped: they are the node's to set.
func DecodeDeployment(data []byte) (Deployment, error) {
	if len(data) > MaxDeploymentBytes {
		return Deployment{}, fieldErr("", "document larger than %d bytes", MaxDeploymentBytes)
	}
	if _, err := Canonical(data); err != nil {
		return Deployment{}, fieldErr("", "%v", err)
	}
	var d Deployment
	if err := decodeStrict(data, &d); err != nil {
		return Deployment{}, fieldErr("", "%v", err)
	}
	for i := range d.Workloads {
		d.Workloads[i].Result = nil
	}
	return d, nil
}

// Validate checks everything about d that does not need the node: the
// fields, each workload's data against its type's schema, the references
// between workloads and the form of the signature requirement. Signatures
// themselves are checked by VerifySignatures, capacity by the engine.
// Errors are *ValidationError.
func (d *Deployment) Validate() error {
	_, err := d.validate()
	return err
}

// validate is Validate returning the decoded data by workload name.
func (d *Deployment) validate() (map[string]workloadData, error) {
	if d.TwinID == 0 {
		return nil, fieldErr("twin_id", "must be the owner's twin id")
	}
	if len(d.Metadata) > MaxTextBytes {
		return nil, fieldErr("metadata", "at most %d bytes", MaxTextBytes)
	}
	if len(d.Description) > MaxTextBytes {
		return nil, fieldErr("description", "at most %d bytes", MaxTextBytes)
	}
	if len(d.Workloads) == 0 {
		return nil, fieldErr("workloads", "a deployment needs at least one workload")
	}
	if len(d.Workloads) > MaxWorkloads {
		return nil, fieldErr("workloads", "at most %d workloads", MaxWorkloads)
	}
	data := make(map[string]workloadData, len(d.Workloads))
	for i := range d.Workloads {
		w := &d.Workloads[i]
		prefix := fmt.Sprintf("workloads[%d]", i)
		if !workloadNameRE.MatchString(w.Name) {
			return nil, fieldErr(prefix+".name", "must be 1 to 32 of a-z 0-9 _ -, starting with a letter or digit")
		}
		if _, dup := data[w.Name]; dup {
			return nil, fieldErr(prefix+".name", "%q is used by another workload", w.Name)
		}
		if w.Version > d.Version {
			return nil, fieldErr(prefix+".version", "%d is above the deployment version %d", w.Version, d.Version)
		}
		if len(w.Metadata) > MaxTextBytes {
			return nil, fieldErr(prefix+".metadata", "at most %d bytes", MaxTextBytes)
		}
		if len(w.Description) > MaxTextBytes {
			return nil, fieldErr(prefix+".description", "at most %d bytes", MaxTextBytes)
		}
		v, ok := newData(w.Type)
		if !ok {
			return nil, fieldErr(prefix+".type", "unknown workload type %q (known: %s)", w.Type, typeList())
		}
		if _, err := Canonical(w.Data); err != nil {
			return nil, under(prefix+".data", err)
		}
		if err := decodeStrict(w.Data, v); err != nil {
			return nil, under(prefix+".data", err)
		}
		if err := v.check(); err != nil {
			return nil, under(prefix+".data", err)
		}
		data[w.Name] = v
	}
	if err := d.checkReferences(data); err != nil {
		return nil, err
	}
	if err := d.checkRequirement(); err != nil {
		return nil, err
	}
	return data, nil
}

func typeList() string {
	var b bytes.Buffer
	for i, t := range Types() {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(string(t))
	}
	return b.String()
}

// checkReferences checks the names workloads use to point at each other.
func (d *Deployment) checkReferences(data map[string]workloadData) error {
	index := map[string]int{}
	for i, w := range d.Workloads {
		index[w.Name] = i
	}
	ref := func(name string, want ...WorkloadType) (workloadData, error) {
		i, ok := index[name]
		if !ok {
			return nil, fmt.Errorf("no workload called %q in the deployment", name)
		}
		if !slices.Contains(want, d.Workloads[i].Type) {
			return nil, fmt.Errorf("workload %q is a %s, want %v", name, d.Workloads[i].Type, want)
		}
		return data[name], nil
	}
	usedIPs := map[netip.Addr]string{}
	usedDisk := map[string]string{}
	usedPublic := map[string]string{}
	for i, w := range d.Workloads {
		prefix := fmt.Sprintf("workloads[%d].data", i)
		switch v := data[w.Name].(type) {
		case *ZMachineLightData:
			for j, nic := range v.Network.Interfaces {
				field := fmt.Sprintf("%s.network.interfaces[%d]", prefix, j)
				nd, err := ref(nic.Network, NetworkLightType)
				if err != nil {
					return fieldErr(field+".network", "%v", err)
				}
				p, _ := nd.(*NetworkLightData).Prefix()
				ip := netip.MustParseAddr(nic.IP)
				if !p.Contains(ip) {
					return fieldErr(field+".ip", "%s is not in %s's subnet %s", ip, nic.Network, p)
				}
				if ip == p.Addr() || ip == p.Addr().Next() || ip == lastAddr(p) {
					return fieldErr(field+".ip", "%s is the network, gateway or broadcast address of %s", ip, p)
				}
				if other, dup := usedIPs[ip]; dup {
					return fieldErr(field+".ip", "%s is already used by %s", ip, other)
				}
				usedIPs[ip] = w.Name
			}
			if pub := v.Network.PublicIP; pub != "" {
				if _, err := ref(pub, PublicIPv4Type); err != nil {
					return fieldErr(prefix+".network.public_ip", "%v", err)
				}
				if other, dup := usedPublic[pub]; dup {
					return fieldErr(prefix+".network.public_ip", "%q is already used by %s", pub, other)
				}
				usedPublic[pub] = w.Name
			}
			for j, m := range v.Mounts {
				field := fmt.Sprintf("%s.mounts[%d].name", prefix, j)
				if _, err := ref(m.Name, ZMountType, VolumeType, QuantumSafeFSType); err != nil {
					return fieldErr(field, "%v", err)
				}
				if other, dup := usedDisk[m.Name]; dup && d.Workloads[index[m.Name]].Type == ZMountType {
					return fieldErr(field, "zmount %q is already attached to %s", m.Name, other)
				}
				usedDisk[m.Name] = w.Name
			}
		case *ZLogsData:
			if _, err := ref(v.ZMachine, ZMachineLightType); err != nil {
				return fieldErr(prefix+".zmachine", "%v", err)
			}
		}
	}
	return nil
}

// lastAddr is the broadcast address of an IPv4 prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := (uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// checkRequirement checks the form of the signature requirement and of the
// signatures (not whether they verify).
func (d *Deployment) checkRequirement() error {
	r := d.SignatureRequirement
	if len(r.Requests) > MaxSignatureRequests {
		return fieldErr("signature_requirement.requests", "at most %d twins", MaxSignatureRequests)
	}
	seen := map[uint64]bool{}
	var total uint64
	for i, q := range r.Requests {
		field := fmt.Sprintf("signature_requirement.requests[%d]", i)
		if q.TwinID == 0 {
			return fieldErr(field+".twin_id", "must be a twin id")
		}
		if seen[q.TwinID] {
			return fieldErr(field+".twin_id", "twin %d is listed twice", q.TwinID)
		}
		seen[q.TwinID] = true
		if q.Weight == 0 {
			return fieldErr(field+".weight", "must be at least 1")
		}
		total += uint64(q.Weight)
	}
	if len(r.Requests) == 0 && r.WeightRequired > 1 {
		return fieldErr("signature_requirement.weight_required", "without requests only the owner signs, with weight 1")
	}
	if len(r.Requests) > 0 && uint64(r.WeightRequired) > total {
		return fieldErr("signature_requirement.weight_required", "%d is more than the total weight %d", r.WeightRequired, total)
	}
	// Twins outside the requests may sign (on an update the current
	// requirement may name twins the new one drops); their signatures
	// must verify like the others but count for nothing.
	if len(r.Signatures) > 2*MaxSignatureRequests {
		return fieldErr("signature_requirement.signatures", "at most %d signatures", 2*MaxSignatureRequests)
	}
	signed := map[uint64]bool{}
	for i, s := range r.Signatures {
		field := fmt.Sprintf("signature_requirement.signatures[%d]", i)
		if s.TwinID == 0 {
			return fieldErr(field+".twin_id", "must be a twin id")
		}
		if signed[s.TwinID] {
			return fieldErr(field+".twin_id", "twin %d signed twice", s.TwinID)
		}
		signed[s.TwinID] = true
		if b, err := hex.DecodeString(s.Signature); err != nil || len(b) != 64 {
			return fieldErr(field+".signature", "must be 64 bytes in hex")
		}
		if s.SignatureType != "ed25519" && s.SignatureType != "sr25519" {
			return fieldErr(field+".signature_type", "must be ed25519 or sr25519")
		}
	}
	return nil
}

// Resources is the capacity all workloads of a valid deployment use.
func (d *Deployment) Resources() (Resources, error) {
	data, err := d.validate()
	if err != nil {
		return Resources{}, err
	}
	var total Resources
	for _, v := range data {
		total = total.Add(v.resources())
	}
	return total, nil
}

// WorkloadResources is the capacity one workload uses (zero for an
// unknown type or invalid data).
func WorkloadResources(w *Workload) Resources {
	v, ok := newData(w.Type)
	if !ok || decodeStrict(w.Data, v) != nil {
		return Resources{}
	}
	return v.resources()
}

// Marshal returns the deployment as JSON (for files and requests).
func (d *Deployment) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(d); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// CheckUpdate checks that next may replace cur as the next version of the
// deployment: both valid (Validate), same id and owner, the version raised
// by one, every workload's version moved exactly when the workload
// changed, types kept, and each type's update rules (a zmount grows, never
// shrinks). A client checks an update with it before signing; the node
// checks it again on receipt. Errors match ErrInvalid or ErrConflict.
func CheckUpdate(cur, next *Deployment) error {
	curData, err := cur.validate()
	if err != nil {
		return err
	}
	nextData, err := next.validate()
	if err != nil {
		return err
	}
	return checkUpdate(cur, next, curData, nextData)
}

// checkUpdate checks that next may replace cur: same id and owner, the
// version raised by one, every workload's version moved exactly when the
// workload changed, types kept, and each type's update rules (a zmount
// grows, never shrinks). Both must be valid.
func checkUpdate(cur, next *Deployment, curData, nextData map[string]workloadData) error {
	if next.ID != cur.ID {
		return fieldErr("id", "is %d, the deployment is %d", next.ID, cur.ID)
	}
	if next.TwinID != cur.TwinID {
		return fieldErr("twin_id", "the owner of a deployment cannot change")
	}
	if next.Version != cur.Version+1 {
		return &conflictError{fmt.Sprintf("version must be %d (the current version %d plus one), got %d", cur.Version+1, cur.Version, next.Version)}
	}
	for i := range next.Workloads {
		w := &next.Workloads[i]
		prefix := fmt.Sprintf("workloads[%d]", i)
		old, existed := cur.Get(w.Name)
		if !existed {
			if w.Version != next.Version {
				return fieldErr(prefix+".version", "a new workload must have the new deployment version %d", next.Version)
			}
			continue
		}
		if old.Type != w.Type {
			return fieldErr(prefix+".type", "cannot change from %s to %s; remove the workload and add another one", old.Type, w.Type)
		}
		oldHash, err := old.contentHash(true)
		if err != nil {
			return err
		}
		newHash, err := w.contentHash(true)
		if err != nil {
			return err
		}
		switch {
		case oldHash == newHash && w.Version != old.Version:
			return fieldErr(prefix+".version", "unchanged workload must keep its version %d", old.Version)
		case oldHash != newHash && w.Version != next.Version:
			return fieldErr(prefix+".version", "changed workload must have the new deployment version %d", next.Version)
		}
		if u, ok := nextData[w.Name].(updatable); ok && oldHash != newHash {
			if err := u.checkUpdate(curData[w.Name]); err != nil {
				return under(prefix+".data", err)
			}
		}
	}
	return nil
}

// conflictError is a refusal that matches ErrConflict.
type conflictError struct{ msg string }

func (e *conflictError) Error() string        { return "conflict: " + e.msg }
func (e *conflictError) Is(target error) bool { return target == ErrConflict }

// PrepareUpdate turns next, the desired content of the deployment cur
// (workloads with any versions), into a valid update of it: id and owner
// taken from cur, contract and signature requirement taken from cur unless
// set, the version raised by one, and each workload's version kept when it did not change or set to
// the new version when it did. Signatures are dropped (sign the result).
func PrepareUpdate(cur Deployment, next Deployment) (Deployment, error) {
	next.ID, next.TwinID = cur.ID, cur.TwinID
	next.Version = cur.Version + 1
	if next.ContractID == 0 {
		next.ContractID = cur.ContractID
	}
	if len(next.SignatureRequirement.Requests) == 0 && next.SignatureRequirement.WeightRequired == 0 {
		next.SignatureRequirement = cur.SignatureRequirement
	}
	next.SignatureRequirement.Signatures = nil
	// A copy: the caller's slice (often shared with cur) stays as it was.
	next.Workloads = slices.Clone(next.Workloads)
	for i := range next.Workloads {
		w := &next.Workloads[i]
		w.Result = nil
		old, ok := cur.Get(w.Name)
		if !ok {
			w.Version = next.Version
			continue
		}
		oh, err1 := old.contentHash(true)
		nh, err2 := w.contentHash(true)
		if err := errors.Join(err1, err2); err != nil {
			return Deployment{}, under(fmt.Sprintf("workloads[%d].data", i), err)
		}
		if oh == nh {
			w.Version = old.Version
		} else {
			w.Version = next.Version
		}
	}
	return next, nil
}
