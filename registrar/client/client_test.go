package client

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/grid4/grid4/auth"
	"github.com/grid4/grid4/keys"
	"github.com/grid4/grid4/registrar/api"
)

func TestNewBaseURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080/api/v1"},
		{"http://127.0.0.1:8080/", "http://127.0.0.1:8080/api/v1"},
		{"https://registrar.example.org/api/v1/", "https://registrar.example.org/api/v1"},
		{"https://registrar.dev4.grid.tf/v1", "https://registrar.dev4.grid.tf/v1"},
		{" http://h:1 ", "http://h:1/api/v1"},
	} {
		c, err := New(tc.in)
		if err != nil {
			t.Errorf("New(%q): %v", tc.in, err)
			continue
		}
		if got := c.BaseURL(); got != tc.want {
			t.Errorf("New(%q).BaseURL() = %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, bad := range []string{"", "127.0.0.1:8080", "ftp://h", "http://", "http://h/?x=1", "http://h/#f", "::"} {
		if _, err := New(bad); !errors.Is(err, ErrInvalidURL) {
			t.Errorf("New(%q): err = %v, want ErrInvalidURL", bad, err)
		}
	}
	if _, err := New("http://h", WithIdentity(nil, 1)); err == nil {
		t.Error("WithIdentity(nil): no error")
	}
	if _, err := New("http://h", WithAuthScheme(AuthScheme(7))); err == nil {
		t.Error("WithAuthScheme(7): no error")
	}
}

func TestCreateAccountSignsBody(t *testing.T) {
	for _, scheme := range []keys.Scheme{keys.Ed25519, keys.Sr25519} {
		t.Run(string(scheme), func(t *testing.T) {
			f := newFake(t)
			kp := mustKey(t, scheme)
			f.handle("POST /api/v1/accounts", false, func(w http.ResponseWriter, r *http.Request, s seen) {
				var req api.CreateAccountRequest
				decode(t, s.Body, &req)
				pub, _, err := auth.VerifyAccount(auth.AccountSignature{Timestamp: req.Timestamp, PublicKey: req.PublicKey, Signature: req.Signature}, time.Now(), 0)
				if err != nil {
					replyError(w, http.StatusUnauthorized, err.Error())
					return
				}
				reply(w, http.StatusCreated, api.Account{TwinID: 7, PublicKey: base64.StdEncoding.EncodeToString(pub), Relays: req.Relays, RMBEncKey: req.RMBEncKey})
			})
			c := f.client(WithIdentity(kp, 0))
			acc, err := c.CreateAccount(context.Background(), AccountOptions{Relays: []string{"relay.example.org"}, RMBEncKey: "abc"})
			if err != nil {
				t.Fatal(err)
			}
			if acc.TwinID != 7 || acc.PublicKey != c.PublicKey() || acc.RMBEncKey != "abc" || !reflect.DeepEqual(acc.Relays, []string{"relay.example.org"}) {
				t.Errorf("account = %+v", acc)
			}
			if c.KnownTwinID() != 7 {
				t.Errorf("KnownTwinID = %d, want 7", c.KnownTwinID())
			}
			s := f.last()
			if ct := s.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if s.Header.Get(auth.HeaderXAuth) != "" || s.Header.Get(auth.HeaderSignatureInput) != "" {
				t.Error("account creation carries an auth header")
			}
		})
	}
}

func TestCreateAccountWithoutKey(t *testing.T) {
	f := newFake(t)
	c := f.client()
	if _, err := c.CreateAccount(context.Background(), AccountOptions{}); !errors.Is(err, ErrNoIdentity) {
		t.Fatalf("err = %v, want ErrNoIdentity", err)
	}
	if _, err := c.EnsureAccount(context.Background(), AccountOptions{}); !errors.Is(err, ErrNoIdentity) {
		t.Fatalf("EnsureAccount err = %v, want ErrNoIdentity", err)
	}
	if err := c.UpdateAccount(context.Background(), api.UpdateAccountRequest{}); !errors.Is(err, ErrNoIdentity) {
		t.Fatalf("UpdateAccount err = %v, want ErrNoIdentity", err)
	}
	if len(f.requests()) != 0 {
		t.Errorf("requests sent without identity: %v", f.requests())
	}
}

func TestAccountLookups(t *testing.T) {
	f := newFake(t)
	kp := mustKey(t, keys.Ed25519)
	pub := base64.StdEncoding.EncodeToString(kp.Public().Key)
	f.handle("GET /api/v1/accounts", false, func(w http.ResponseWriter, r *http.Request, s seen) {
		q := r.URL.Query()
		switch {
		case q.Get("twin_id") == "3" && !q.Has("public_key"):
			reply(w, http.StatusOK, api.Account{TwinID: 3, PublicKey: pub})
		case q.Get("public_key") == pub && !q.Has("twin_id"):
			reply(w, http.StatusOK, api.Account{TwinID: 3, PublicKey: pub})
		default:
			replyError(w, http.StatusNotFound, "account not found")
		}
	})
	c := f.client()
	ctx := context.Background()
	if acc, err := c.AccountByTwin(ctx, 3); err != nil || acc.PublicKey != pub {
		t.Fatalf("AccountByTwin = %+v, %v", acc, err)
	}
	if acc, err := c.AccountByPublicKey(ctx, kp.Public().Key); err != nil || acc.TwinID != 3 {
		t.Fatalf("AccountByPublicKey = %+v, %v", acc, err)
	}
	// '+' and '/' in the key must be escaped in the query.
	if q := f.last().RawQuery; q != "public_key="+url.QueryEscape(pub) {
		t.Errorf("query = %q", q)
	}
	_, err := c.AccountByTwin(ctx, 4)
	var ae *APIError
	if !errors.Is(err, ErrNotFound) || !errors.As(err, &ae) || ae.Message != "account not found" || ae.Status != 404 {
		t.Fatalf("AccountByTwin(4) = %v", err)
	}
	if _, err := c.AccountByPublicKey(ctx, []byte{1, 2}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("short key: %v", err)
	}
}

func TestEnsureAccount(t *testing.T) {
	f := newFake(t)
	kp := mustKey(t, keys.Ed25519)
	pub := base64.StdEncoding.EncodeToString(kp.Public().Key)
	created := false
	f.handle("GET /api/v1/accounts", false, func(w http.ResponseWriter, r *http.Request, s seen) {
		if created && r.URL.Query().Get("public_key") == pub {
			reply(w, http.StatusOK, api.Account{TwinID: 9, PublicKey: pub})
			return
		}
		replyError(w, http.StatusNotFound, "account not found")
	})
	f.handle("POST /api/v1/accounts", false, func(w http.ResponseWriter, r *http.Request, s seen) {
		if created {
			replyError(w, http.StatusConflict, "account with this public key already exists")
			return
		}
		created = true
		reply(w, http.StatusCreated, api.Account{TwinID: 9, PublicKey: pub})
	})
	ctx := context.Background()
	for i := range 2 { // creates, then finds
		c := f.client(WithIdentity(kp, 0))
		acc, err := c.EnsureAccount(ctx, AccountOptions{})
		if err != nil || acc.TwinID != 9 || c.KnownTwinID() != 9 {
			t.Fatalf("round %d: EnsureAccount = %+v, %v", i, acc, err)
		}
	}
	var posts int
	for _, s := range f.requests() {
		if s.Method == http.MethodPost {
			posts++
		}
	}
	if posts != 1 {
		t.Errorf("%d POSTs, want 1", posts)
	}
}

func TestUpdateAccountSignedV2(t *testing.T) {
	f := newFake(t)
	kp := mustKey(t, keys.Ed25519)
	f.addTwin(5, kp)
	f.handle("PATCH /api/v1/accounts/{twin}", true, func(w http.ResponseWriter, r *http.Request, s seen) {
		if r.PathValue("twin") != strconv.FormatUint(s.Caller.TwinID, 10) {
			replyError(w, http.StatusUnauthorized, "not authorized")
			return
		}
		reply(w, http.StatusOK, api.Message{Message: "account updated successfully"})
	})
	c := f.client(WithIdentity(kp, 5))
	if err := c.UpdateAccount(context.Background(), api.UpdateAccountRequest{Relays: []string{"r1"}, RMBEncKey: "k"}); err != nil {
		t.Fatal(err)
	}
	s := f.last()
	if s.Caller.TwinID != 5 || s.Caller.Method != auth.MethodV2 {
		t.Errorf("caller = %+v", s.Caller)
	}
	if s.Header.Get(auth.HeaderContentDigest) == "" {
		t.Error("no Content-Digest")
	}
	var got api.UpdateAccountRequest
	decode(t, s.Body, &got)
	if !reflect.DeepEqual(got, api.UpdateAccountRequest{Relays: []string{"r1"}, RMBEncKey: "k"}) {
		t.Errorf("body = %+v", got)
	}
}

func TestTwinDiscoveryAndLegacyAuth(t *testing.T) {
	f := newFake(t)
	kp := mustKey(t, keys.Sr25519)
	pub := base64.StdEncoding.EncodeToString(kp.Public().Key)
	f.addTwin(11, kp)
	f.handle("GET /api/v1/accounts", false, func(w http.ResponseWriter, r *http.Request, s seen) {
		if r.URL.Query().Get("public_key") == pub {
			reply(w, http.StatusOK, api.Account{TwinID: 11, PublicKey: pub})
			return
		}
		replyError(w, http.StatusNotFound, "account not found")
	})
	f.handle("POST /api/v1/farms", true, func(w http.ResponseWriter, r *http.Request, s seen) {
		reply(w, http.StatusCreated, api.FarmID{FarmID: 2})
	})
	c := f.client(WithIdentity(kp, 0), WithAuthScheme(AuthLegacy))
	id, err := c.CreateFarm(context.Background(), NewFarm{Name: "f1"})
	if err != nil || id != 2 {
		t.Fatalf("CreateFarm = %d, %v", id, err)
	}
	reqs := f.requests()
	if len(reqs) != 2 || reqs[0].Method != http.MethodGet {
		t.Fatalf("requests = %+v", reqs)
	}
	if c := reqs[1].Caller; c.TwinID != 11 || c.Method != auth.MethodLegacy || c.Scheme != keys.Sr25519 {
		t.Errorf("caller = %+v", c)
	}
	// The twin is remembered: no second lookup.
	if _, err := c.CreateFarm(context.Background(), NewFarm{Name: "f2"}); err != nil {
		t.Fatal(err)
	}
	if n := len(f.requests()); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}

	// A key without account cannot sign.
	other := f.client(WithIdentity(mustKey(t, keys.Ed25519), 0))
	if _, err := other.CreateFarm(context.Background(), NewFarm{Name: "f3"}); !errors.Is(err, ErrNoAccount) {
		t.Fatalf("err = %v, want ErrNoAccount", err)
	}
}

