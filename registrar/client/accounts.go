package client

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/grid4/grid4/auth"
	"github.com/grid4/grid4/keys"
	"github.com/grid4/grid4/registrar/api"
)

// AccountOptions are the optional fields of a new account.
type AccountOptions struct {
	// Relays are the RMB relay hosts of the twin.
	Relays []string
	// RMBEncKey is the twin's RMB encryption public key.
	RMBEncKey string
}

// CreateAccount creates the account (twin) of the client's key:
// POST /accounts with the body signed over "<timestamp>:<public key>" by the
// key itself. The twin id it gets becomes the client's. It fails with
// ErrNoIdentity without a key and ErrConflict when the key already has an
// account.
func (c *Client) CreateAccount(ctx context.Context, opts AccountOptions) (api.Account, error) {
	if c.key == nil {
		return api.Account{}, fmt.Errorf("POST /accounts: %w", ErrNoIdentity)
	}
	build := func() (any, error) {
		// Signed anew for each attempt: the registrar accepts the
		// timestamp only within a few seconds of its clock.
		sig, err := auth.SignAccount(c.key, c.now())
		if err != nil {
			return nil, err
		}
		return api.CreateAccountRequest{
			Timestamp: sig.Timestamp,
			PublicKey: sig.PublicKey,
			Signature: sig.Signature,
			Relays:    opts.Relays,
			RMBEncKey: opts.RMBEncKey,
		}, nil
	}
	var acc api.Account
	if err := c.do(ctx, request{method: http.MethodPost, path: "/accounts", build: build, out: &acc}); err != nil {
		return api.Account{}, err
	}
	if acc.TwinID == 0 {
		return api.Account{}, fmt.Errorf("%w: POST /accounts: no twin_id in the answer", ErrBadResponse)
	}
	c.setTwinID(acc.TwinID)
	return acc, nil
}

// AccountByTwin returns the account of a twin: GET /accounts?twin_id=.
func (c *Client) AccountByTwin(ctx context.Context, twinID uint64) (api.Account, error) {
	var acc api.Account
	q := url.Values{"twin_id": {strconv.FormatUint(twinID, 10)}}
	err := c.do(ctx, request{method: http.MethodGet, path: "/accounts", query: q, out: &acc})
	return acc, err
}

// AccountByPublicKey returns the account of a 32-byte public key:
// GET /accounts?public_key=<standard base64>.
func (c *Client) AccountByPublicKey(ctx context.Context, publicKey []byte) (api.Account, error) {
	if len(publicKey) != keys.PublicKeySize {
		return api.Account{}, fmt.Errorf("%w: public key is %d bytes, want %d", ErrInvalid, len(publicKey), keys.PublicKeySize)
	}
	var acc api.Account
	q := url.Values{"public_key": {base64.StdEncoding.EncodeToString(publicKey)}}
	err := c.do(ctx, request{method: http.MethodGet, path: "/accounts", query: q, out: &acc})
	return acc, err
}

// UpdateAccount changes the client's own account: PATCH /accounts/{twin}.
// Empty fields of u are left unchanged.
func (c *Client) UpdateAccount(ctx context.Context, u api.UpdateAccountRequest) error {
	twin, err := c.TwinID(ctx)
	if err != nil {
		return fmt.Errorf("PATCH /accounts: %w", err)
	}
	return c.do(ctx, request{
		method: http.MethodPatch,
		path:   "/accounts/" + strconv.FormatUint(twin, 10),
		in:     u,
		signed: true,
	})
}

// EnsureAccount returns the account of the client's key, creating it with
// opts when there is none (the node does this on every start). An existing
// account is returned as it is: opts are not applied to it.
func (c *Client) EnsureAccount(ctx context.Context, opts AccountOptions) (api.Account, error) {
	if c.key == nil {
		return api.Account{}, ErrNoIdentity
	}
	acc, err := c.AccountByPublicKey(ctx, c.key.Public().Key)
	if err == nil {
		c.setTwinID(acc.TwinID)
		return acc, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return api.Account{}, err
	}
	acc, err = c.CreateAccount(ctx, opts)
	if errors.Is(err, ErrConflict) {
		// Created concurrently (or by a retry whose first answer was lost).
		if acc, err = c.AccountByPublicKey(ctx, c.key.Public().Key); err == nil {
			c.setTwinID(acc.TwinID)
		}
	}
	return acc, err
}
