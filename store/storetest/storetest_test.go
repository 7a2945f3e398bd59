package storetest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"testing"

	"github.com/grid4/grid4/registrar/api"
)

func TestEachBackendIsFreshAndIsolated(t *testing.T) {
	for _, b := range Backends() {
		t.Run(b, func(t *testing.T) {
			one, two := Open(t, b), Open(t, b)
			if one.Dialect() != b {
				t.Fatalf("Dialect() = %q, want %q", one.Dialect(), b)
			}
			if n, err := one.CountNodes(context.Background()); err != nil || n != 0 {
				t.Fatalf("fresh store has %d nodes (err %v)", n, err)
			}
			if _, err := one.CreateAccount(context.Background(), testAccount()); err != nil {
				t.Fatal(err)
			}
			if _, err := two.AccountByTwin(context.Background(), 1); err == nil {
				t.Fatal("an account created in one fresh database is visible in another")
			}
		})
	}
}

func testAccount() api.Account {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return api.Account{PublicKey: base64.StdEncoding.EncodeToString(b)}
}