func TestFarms(t *testing.T) {
	f := newFake(t)
	kp := mustKey(t, keys.Ed25519)
	f.addTwin(1, kp)
	farm := api.Farm{FarmID: 4, FarmName: "alpha", TwinID: 1, Dedicated: true}
	f.handle("POST /api/v1/farms", true, func(w http.ResponseWriter, r *http.Request, s seen) {
		var body map[string]any
		decode(t, s.Body, &body)
		if body["farm_name"] == "taken" {
			replyError(w, http.StatusConflict, `farm name "taken" is taken`)
			return
		}
		reply(w, http.StatusCreated, api.FarmID{FarmID: 4})
	})
	f.handle("GET /api/v1/farms/{id}", false, func(w http.ResponseWriter, r *http.Request, s seen) {
		if r.PathValue("id") != "4" {
			replyError(w, http.StatusNotFound, "farm not found")
			return
		}
		reply(w, http.StatusOK, farm)
	})
	f.handle("GET /api/v1/farms", false, func(w http.ResponseWriter, r *http.Request, s seen) {
		reply(w, http.StatusOK, []api.Farm{farm})
	})
	f.handle("PATCH /api/v1/farms/{id}", true, func(w http.ResponseWriter, r *http.Request, s seen) {
		reply(w, http.StatusOK, api.Message{Message: "farm updated"})
	})
	f.handle("POST /api/v1/farms/{id}/{action}", true, func(w http.ResponseWriter, r *http.Request, s seen) {
		reply(w, http.StatusOK, api.Message{Message: "ok"})
	})
	c := f.client(WithIdentity(kp, 1))
	ctx := context.Background()

	id, err := c.CreateFarm(ctx, NewFarm{Name: "alpha", StellarAddress: "GABC", Dedicated: true})
	if err != nil || id != 4 {
		t.Fatalf("CreateFarm = %d, %v", id, err)
	}
	var body map[string]any
	decode(t, f.last().Body, &body)
	want := map[string]any{"farm_name": "alpha", "twin_id": 1.0, "stellar_address": "GABC", "dedicated": true}
	if !reflect.DeepEqual(body, want) {
		t.Errorf("create body = %v, want %v", body, want)
	}
	if _, err := c.CreateFarm(ctx, NewFarm{Name: "nostellar"}); err != nil {
		t.Fatal(err)
	}
	body = nil
	decode(t, f.last().Body, &body)
	if _, ok := body["stellar_address"]; ok {
		t.Errorf("empty stellar address sent: %v", body)
	}
	_, err = c.CreateFarm(ctx, NewFarm{Name: "taken"})
	var ae *APIError
	if !errors.Is(err, ErrConflict) || !errors.As(err, &ae) || ae.Message != `farm name "taken" is taken` {
		t.Fatalf("duplicate: %v", err)
	}

	if got, err := c.Farm(ctx, 4); err != nil || !reflect.DeepEqual(got, farm) {
		t.Fatalf("Farm = %+v, %v", got, err)
	}
	if _, err := c.Farm(ctx, 5); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Farm(5) = %v", err)
	}

	list, err := c.ListFarms(ctx, FarmFilter{TwinID: 1, Name: "al pha", FarmID: 4}, Page{Number: 2, Size: 10})
	if err != nil || len(list) != 1 {
		t.Fatalf("ListFarms = %v, %v", list, err)
	}
	q, _ := url.ParseQuery(f.last().RawQuery)
	wantQ := url.Values{"twin_id": {"1"}, "farm_name": {"al pha"}, "farm_id": {"4"}, "page": {"2"}, "size": {"10"}}
	if !reflect.DeepEqual(q, wantQ) {
		t.Errorf("query = %v, want %v", q, wantQ)
	}

	name := "beta"
	if err := c.UpdateFarm(ctx, 4, api.UpdateFarmRequest{FarmName: &name}); err != nil {
		t.Fatal(err)
	}
	if s := f.last(); s.Path != "/api/v1/farms/4" || s.Method != http.MethodPatch || string(s.Body) != `{"farm_name":"beta"}` {
		t.Errorf("update = %s %s %s", s.Method, s.Path, s.Body)
	}

	if err := c.ApproveNodes(ctx, 4, 1, 2); err != nil {
		t.Fatal(err)
	}
	if s := f.last(); s.Path != "/api/v1/farms/4/approve" || string(s.Body) != `{"node_ids":[1,2]}` || s.Caller.TwinID != 1 {
		t.Errorf("approve = %s %s caller %+v", s.Path, s.Body, s.Caller)
	}
	if err := c.RejectNodes(ctx, 4, 3); err != nil {
		t.Fatal(err)
	}
	if s := f.last(); s.Path != "/api/v1/farms/4/reject" || string(s.Body) != `{"node_ids":[3]}` {
		t.Errorf("reject = %s %s", s.Path, s.Body)
	}
	if err := c.ApproveNodes(ctx, 4); !errors.Is(err, ErrInvalid) {
		t.Errorf("approve nothing: %v", err)
	}
}

