package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strings"

	"github.com/grid4/grid4/internal/strictb64"
	"github.com/grid4/grid4/registrar/api"
)

// ZosVersion returns the approved ZOS version with its rollout (safe to
// upgrade, test farms) and serial: GET /zos/versions/current. ErrNotFound
// means none was ever set.
func (c *Client) ZosVersion(ctx context.Context) (api.ZosVersion, error) {
	var v api.ZosVersion
	err := c.do(ctx, request{method: http.MethodGet, path: "/zos/versions/current", out: &v})
	return v, err
}

// SetZosVersion sets the approved ZOS version (the client's twin must be
// the registrar's admin): POST /zos/versions. Only Version, SafeToUpgrade
// and TestFarms of v are sent; the answer carries the serial and time the
// registrar gave it. ErrConflict means it is already the current one.
func (c *Client) SetZosVersion(ctx context.Context, v api.ZosVersion) (api.ZosVersion, error) {
	in := api.ZosVersion{Version: v.Version, SafeToUpgrade: v.SafeToUpgrade, TestFarms: v.TestFarms}
	if in.TestFarms == nil {
		in.TestFarms = []uint64{}
	}
	var out api.ZosVersion
	err := c.do(ctx, request{method: http.MethodPost, path: "/zos/versions", in: in, signed: true, out: &out})
	return out, err
}

// ZosVersionHistory returns one page of the versions ever set, newest
// first: GET /zos/versions.
func (c *Client) ZosVersionHistory(ctx context.Context, page Page) ([]api.ZosVersion, error) {
	return listPage[api.ZosVersion](ctx, c, "/zos/versions", url.Values{}, page)
}

// ZosVersions iterates over the whole version history, newest first.
func (c *Client) ZosVersions(ctx context.Context) iter.Seq2[api.ZosVersion, error] {
	return paged(func(p Page) ([]api.ZosVersion, error) { return c.ZosVersionHistory(ctx, p) })
}

// LegacyZosVersion reads the version the way older nodes do:
// GET /zos/version, whose body is a JSON string holding the standard base64
// of {"version":…,"safe_to_upgrade":…[,"test_farms":…]} (single quotes
// tolerated, as every consumer replaces them). A registrar answering the
// JSON object itself is understood too. Serial and time are not part of
// this form.
func (c *Client) LegacyZosVersion(ctx context.Context) (api.ZosVersion, error) {
	var raw json.RawMessage
	if err := c.do(ctx, request{method: http.MethodGet, path: "/zos/version", out: &raw}); err != nil {
		return api.ZosVersion{}, err
	}
	v, err := DecodeLegacyZosVersion(raw)
	if err != nil {
		return api.ZosVersion{}, fmt.Errorf("%w: GET /zos/version: %w", ErrBadResponse, err)
	}
	return v, nil
}

// DecodeLegacyZosVersion decodes a GET /zos/version body: a JSON string of
// base64 (standard, padded or not) of the version JSON, or that JSON object
// directly.
func DecodeLegacyZosVersion(body []byte) (api.ZosVersion, error) {
	var v api.ZosVersion
	body = []byte(strings.TrimSpace(string(body)))
	if len(body) > 0 && body[0] == '{' {
		if err := json.Unmarshal(body, &v); err != nil {
			return api.ZosVersion{}, fmt.Errorf("version object: %w", err)
		}
		return v, nil
	}
	var s string
	if err := json.Unmarshal(body, &s); err != nil {
		return api.ZosVersion{}, fmt.Errorf("want a JSON string of base64 or an object: %w", err)
	}
	s = strings.TrimSpace(s)
	dec, err := strictb64.Std(s)
	if err != nil {
		if dec, err = strictb64.RawStd(strings.TrimRight(s, "=")); err != nil {
			return api.ZosVersion{}, fmt.Errorf("version is not base64: %w", err)
		}
	}
	if err := json.Unmarshal([]byte(strings.ReplaceAll(string(dec), "'", `"`)), &v); err != nil {
		return api.ZosVersion{}, fmt.Errorf("decoded version is not JSON: %w", err)
	}
	return v, nil
}

// EncodeLegacyZosVersion returns the standard base64 of
// {"version":…,"safe_to_upgrade":…}, the form PUT /zos/version takes and
// GET /zos/version serves.
func EncodeLegacyZosVersion(version string, safeToUpgrade bool) string {
	b, _ := json.Marshal(struct {
		Version       string `json:"version"`
		SafeToUpgrade bool   `json:"safe_to_upgrade"`
	}{version, safeToUpgrade}) // marshalling a string and a bool cannot fail
	return base64.StdEncoding.EncodeToString(b)
}

// SetLegacyZosVersion sets the version the way the public registrar's
// clients do (the client's twin must be the admin): PUT /zos/version with
// {"version": base64 of {"version","safe_to_upgrade"}}. It cannot set test
// farms; use SetZosVersion on grid4 registrars. ErrConflict means the value
// is unchanged.
func (c *Client) SetLegacyZosVersion(ctx context.Context, version string, safeToUpgrade bool) error {
	in := struct {
		Version string `json:"version"`
	}{EncodeLegacyZosVersion(version, safeToUpgrade)}
	return c.do(ctx, request{method: http.MethodPut, path: "/zos/version", in: in, signed: true})
}
