package gridtypes

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/grid4/grid4/auth"
	"github.com/grid4/grid4/keys"
)

// TwinKeys looks up the public key of a twin (32 bytes), failing with an
// error wrapping auth.ErrUnknownTwin for a twin that does not exist. The
// node's implementation asks the registrar and caches the answer.
type TwinKeys interface {
	TwinPublicKey(ctx context.Context, twinID uint64) ([]byte, error)
}

// Sign adds twinID's signature of the deployment's hash, made with kp, to
// the signature requirement (replacing an earlier signature of that twin).
// Sign after the last change: any change to the deployment (other than to
// its signatures and results) invalidates every signature.
func (d *Deployment) Sign(twinID uint64, kp keys.KeyPair) error {
	msg, err := d.HashHex()
	if err != nil {
		return err
	}
	sig, err := kp.Sign([]byte(msg))
	if err != nil {
		return fmt.Errorf("sign deployment: %w", err)
	}
	s := Signature{TwinID: twinID, Signature: hex.EncodeToString(sig), SignatureType: string(kp.Scheme())}
	sigs := d.SignatureRequirement.Signatures[:0:0]
	for _, o := range d.SignatureRequirement.Signatures {
		if o.TwinID != twinID {
			sigs = append(sigs, o)
		}
	}
	d.SignatureRequirement.Signatures = append(sigs, s)
	return nil
}

// VerifySignatures checks that every signature of d verifies with its
// twin's key over d's hash, and that together they meet req, the
// signature requirement that applies (d's own for a new deployment; on an
// update, both the current and the new one are checked). Errors wrap
// ErrSignature, except a failing key lookup, which is returned as it is.
func VerifySignatures(ctx context.Context, tk TwinKeys, d *Deployment, req SignatureRequirement) error {
	msg, err := d.HashHex()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrSignature, err)
	}
	valid := map[uint64]bool{}
	for _, s := range d.SignatureRequirement.Signatures {
		scheme, err := keys.ParseScheme(s.SignatureType)
		if err != nil {
			return fmt.Errorf("%w: twin %d: %v", ErrSignature, s.TwinID, err)
		}
		sig, err := hex.DecodeString(s.Signature)
		if err != nil {
			return fmt.Errorf("%w: twin %d: signature is not hex", ErrSignature, s.TwinID)
		}
		pub, err := tk.TwinPublicKey(ctx, s.TwinID)
		if err != nil {
			if errors.Is(err, auth.ErrUnknownTwin) {
				return fmt.Errorf("%w: twin %d: %v", ErrSignature, s.TwinID, err)
			}
			return fmt.Errorf("key of twin %d: %w", s.TwinID, err)
		}
		if !(keys.PublicKey{Scheme: scheme, Key: pub}).Verify([]byte(msg), sig) {
			return fmt.Errorf("%w: the signature of twin %d does not verify (sign the hash %s of this exact version)", ErrSignature, s.TwinID, msg)
		}
		valid[s.TwinID] = true
	}
	reqs, weight := req.effective(d.TwinID)
	var got uint64
	for _, q := range reqs {
		if valid[q.TwinID] {
			got += uint64(q.Weight)
		} else if q.Required {
			return fmt.Errorf("%w: twin %d must sign", ErrSignature, q.TwinID)
		}
	}
	if got < uint64(weight) {
		return fmt.Errorf("%w: signatures weigh %d, %d needed", ErrSignature, got, weight)
	}
	return nil
}