func TestNodes(t *testing.T) {
	f := newFake(t)
	kp := mustKey(t, keys.Ed25519)
	f.addTwin(8, kp)
	node := api.Node{NodeID: 3, FarmID: 4, TwinID: 8, SerialNumber: "sn", Interfaces: []api.Interface{{Name: "eth0", Mac: "aa", IPs: api.IPList{"10.0.0.2"}}}}
	now := time.Now().UTC().Truncate(time.Second)
	f.handle("POST /api/v1/nodes", true, func(w http.ResponseWriter, r *http.Request, s seen) {
		reply(w, http.StatusCreated, api.NodeID{NodeID: 3})
	})
	f.handle("GET /api/v1/nodes/{id}", false, func(w http.ResponseWriter, r *http.Request, s seen) {
		reply(w, http.StatusOK, node)
	})
	f.handle("GET /api/v1/nodes", false, func(w http.ResponseWriter, r *http.Request, s seen) {
		if r.URL.Query().Get("twin_id") == "99" {
			reply(w, http.StatusOK, []api.Node{})
			return
		}
		reply(w, http.StatusOK, []api.Node{node})
	})
	f.handle("PATCH /api/v1/nodes/{id}", true, func(w http.ResponseWriter, r *http.Request, s seen) {
		reply(w, http.StatusOK, api.Message{Message: "node updated successfully"})
	})
	f.handle("POST /api/v1/nodes/{id}/uptime", true, func(w http.ResponseWriter, r *http.Request, s seen) {
		reply(w, http.StatusCreated, api.UptimeReply{Message: "uptime reported successfully", NextReportIn: 2400, Restarted: true})
	})
	sessions := []api.UptimeSession{{BootTime: now.Add(-time.Hour), LastReport: now, Uptime: 3600, Reports: 2}}
	f.handle("GET /api/v1/nodes/{id}/uptime", false, func(w http.ResponseWriter, r *http.Request, s seen) {
		reply(w, http.StatusOK, sessions)
	})
	c := f.client(WithIdentity(kp, 8), WithClock(func() time.Time { return now }))
	ctx := context.Background()

	reg := api.RegisterNodeRequest{TwinID: 1234, FarmID: 4, SerialNumber: "sn", Resources: api.Resources{CRU: 4}}
	id, err := c.RegisterNode(ctx, reg)
	if err != nil || id != 3 {
		t.Fatalf("RegisterNode = %d, %v", id, err)
	}
	var gotReg api.RegisterNodeRequest
	decode(t, f.last().Body, &gotReg)
	reg.TwinID, reg.Interfaces = 8, []api.Interface{}
	if !reflect.DeepEqual(gotReg, reg) {
		t.Errorf("register body = %+v, want %+v", gotReg, reg)
	}
	if !strings.Contains(string(f.last().Body), `"interfaces":[]`) {
		t.Errorf("interfaces not an empty array: %s", f.last().Body)
	}

	if got, err := c.Node(ctx, 3); err != nil || !reflect.DeepEqual(got, node) {
		t.Fatalf("Node = %+v, %v", got, err)
	}
	online := true
	if _, err := c.ListNodes(ctx, NodeFilter{FarmID: 4, TwinID: 8, NodeID: 3, Online: &online, SeenWithin: 90 * time.Minute}, Page{}); err != nil {
		t.Fatal(err)
	}
	q, _ := url.ParseQuery(f.last().RawQuery)
	wantQ := url.Values{"farm_id": {"4"}, "twin_id": {"8"}, "node_id": {"3"}, "online": {"true"}, "last_seen": {"90"}}
	if !reflect.DeepEqual(q, wantQ) {
		t.Errorf("query = %v, want %v", q, wantQ)
	}
	if n, err := c.NodeByTwin(ctx, 8); err != nil || n.NodeID != 3 {
		t.Fatalf("NodeByTwin = %+v, %v", n, err)
	}
	if _, err := c.NodeByTwin(ctx, 99); !errors.Is(err, ErrNotFound) {
		t.Fatalf("NodeByTwin(99) = %v", err)
	}

	if err := c.UpdateNode(ctx, 3, api.RegisterNodeRequest{FarmID: 5, SerialNumber: "sn2"}); err != nil {
		t.Fatal(err)
	}
	if s := f.last(); s.Method != http.MethodPatch || s.Path != "/api/v1/nodes/3" || s.Caller.TwinID != 8 {
		t.Errorf("update = %s %s %+v", s.Method, s.Path, s.Caller)
	}

	rep, err := c.ReportUptime(ctx, 3, 90*time.Minute+500*time.Millisecond)
	if err != nil || rep.NextReportIn != 2400 || !rep.Restarted {
		t.Fatalf("ReportUptime = %+v, %v", rep, err)
	}
	var ur api.UptimeReport
	decode(t, f.last().Body, &ur)
	if ur != (api.UptimeReport{Uptime: 5400, Timestamp: now.Unix()}) {
		t.Errorf("uptime body = %+v", ur)
	}

	got, err := c.UptimeHistory(ctx, 3, now.Add(-24*time.Hour), now)
	if err != nil || len(got) != 1 || !got[0].BootTime.Equal(sessions[0].BootTime) {
		t.Fatalf("UptimeHistory = %+v, %v", got, err)
	}
	q, _ = url.ParseQuery(f.last().RawQuery)
	if q.Get("since") != now.Add(-24*time.Hour).Format(time.RFC3339) || q.Get("until") != now.Format(time.RFC3339) {
		t.Errorf("history query = %v", q)
	}
	if _, err := c.UptimeHistory(ctx, 3, time.Time{}, time.Time{}); err != nil || f.last().RawQuery != "" {
		t.Errorf("open history: %v, query %q", err, f.last().RawQuery)
	}
}

