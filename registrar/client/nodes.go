package client

import (
	"context"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/grid4/grid4/registrar/api"
)

// NodeFilter selects nodes; zero fields match any node.
type NodeFilter struct {
	// NodeID keeps the node with this id.
	NodeID uint64
	// FarmID keeps the nodes of this farm.
	FarmID uint64
	// TwinID keeps the node of this twin (a twin has at most one).
	TwinID uint64
	// Online, when set, keeps only nodes that are (true) or are not
	// (false) online: seen within the registrar's online cutoff.
	Online *bool
	// SeenWithin, when positive, keeps nodes seen within that long
	// (sent in whole minutes, at least one).
	SeenWithin time.Duration
	// FreeAtLeast keeps the nodes whose latest status report left at
	// least this much of each resource free; zero fields do not filter.
	FreeAtLeast api.Capacity
	// Healthy, when set, keeps only healthy (true) or unhealthy (false)
	// nodes, by their status reports (grid4 registrars).
	Healthy *bool
}

// query returns f as query parameters.
func (f NodeFilter) query() url.Values {
	q := url.Values{}
	setUint(q, "node_id", f.NodeID)
	setUint(q, "farm_id", f.FarmID)
	setUint(q, "twin_id", f.TwinID)
	if f.Online != nil {
		q.Set("online", strconv.FormatBool(*f.Online))
	}
	if f.SeenWithin > 0 {
		q.Set("last_seen", strconv.FormatInt(max(int64(f.SeenWithin/time.Minute), 1), 10))
	}
	setUint(q, "free_cru", f.FreeAtLeast.CRU)
	setUint(q, "free_mru", f.FreeAtLeast.MRU)
	setUint(q, "free_sru", f.FreeAtLeast.SRU)
	setUint(q, "free_hru", f.FreeAtLeast.HRU)
	setUint(q, "free_ips", f.FreeAtLeast.IPv4)
	if f.Healthy != nil {
		// healthy=false means "any" to the public registrar and its
		// clients; status=unhealthy is the way to ask for sick nodes.
		if *f.Healthy {
			q.Set("healthy", "true")
		} else {
			q.Set("status", "unhealthy")
		}
	}
	return q
}

// RegisterNode registers the node of the client's twin in a farm:
// POST /nodes. The twin id of n is set to the client's. It returns the new
// node id; ErrConflict means the twin already has a node.
func (c *Client) RegisterNode(ctx context.Context, n api.RegisterNodeRequest) (uint64, error) {
	twin, err := c.TwinID(ctx)
	if err != nil {
		return 0, fmt.Errorf("POST /nodes: %w", err)
	}
	n.TwinID = twin
	if n.Interfaces == nil {
		n.Interfaces = []api.Interface{}
	}
	return create(ctx, c, "/nodes", n, "node_id", func(out api.NodeID) uint64 { return out.NodeID })
}

// Node returns one node: GET /nodes/{id}.
func (c *Client) Node(ctx context.Context, nodeID uint64) (api.Node, error) {
	return getByID[api.Node](ctx, c, "/nodes", nodeID)
}

// ListNodes returns one page of the nodes matching filter, ordered by id:
// GET /nodes.
func (c *Client) ListNodes(ctx context.Context, filter NodeFilter, page Page) ([]api.Node, error) {
	return listPage[api.Node](ctx, c, "/nodes", filter.query(), page)
}

// Nodes iterates over every node matching filter, fetching pages of
// DefaultPageSize as it goes. An error ends the iteration after being
// yielded once.
func (c *Client) Nodes(ctx context.Context, filter NodeFilter) iter.Seq2[api.Node, error] {
	return paged(func(p Page) ([]api.Node, error) { return c.ListNodes(ctx, filter, p) })
}

// NodeByTwin returns the node of a twin (a twin has at most one), or
// ErrNotFound.
func (c *Client) NodeByTwin(ctx context.Context, twinID uint64) (api.Node, error) {
	nodes, err := c.ListNodes(ctx, NodeFilter{TwinID: twinID}, Page{Number: 1, Size: 1})
	if err != nil {
		return api.Node{}, err
	}
	if len(nodes) == 0 {
		return api.Node{}, fmt.Errorf("node of twin %d: %w", twinID, ErrNotFound)
	}
	return nodes[0], nil
}

