package auth

import (
	"encoding/base64"
	"os"
	"strings"
	"testing"

	"github.com/grid4/grid4/keys"
)

// The sr25519 vector of docs/auth.md §4.4: the //Alice sr25519 key of the
// Substrate development phrase (its SS58 address is the well-known
// 5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY) and one signature of the
// legacy challenge. sr25519 signatures are randomized, so this is a
// signature to verify, not one a signer reproduces.
const (
	srAlicePubHex  = "d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d"
	srAlicePubB64  = "1DWTxxX90xxhFBq9BKmf1oIshViFTM3jmlaE56Vton0="
	srAliceSS58    = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"
	srExampleSig   = "zg9J7MnTtmY5EJFU0k6Vd/szbme+0+Ecq/mwPTYBSjtvHk3/5Car5VulRLYSKmqdiAs0es22J2RA4zxvaQb2ig=="
	srExampleXAuth = "MTcxODAwMDAwMDo0Mg==:" + srExampleSig
)

func TestSr25519DocVector(t *testing.T) {
	kp, err := keys.FromSecretURI(keys.Sr25519, exampleSURI)
	if err != nil {
		t.Fatal(err)
	}
	pub := kp.Public().Key
	if got := base64.StdEncoding.EncodeToString(pub); got != srAlicePubB64 {
		t.Fatalf("//Alice sr25519 public key %s, want %s", got, srAlicePubB64)
	}
	if got := keys.SS58Encode(pub, 42); got != srAliceSS58 {
		t.Fatalf("//Alice SS58 %s, want %s", got, srAliceSS58)
	}
	sig, _ := base64.StdEncoding.DecodeString(srExampleSig)
	if !(keys.PublicKey{Scheme: keys.Sr25519, Key: pub}).Verify([]byte(exampleChallenge), sig) {
		t.Fatal("the documented sr25519 signature does not verify")
	}
	// The same bytes do not verify as ed25519, nor over another message.
	if (keys.PublicKey{Scheme: keys.Ed25519, Key: pub}).Verify([]byte(exampleChallenge), sig) {
		t.Fatal("sr25519 signature verified as ed25519")
	}
	if (keys.PublicKey{Scheme: keys.Sr25519, Key: pub}).Verify([]byte("1718000001:42"), sig) {
		t.Fatal("signature verified over another challenge")
	}
	h, err := ParseLegacyHeader(srExampleXAuth)
	if err != nil || string(h.Challenge) != exampleChallenge {
		t.Fatalf("documented X-Auth: %+v %v", h, err)
	}
	doc, err := os.ReadFile("../docs/auth.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{srAlicePubHex, srAlicePubB64, srAliceSS58, srExampleSig, "X-Auth: " + srExampleXAuth} {
		if !strings.Contains(string(doc), want) {
			t.Errorf("docs/auth.md does not contain %s", want)
		}
	}
}