func TestNodesIterator(t *testing.T) {
	f := newFake(t)
	const total = 250
	f.handle("GET /api/v1/nodes", false, func(w http.ResponseWriter, r *http.Request, s seen) {
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		size, _ := strconv.Atoi(r.URL.Query().Get("size"))
		if size > 100 {
			replyError(w, http.StatusBadRequest, "size must be at most 100")
			return
		}
		out := []api.Node{}
		for i := (page-1)*size + 1; i <= min(page*size, total); i++ {
			out = append(out, api.Node{NodeID: uint64(i)})
		}
		reply(w, http.StatusOK, out)
	})
	c := f.client()
	var ids []uint64
	for n, err := range c.Nodes(context.Background(), NodeFilter{FarmID: 1}) {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, n.NodeID)
	}
	if len(ids) != total || ids[0] != 1 || ids[total-1] != total {
		t.Fatalf("got %d nodes (%v…)", len(ids), ids[:min(3, len(ids))])
	}
	if n := len(f.requests()); n != 3 {
		t.Errorf("%d page requests, want 3", n)
	}
	for i, s := range f.requests() {
		q, _ := url.ParseQuery(s.RawQuery)
		if q.Get("page") != strconv.Itoa(i+1) || q.Get("size") != "100" || q.Get("farm_id") != "1" {
			t.Errorf("request %d query = %v", i, q)
		}
	}

	// Stopping early fetches no more pages.
	before := len(f.requests())
	for n, err := range c.Nodes(context.Background(), NodeFilter{}) {
		if err != nil || n.NodeID == 5 {
			break
		}
	}
	if n := len(f.requests()) - before; n != 1 {
		t.Errorf("%d requests for an early break, want 1", n)
	}
}

