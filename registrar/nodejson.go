package registrar

import (
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

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
	b = appendJSONString(b, n.Location.Country)
	b = append(b, `,"city":`...)
	b = appendJSONString(b, n.Location.City)
	b = append(b, `,"longitude":`...)
	b = appendJSONString(b, n.Location.Longitude)
	b = append(b, `,"latitude":`...)
	b = appendJSONString(b, n.Location.Latitude)
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
			b = appendJSONString(b, f.Name)
			b = append(b, `,"mac":`...)
			b = appendJSONString(b, f.Mac)
			b = append(b, `,"ips":`...)
			if f.IPs == nil {
				b = append(b, "null"...)
			} else {
				b = append(b, '[')
				for j, ip := range f.IPs {
					if j > 0 {
						b = append(b, ',')
					}
					b = appendJSONString(b, ip)
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
	b = appendJSONString(b, n.SerialNumber)
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
		b = appendJSONString(b, n.ZosVersion)
	}
	if len(n.APIEndpoints) > 0 {
		b = append(b, `,"api_endpoints":[`...)
		for i, e := range n.APIEndpoints {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, e)
		}
		b = append(b, ']')
	}
	b = append(b, `,"created_at":`...)
	b = appendJSONTime(b, n.CreatedAt)
	b = append(b, `,"updated_at":`...)
	b = appendJSONTime(b, n.UpdatedAt)
	return append(b, '}')
}

// appendJSONTime appends t as time.Time's MarshalJSON does (RFC 3339 with
// nanoseconds; the store's times lie within years 0..9999, where that does
// not fail).
func appendJSONTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string exactly as encoding/json
// does by default: HTML characters, control characters, U+2028 and U+2029
// escaped, invalid UTF-8 replaced by U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
