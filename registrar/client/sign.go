package client

import (
	"net/http"
	"time"

	"github.com/grid4/grid4/auth"
	"github.com/grid4/grid4/keys"
)

// defaultSigningTransport signs with auth.Transport: signed requests v2 for
// AuthV2, X-Auth for AuthLegacy. auth.Transport signs every RoundTrip
// afresh (new created time and nonce), so each retry is a new signature.
func defaultSigningTransport(base http.RoundTripper, key keys.KeyPair, twinID uint64, scheme AuthScheme, now func() time.Time) http.RoundTripper {
	return &auth.Transport{
		Base:   base,
		Signer: auth.Signer{Key: key, TwinID: twinID, Now: now},
		Legacy: scheme == AuthLegacy,
	}
}