func TestIteratorYieldsError(t *testing.T) {
	f := newFake(t)
	f.handle("GET /api/v1/farms", false, func(w http.ResponseWriter, r *http.Request, s seen) {
		replyError(w, http.StatusBadRequest, "bad page")
	})
	var errs int
	for _, err := range f.client().Farms(context.Background(), FarmFilter{}) {
		if !errors.Is(err, ErrInvalid) {
			t.Fatalf("err = %v", err)
		}
		errs++
	}
	if errs != 1 {
		t.Errorf("%d errors yielded, want 1", errs)
	}
}

func TestErrorMapping(t *testing.T) {
	f := newFake(t)
	var status int
	var body string
	f.handle("GET /api/v1/farms/{id}", false, func(w http.ResponseWriter, r *http.Request, s seen) {
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	})
	c := f.client(WithRetry(RetryPolicy{MaxAttempts: 1}))
	for _, tc := range []struct {
		status   int
		body     string
		sentinel error
		msg      string
	}{
		{400, `{"error":"Invalid farm_id"}`, ErrInvalid, "Invalid farm_id"},
		{401, `{"error":"not authorized"}`, ErrUnauthorized, "not authorized"},
		{403, `{"error":"forbidden"}`, ErrUnauthorized, "forbidden"},
		{404, `{"error":"farm not found"}`, ErrNotFound, "farm not found"},
		{409, `{"error":"record already exists"}`, ErrConflict, "record already exists"},
		{413, ``, ErrInvalid, "Request Entity Too Large"},
		{422, `plain text`, ErrInvalid, "plain text"},
		{429, `{"error":"slow down"}`, ErrRateLimited, "slow down"},
		{500, `<html>oops</html>`, ErrServer, "Internal Server Error"},
		{503, `{"error":"db down"}`, ErrServer, "db down"},
	} {
		status, body = tc.status, tc.body
		_, err := c.Farm(context.Background(), 1)
		var ae *APIError
		if !errors.Is(err, tc.sentinel) || !errors.As(err, &ae) || ae.Status != tc.status || ae.Message != tc.msg {
			t.Errorf("%d %s: err = %v (%#v)", tc.status, tc.body, err, ae)
			continue
		}
		for _, other := range []error{ErrNotFound, ErrConflict, ErrUnauthorized, ErrInvalid, ErrRateLimited, ErrServer, ErrUnreachable} {
			if other != tc.sentinel && errors.Is(err, other) {
				t.Errorf("%d matches %v too", tc.status, other)
			}
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("(%d)", tc.status)) || !strings.Contains(err.Error(), "GET /api/v1/farms/1") {
			t.Errorf("message %q", err)
		}
	}
}

func TestBadResponse(t *testing.T) {
	f := newFake(t)
	f.handle("GET /api/v1/farms/{id}", false, func(w http.ResponseWriter, r *http.Request, s seen) {
		fmt.Fprint(w, `{"farm_id":"x"`)
	})
	if _, err := f.client().Farm(context.Background(), 1); !errors.Is(err, ErrBadResponse) {
		t.Fatalf("err = %v", err)
	}
}
