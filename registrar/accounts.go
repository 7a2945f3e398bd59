package registrar

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strings"

	"github.com/grid4/grid4/auth"
	"github.com/grid4/grid4/internal/strictb64"
	"github.com/grid4/grid4/registrar/api"
	"github.com/grid4/grid4/store"
)

// caller returns the authenticated twin of a request on an auth route.
func caller(r *http.Request) uint64 {
	c, _ := auth.CallerFrom(r.Context())
	return c.TwinID
}

// ownTwin returns the twin_id of a request body that may only name the
// signing twin: 0 names it too. Another twin is refused, the message
// ending in why.
func ownTwin(r *http.Request, twin uint64, why string) (uint64, error) {
	c := caller(r)
	if twin == 0 {
		twin = c
	}
	if twin != c {
		return 0, notAuthorized("twin_id %d is not the signing twin %d; %s", twin, c, why)
	}
	return twin, nil
}

// createAccount is POST /accounts: the body is signed with the new key
// itself ("<timestamp>:<public_key>"), there is no X-Auth yet.
func (s *Server) createAccount(w http.ResponseWriter, r *http.Request) error {
	var req api.CreateAccountRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	switch {
	case req.Timestamp == 0:
		return invalid("timestamp", "required: the unix time (seconds) that was signed")
	case req.PublicKey == "":
		return invalid("public_key", "required: standard base64 of the 32-byte public key")
	case req.Signature == "":
		return invalid("signature", `required: base64 signature of "<timestamp>:<public_key>"`)
	}
	if err := validateRelays(req.Relays); err != nil {
		return err
	}
	if err := validateRMBEncKey(req.RMBEncKey); err != nil {
		return err
	}
	now := s.now()
	pub, _, err := auth.VerifyAccount(auth.AccountSignature{
		Timestamp: req.Timestamp, PublicKey: req.PublicKey, Signature: req.Signature,
	}, now, s.cfg.AccountWindow)
	switch {
	case errors.Is(err, auth.ErrExpired), errors.Is(err, auth.ErrNotYetValid):
		// Same message and extra member as the public registrar, so a
		// client can correct its clock from server_time.
		return &httpError{
			status: http.StatusBadRequest,
			msg:    "timestamp outside acceptable window",
			extra:  map[string]any{"server_time": now.Unix(), "window_seconds": int64(s.cfg.AccountWindow.Seconds())},
		}
	case errors.Is(err, auth.ErrWeakKey):
		return badRequest("invalid public key: " + err.Error() + "; generate a new key")
	case errors.Is(err, auth.ErrMalformed):
		if strings.Contains(err.Error(), "public_key") {
			return badRequest("invalid public key format: public_key must be standard base64 (padded) of 32 bytes")
		}
		return badRequest("invalid signature format: " + err.Error())
	case errors.Is(err, auth.ErrBadSignature):
		return newHTTPError(http.StatusUnauthorized, "signature verification error: the signature of \"<timestamp>:<public_key>\" does not verify with public_key (ed25519 or sr25519)")
	case err != nil:
		return err
	}
	relays := req.Relays
	if relays == nil {
		relays = []string{}
	}
	acc, err := s.store.CreateAccount(r.Context(), api.Account{
		// Canonical encoding, so lookups by key match whatever padding
		// variant was verified.
		PublicKey: base64.StdEncoding.EncodeToString(pub),
		Relays:    relays,
		RMBEncKey: req.RMBEncKey,
	})
	if errors.Is(err, store.ErrConflict) {
		return conflict("account with this public key already exists")
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, acc)
	return nil
}

// getAccount is GET /accounts?twin_id=N or ?public_key=B64.
func (s *Server) getAccount(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	twinStr, pk := q.Get("twin_id"), q.Get("public_key")
	var (
		acc api.Account
		err error
	)
	switch {
	case twinStr != "" && pk != "":
		return badRequest("provide either twin_id or public_key, not both")
	case twinStr != "":
		twin, perr := parseID("twin_id", twinStr)
		if perr != nil {
			return perr
		}
		acc, err = s.store.AccountByTwin(r.Context(), twin)
	case pk != "":
		// An unescaped '+' in a query string arrives as a space; base64
		// has no spaces, so put it back.
		pk = strings.ReplaceAll(pk, " ", "+")
		key, derr := strictb64.Std(pk)
		if derr != nil || len(key) != 32 {
			return invalid("public_key", "must be standard base64 (padded) of 32 bytes; URL-encode '+' as %%2B")
		}
		acc, err = s.store.AccountByPublicKey(r.Context(), pk)
	default:
		return badRequest("must provide either twin_id or public_key parameter")
	}
	if errors.Is(err, store.ErrNotFound) {
		return notFound("account not found")
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, acc)
	return nil
}

// updateAccount is PATCH /accounts/{twin_id}: the twin itself changes its
// relays and RMB encryption key. The body is a JSON merge patch (RFC
// 7396): omitted fields are unchanged and null clears a field. Empty values
// ([] and "") leave the field unchanged too, as on the public registrar,
// whose clients send them meaning "not given".
func (s *Server) updateAccount(w http.ResponseWriter, r *http.Request) error {
	twin, err := parseID("twin_id", r.PathValue("twin_id"))
	if err != nil {
		return err
	}
	if c := caller(r); c != twin {
		return notAuthorized("twin %d cannot change the account of twin %d", c, twin)
	}
	data, err := readBody(r)
	if err != nil {
		return err
	}
	var req api.UpdateAccountRequest
	if err := decodeJSON(data, &req); err != nil {
		return err
	}
	if err := validateRelays(req.Relays); err != nil {
		return err
	}
	if err := validateRMBEncKey(req.RMBEncKey); err != nil {
		return err
	}
	nulls, err := nullMembers(data)
	if err != nil {
		return err
	}
	var relays []string // nil: unchanged
	switch {
	case len(req.Relays) > 0:
		relays = req.Relays
	case nulls["relays"]:
		relays = []string{}
	}
	var key *string // nil: unchanged
	switch {
	case req.RMBEncKey != "":
		key = &req.RMBEncKey
	case nulls["rmb_enc_key"]:
		key = new(string)
	}
	if relays != nil || key != nil {
		_, err = s.store.UpdateAccount(r.Context(), twin, relays, key)
		if errors.Is(err, store.ErrNotFound) {
			return notFound("account not found")
		}
		if err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, api.Message{Message: "account updated successfully"})
	return nil
}