// UpdateNode replaces the registration of the client's node:
// PATCH /nodes/{id}, a merge patch that n fills whole. Every field of n is
// written (false and empty too) except an empty ZosVersion, which is left
// out and so keeps the registered one; its twin id is ignored. Moving the
// node to another farm clears its approval.
func (c *Client) UpdateNode(ctx context.Context, nodeID uint64, n api.RegisterNodeRequest) error {
	if n.Interfaces == nil {
		n.Interfaces = []api.Interface{}
	}
	if twin := c.KnownTwinID(); twin != 0 && n.TwinID == 0 {
		n.TwinID = twin
	}
	return c.do(ctx, request{
		method: http.MethodPatch,
		path:   "/nodes/" + strconv.FormatUint(nodeID, 10),
		in:     n,
		signed: true,
	})
}

// ReportUptime tells the registrar the client's node is up and has been for
// uptime (sent in whole seconds, at least one): POST /nodes/{id}/uptime.
// The report's timestamp is the client's clock at each attempt. The reply
// says when to report next and whether the node restarted.
func (c *Client) ReportUptime(ctx context.Context, nodeID uint64, uptime time.Duration) (api.UptimeReply, error) {
	secs := max(uint64(uptime/time.Second), 1)
	var reply api.UptimeReply
	err := c.do(ctx, request{
		method: http.MethodPost,
		path:   "/nodes/" + strconv.FormatUint(nodeID, 10) + "/uptime",
		build: func() (any, error) {
			return api.UptimeReport{Uptime: secs, Timestamp: c.now().Unix()}, nil
		},
		signed: true,
		out:    &reply,
	})
	return reply, err
}

// UptimeHistory returns a node's boots seen through its uptime reports,
// newest first, the current one included: GET /nodes/{id}/uptime. Zero
// since or until leave that end open.
func (c *Client) UptimeHistory(ctx context.Context, nodeID uint64, since, until time.Time) ([]api.UptimeSession, error) {
	q := url.Values{}
	if !since.IsZero() {
		q.Set("since", since.UTC().Format(time.RFC3339))
	}
	if !until.IsZero() {
		q.Set("until", until.UTC().Format(time.RFC3339))
	}
	sessions := []api.UptimeSession{}
	err := c.do(ctx, request{
		method: http.MethodGet,
		path:   "/nodes/" + strconv.FormatUint(nodeID, 10) + "/uptime",
		query:  q,
		out:    &sessions,
	})
	if sessions == nil {
		sessions = []api.UptimeSession{}
	}
	return sessions, err
}

// ReportStatus sends the client's node's resource usage and health:
// POST /nodes/{id}/status (grid4). The report's timestamp is the client's
// clock at each attempt.
func (c *Client) ReportStatus(ctx context.Context, nodeID uint64, rep api.NodeStatusReport) error {
	return c.do(ctx, request{
		method: http.MethodPost,
		path:   "/nodes/" + strconv.FormatUint(nodeID, 10) + "/status",
		build: func() (any, error) {
			rep.Timestamp = c.now().Unix()
			return rep, nil
		},
		signed: true,
	})
}

// NodeStatus returns a node's latest status report (Latest nil before the
// first) and up to size of its recent ones, newest first (size 0: as many
// as the registrar keeps): GET /nodes/{id}/status (grid4).
func (c *Client) NodeStatus(ctx context.Context, nodeID uint64, size int) (api.NodeStatusHistory, error) {
	q := url.Values{}
	if size > 0 {
		q.Set("size", strconv.Itoa(size))
	}
	var st api.NodeStatusHistory
	err := c.do(ctx, request{
		method: http.MethodGet,
		path:   "/nodes/" + strconv.FormatUint(nodeID, 10) + "/status",
		query:  q,
		out:    &st,
	})
	if st.History == nil {
		st.History = []api.NodeStatus{}
	}
	return st, err
}

// SetPowerTarget sets a node's power target, api.PowerOn or
// api.PowerOff, as the farmer of its farm: PUT /nodes/{id}/power.
func (c *Client) SetPowerTarget(ctx context.Context, nodeID uint64, target string) (api.NodePower, error) {
	var out api.NodePower
	err := c.do(ctx, request{method: http.MethodPut, path: "/nodes/" + idPath(nodeID) + "/power",
		in: api.NodePower{PowerTarget: target}, signed: true, out: &out})
	return out, err
}

// PowerTarget returns a node's power target (api.PowerOn when never set):
// GET /nodes/{id}/power.
func (c *Client) PowerTarget(ctx context.Context, nodeID uint64) (api.NodePower, error) {
	var out api.NodePower
	err := c.do(ctx, request{method: http.MethodGet, path: "/nodes/" + idPath(nodeID) + "/power", out: &out})
	return out, err
}
