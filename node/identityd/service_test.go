package identityd

import (
	"context"
	"encoding/hex"
	"testing"

	"github.com/grid4/grid4/keys"
	"github.com/grid4/grid4/node/internal/bustest"
)

func TestServiceOverBus(t *testing.T) {
	l := newLayout(t, 1)
	res := mustOpen(t, l.cfg())
	c := bustest.New(t)
	m := NewManager(res, 42, l.primary)
	bustest.Serve(t, c, Object, m.Methods())
	bustest.Serve(t, c, SignerObject, m.SignerMethods())
	s := NewStub(c)
	ctx := context.Background()

	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.FarmID != 42 || info.Address != Address(res.Key) || info.PublicKey != hex.EncodeToString(res.Key.Public().Key) ||
		info.Origin != Created || info.File != l.primary || len(info.Copies) != 1 || info.Copies[0].State != CopyWritten {
		t.Errorf("info: %+v", info)
	}
	if farm, err := s.FarmID(ctx); farm != 42 || err != nil {
		t.Errorf("FarmID: %d %v", farm, err)
	}
	sig, err := s.Sign(ctx, []byte("hello"))
	if err != nil || !res.Key.Public().Verify([]byte("hello"), sig) {
		t.Fatalf("Sign: %v", err)
	}
	if ok, err := s.Verify(ctx, []byte("hello"), sig); !ok || err != nil {
		t.Errorf("Verify: %v %v", ok, err)
	}
	if ok, _ := s.Verify(ctx, []byte("other"), sig); ok {
		t.Error("Verify accepted a wrong message")
	}

	rk, err := NewRemoteKey(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if rk.Scheme() != keys.Ed25519 || string(rk.Public().Key) != string(res.Key.Public().Key) || rk.Seed() != nil {
		t.Errorf("remote key: %s %x", rk.Scheme(), rk.Public().Key)
	}
	sig, err = rk.Sign([]byte("msg"))
	if err != nil || !rk.Public().Verify([]byte("msg"), sig) {
		t.Errorf("RemoteKey.Sign: %v", err)
	}
	var _ keys.KeyPair = rk
}
