package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/grid4/grid4/keys"
	"github.com/grid4/grid4/registrar/api"
)

func TestZosVersionNative(t *testing.T) {
	f := newFake(t)
	kp := mustKey(t, keys.Ed25519)
	f.addTwin(1, kp)
	at := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	cur := api.ZosVersion{Version: "v4.1.2", SafeToUpgrade: false, TestFarms: []uint64{1, 2}, Serial: 3, SetBy: 1, CreatedAt: at}
	f.handle("GET /api/v1/zos/versions/current", false, func(w http.ResponseWriter, r *http.Request, s seen) {
		reply(w, http.StatusOK, cur)
	})
	f.handle("POST /api/v1/zos/versions", true, func(w http.ResponseWriter, r *http.Request, s seen) {
		var v api.ZosVersion
		decode(t, s.Body, &v)
		if v.Version == cur.Version {
			replyError(w, http.StatusConflict, "version already set")
			return
		}
		v.Serial, v.SetBy, v.CreatedAt = 4, s.Caller.TwinID, at
		reply(w, http.StatusCreated, v)
	})
	var history []api.ZosVersion
	for i := 250; i >= 1; i-- {
		history = append(history, api.ZosVersion{Version: "v4.0." + strconv.Itoa(i), Serial: uint64(i)})
	}
	f.handle("GET /api/v1/zos/versions", false, func(w http.ResponseWriter, r *http.Request, s seen) {
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		size, _ := strconv.Atoi(r.URL.Query().Get("size"))
		if page == 0 {
			page, size = 1, 50
		}
		lo, hi := min((page-1)*size, len(history)), min(page*size, len(history))
		reply(w, http.StatusOK, history[lo:hi])
	})
	c := f.client(WithIdentity(kp, 1))
	ctx := context.Background()

	got, err := c.ZosVersion(ctx)
	if err != nil || !reflect.DeepEqual(got, cur) {
		t.Fatalf("ZosVersion = %+v, %v", got, err)
	}

	set, err := c.SetZosVersion(ctx, api.ZosVersion{Version: "v4.1.3", SafeToUpgrade: true, Serial: 77})
	if err != nil || set.Serial != 4 || set.SetBy != 1 || set.Version != "v4.1.3" {
		t.Fatalf("SetZosVersion = %+v, %v", set, err)
	}
	var body map[string]any
	decode(t, f.last().Body, &body)
	if want := map[string]any{"version": "v4.1.3", "safe_to_upgrade": true, "test_farms": []any{}}; !reflect.DeepEqual(body, want) {
		t.Errorf("set body = %v, want %v", body, want)
	}
	if _, err := c.SetZosVersion(ctx, api.ZosVersion{Version: "v4.1.2", TestFarms: []uint64{1, 2}}); !errors.Is(err, ErrConflict) {
		t.Errorf("unchanged: %v", err)
	}

	page, err := c.ZosVersionHistory(ctx, Page{Number: 2, Size: 10})
	if err != nil || len(page) != 10 || page[0].Serial != 240 {
		t.Fatalf("ZosVersionHistory = %v, %v", page, err)
	}
	q, _ := url.ParseQuery(f.last().RawQuery)
	if q.Get("page") != "2" || q.Get("size") != "10" {
		t.Errorf("query %v", q)
	}
	var serials []uint64
	for v, err := range c.ZosVersions(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		serials = append(serials, v.Serial)
	}
	if len(serials) != 250 || serials[0] != 250 || serials[249] != 1 {
		t.Errorf("iterated %d versions", len(serials))
	}
}

func TestLegacyZosVersion(t *testing.T) {
	f := newFake(t)
	kp := mustKey(t, keys.Ed25519)
	f.addTwin(1, kp)
	var body string
	f.handle("GET /api/v1/zos/version", false, func(w http.ResponseWriter, r *http.Request, s seen) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body))
	})
	var stored string
	f.handle("PUT /api/v1/zos/version", true, func(w http.ResponseWriter, r *http.Request, s seen) {
		var in struct {
			Version string `json:"version"`
		}
		decode(t, s.Body, &in)
		if in.Version == stored {
			replyError(w, http.StatusConflict, "version already set")
			return
		}
		stored = in.Version
		w.WriteHeader(http.StatusOK) // empty body, as the public registrar
	})
	c := f.client(WithIdentity(kp, 1))
	ctx := context.Background()
	jsonString := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

	for _, tc := range []struct {
		name, body string
		want       api.ZosVersion
	}{
		{"base64 string", jsonString(b64(`{"version":"v0.1.8","safe_to_upgrade":true}`)), api.ZosVersion{Version: "v0.1.8", SafeToUpgrade: true}},
		{"single quotes", jsonString(b64(`{'version':'v3.x','safe_to_upgrade':false}`)), api.ZosVersion{Version: "v3.x"}},
		{"test farms", jsonString(b64(`{"version":"v4","safe_to_upgrade":false,"test_farms":[1,2]}`)), api.ZosVersion{Version: "v4", TestFarms: []uint64{1, 2}}},
		{"unpadded", jsonString(base64.RawStdEncoding.EncodeToString([]byte(`{"version":"v1"}`))), api.ZosVersion{Version: "v1"}},
		{"object", `{"version":"v2","safe_to_upgrade":true}`, api.ZosVersion{Version: "v2", SafeToUpgrade: true}},
	} {
		body = tc.body
		got, err := c.LegacyZosVersion(ctx)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: LegacyZosVersion = %+v, %v; want %+v", tc.name, got, err, tc.want)
		}
	}
	for _, bad := range []string{`"not base64!"`, jsonString(b64("not json")), `42`} {
		body = bad
		if _, err := c.LegacyZosVersion(ctx); !errors.Is(err, ErrBadResponse) {
			t.Errorf("body %s: err = %v", bad, err)
		}
	}

	if err := c.SetLegacyZosVersion(ctx, "v4.2.0", true); err != nil {
		t.Fatal(err)
	}
	dec, err := base64.StdEncoding.DecodeString(stored)
	if err != nil || string(dec) != `{"version":"v4.2.0","safe_to_upgrade":true}` {
		t.Errorf("stored %q → %q, %v", stored, dec, err)
	}
	if s := f.last(); s.Method != http.MethodPut || s.Caller.TwinID != 1 {
		t.Errorf("PUT %+v", s)
	}
	if err := c.SetLegacyZosVersion(ctx, "v4.2.0", true); !errors.Is(err, ErrConflict) {
		t.Errorf("unchanged: %v", err)
	}
	// What GET serves decodes back.
	body = jsonString(stored)
	if v, err := c.LegacyZosVersion(ctx); err != nil || v.Version != "v4.2.0" || !v.SafeToUpgrade {
		t.Errorf("round trip: %+v, %v", v, err)
	}
}
