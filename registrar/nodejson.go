package registrar

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/grid4/grid4/internal/jsonstr"
	"github.com/grid4/grid4/registrar/api"
)

// Node lists are the registrar's largest answers (a page of 50 nodes is
// some 25 kB), and encoding/json spent more CPU on them, by reflection,
// than the database spent finding the nodes. appendNode writes exactly the
// bytes json.Marshal writes for an api.Node (nodejson_test.go compares
// them), directly.

// nodeBufs recycles the buffers node lists are encoded into.
var nodeBufs = sync.Pool{New: func() any { b := make([]byte, 0, 32<<10); return &b }}

// writeNodes writes nodes as a JSON array with status 200, as writeJSON
// would.
func writeNodes(w http.ResponseWriter, nodes []api.Node) {
	bp := nodeBufs.Get().(*[]byte)
	b := append((*bp)[:0], '[')
	for i := range nodes {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendNode(b, &nodes[i])
	}
	b = append(b, ']', '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	if cap(b) <= 1<<20 { // do not keep a buffer of a rare huge page
		*bp = b
		nodeBufs.Put(bp)
	}
}

// appendNode appends json.Marshal(n).
func appendNode(b []byte, n *api.Node) []byte {
	b = append(b, `{"node_id":`...)
	b = strconv.AppendUint(b, n.NodeID, 10)
	b = append(b, `,"farm_id":`...)
	b = strconv.AppendUint(b, n.FarmID, 10)
	b = append(b, `,"twin_id":`...)
	b = strconv.AppendUint(b, n.TwinID, 10)
	b = append(b, `,"location":{"country":`...)
	b = jsonstr.AppendMarshal(b, n.Location.Country)
	b = append(b, `,"city":`...)
	b = jsonstr.AppendMarshal(b, n.Location.City)
	b = append(b, `,"longitude":`...)
	b = jsonstr.AppendMarshal(b, n.Location.Longitude)
	b = append(b, `,"latitude":`...)
	b = jsonstr.AppendMarshal(b, n.Location.Latitude)
	b = append(b, `},"resources":{"hru":`...)
	b = strconv.AppendUint(b, n.Resources.HRU, 10)
	b = append(b, `,"sru":`...)
	b = strconv.AppendUint(b, n.Resources.SRU, 10)
	b = append(b, `,"cru":`...)
	b = strconv.AppendUint(b, n.Resources.CRU, 10)
	b = append(b, `,"mru":`...)
	b = strconv.AppendUint(b, n.Resources.MRU, 10)
	b = append(b, `},"interfaces":`...)
	if n.Interfaces == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, f := range n.Interfaces {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"name":`...)
			b = jsonstr.AppendMarshal(b, f.Name)
			b = append(b, `,"mac":`...)
			b = jsonstr.AppendMarshal(b, f.Mac)
			b = append(b, `,"ips":`...)
			if f.IPs == nil {
				b = append(b, "null"...)
			} else {
				b = append(b, '[')
				for j, ip := range f.IPs {
					if j > 0 {
						b = append(b, ',')
					}
					b = jsonstr.AppendMarshal(b, ip)
				}
				b = append(b, ']')
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"secure_boot":`...)
	b = strconv.AppendBool(b, n.SecureBoot)
	b = append(b, `,"virtualized":`...)
	b = strconv.AppendBool(b, n.Virtualized)
	b = append(b, `,"serial_number":`...)
	b = jsonstr.AppendMarshal(b, n.SerialNumber)
	b = append(b, `,"approved":`...)
	b = strconv.AppendBool(b, n.Approved)
	b = append(b, `,"last_seen":`...)
	if n.LastSeen == nil {
		b = append(b, "null"...)
	} else {
		b = appendJSONTime(b, *n.LastSeen)
	}
	b = append(b, `,"online":`...)
	b = strconv.AppendBool(b, n.Online)
	if n.ZosVersion != "" {
		b = append(b, `,"zos_version":`...)
		b = jsonstr.AppendMarshal(b, n.ZosVersion)
	}
	if len(n.APIEndpoints) > 0 {
		b = append(b, `,"api_endpoints":[`...)
		for i, e := range n.APIEndpoints {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonstr.AppendMarshal(b, e)
		}
		b = append(b, ']')
	}
	b = appendNodeStatus(b, n)
	b = append(b, `,"created_at":`...)
	b = appendJSONTime(b, n.CreatedAt)
	b = append(b, `,"updated_at":`...)
	b = appendJSONTime(b, n.UpdatedAt)
	return append(b, '}')
}

// appendNodeStatus appends the status members of n: healthy, status_at
// and free_resources.
func appendNodeStatus(b []byte, n *api.Node) []byte {
	b = append(b, `,"healthy":`...)
	b = strconv.AppendBool(b, n.Healthy)
	if n.StatusAt != nil {
		b = append(b, `,"status_at":`...)
		b = appendJSONTime(b, *n.StatusAt)
	}
	if f := n.Free; f != nil {
		b = append(b, `,"free_resources":{"cru":`...)
		b = strconv.AppendUint(b, f.CRU, 10)
		b = append(b, `,"mru":`...)
		b = strconv.AppendUint(b, f.MRU, 10)
		b = append(b, `,"sru":`...)
		b = strconv.AppendUint(b, f.SRU, 10)
		b = append(b, `,"hru":`...)
		b = strconv.AppendUint(b, f.HRU, 10)
		b = append(b, `,"ipv4":`...)
		b = strconv.AppendUint(b, f.IPv4, 10)
		b = append(b, '}')
	}
	return b
}

// appendJSONTime appends t as time.Time's MarshalJSON does (RFC 3339 with
// nanoseconds; the store's times lie within years 0..9999, where that does
// not fail).
func appendJSONTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}
