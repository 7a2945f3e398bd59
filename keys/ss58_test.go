package keys

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

// Published SS58 vectors: subkey's development accounts for prefixes 42, 0
// (Polkadot) and 2 (Kusama), and the subkey-generated pairs of the
// polkascan/py-scale-codec tests for prefixes 200 (a 33-byte ECDSA key), 255,
// 4242 and 14269 (two-byte prefixes).
var ss58Vectors = []struct {
	pub    string
	prefix uint16
	addr   string
}{
	{"d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d", 42, "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"},
	{"d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d", 0, "15oF4uVJwmo4TdGW7VfQxNLavjCXviqxT9S1MgbjMNHr6Sp5"},
	{"d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d", 2, "HNZata7iMYWmk5RvZRTiAsSDhV8366zq2YGb3tLH5Upf74F"},
	{"88dc3417d5058ec4b4503e0c12ea1a0a89be200fe98922423d4334014fa6b0ee", 42, "5FA9nQDVg267DEd8m1ZypXLBnvN7SFxYwV7ndqSYGiN9TTpu"},
	{"6a5a5957ce778c174c02c151e7c4917ac127b33ad8485f579f830fc15d31bc5a", 42, "5EU9mjvZdLRGyDFiBHjxrxvQuaaBpeTZCguhxM3yMX8cpZ2u"},
	{"035676109c54b9a16d271abeb4954316a40a32bcce023ac14c8e26e958aa68fba9", 200, "4pbsSkWcBaYoFHrKJZp5fDVUKbqSYD9dhZZGvpp3vQ5ysVs5ybV"},
	{"66cd6cf085627d6c85af1aaf2bd10cf843033e929b4e3b1c2ba8e4aa46fe111b", 255, "yGF4JP7q5AK46d1FPCEm9sYQ4KooSjHMpyVAjLnsCSWVafPnf"},
	{"44d5a3ac156335ea99d33a83c57c7146c40c8e2260a8a4adf4e7a86256454651", 4242, "mHm8k9Emsvyfp3piCauSH684iA6NakctF8dySQcX94GDdrJrE"},
	{"88f01441682a17b52d6ae12d1a5670cf675fd254897efabaa5069eb3a701ab73", 14269, "r6Gr4gaMP8TsjhFbqvZhv3YvnasugLiRJpzpRHifsqqG18UXa"},
	// Account indices (1-byte checksum), same source.
	{"01", 2, "g4b"},
	{"0001", 2, "3xygo"},
	{"01020304", 2, "zswfoZa"},
	{"2a2c0a0000000000", 2, "848Gh2GcGaZia"},
}

func TestSS58Vectors(t *testing.T) {
	for _, v := range ss58Vectors {
		pub := mustHex(t, v.pub)
		if got := SS58Encode(pub, v.prefix); got != v.addr {
			t.Errorf("SS58Encode(%s, %d) = %s, want %s", v.pub, v.prefix, got, v.addr)
		}
		gotPub, gotPrefix, err := SS58Decode(v.addr)
		if err != nil {
			t.Errorf("SS58Decode(%s): %v", v.addr, err)
			continue
		}
		if !bytes.Equal(gotPub, pub) || gotPrefix != v.prefix {
			t.Errorf("SS58Decode(%s) = %x, %d; want %s, %d", v.addr, gotPub, gotPrefix, v.pub, v.prefix)
		}
	}
}

func TestSS58RoundTripAllPrefixes(t *testing.T) {
	pub := make([]byte, 32)
	for prefix := uint16(0); prefix <= MaxSS58Prefix; prefix++ {
		if _, err := rand.Read(pub); err != nil {
			t.Fatal(err)
		}
		addr := SS58Encode(pub, prefix)
		got, gotPrefix, err := SS58Decode(addr)
		if err != nil {
			t.Fatalf("prefix %d: %v", prefix, err)
		}
		if !bytes.Equal(got, pub) || gotPrefix != prefix {
			t.Fatalf("prefix %d: round trip gave %x, %d", prefix, got, gotPrefix)
		}
	}
}

func TestSS58Rejects(t *testing.T) {
	alice := "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"
	// Change one character: the checksum no longer matches.
	bad := alice[:10] + "x" + alice[11:]
	_, _, err := SS58Decode(bad)
	if !errors.Is(err, ErrSS58Checksum) || !errors.Is(err, ErrInvalidAddress) {
		t.Errorf("changed character: err = %v, want ErrSS58Checksum", err)
	}
	// A valid checksum with the payload swapped for another key's.
	body, _ := base58Decode(alice)
	body[5] ^= 1
	if _, _, err := SS58Decode(base58Encode(body)); !errors.Is(err, ErrSS58Checksum) {
		t.Errorf("changed payload: err = %v, want ErrSS58Checksum", err)
	}
	// The two-byte form of a one-byte prefix is not canonical.
	twoByte := []byte{0x40 | 42>>2, byte(42&3) << 6}
	twoByte = append(twoByte, make([]byte, 32)...)
	sum := ss58Checksum(twoByte)
	if _, _, err := SS58Decode(base58Encode(append(twoByte, sum[:2]...))); !errors.Is(err, ErrInvalidAddress) {
		t.Errorf("non-canonical prefix: err = %v", err)
	}
	for _, s := range []string{"", "0OIl", "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQ", strings.Repeat("z", 200), "1111"} {
		if _, _, err := SS58Decode(s); !errors.Is(err, ErrInvalidAddress) {
			t.Errorf("SS58Decode(%q) err = %v, want ErrInvalidAddress", s, err)
		}
	}
	// A first byte of 128 or more is reserved.
	reserved := append([]byte{0x80}, make([]byte, 34)...)
	if _, _, err := SS58Decode(base58Encode(reserved)); !errors.Is(err, ErrInvalidAddress) {
		t.Errorf("reserved prefix byte: err = %v", err)
	}
}

func TestSS58EncodePanicsOnMisuse(t *testing.T) {
	for _, f := range []func(){
		func() { SS58Encode(make([]byte, 32), MaxSS58Prefix+1) },
		func() { SS58Encode(make([]byte, 31), 42) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			f()
		}()
	}
}

func TestBase58(t *testing.T) {
	// Bitcoin base58 examples.
	cases := []struct{ hex, b58 string }{
		{"", ""},
		{"61", "2g"},
		{"626262", "a3gV"},
		{"636363", "aPEr"},
		{"00000000000000000000", "1111111111"},
		{"00eb15231dfceb60925886b67d065299925915aeb172c06647", "1NS17iag9jJgTHD1VXjvLCEnZuQ3rJDE9L"},
	}
	for _, c := range cases {
		if got := base58Encode(mustHex(t, c.hex)); got != c.b58 {
			t.Errorf("base58Encode(%s) = %s, want %s", c.hex, got, c.b58)
		}
		got, err := base58Decode(c.b58)
		if err != nil || hexOf(got) != c.hex {
			t.Errorf("base58Decode(%s) = %x, %v; want %s", c.b58, got, err, c.hex)
		}
	}
}

func TestParsePublicKey(t *testing.T) {
	want := mustHex(t, "d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d")
	for _, s := range []string{
		"0xd43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d",
		"d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d",
		"0XD43593C715FDD31C61141ABD04A99FD6822C8558854CCDE39A5684E7A56DA27D",
		base64.StdEncoding.EncodeToString(want),
		base64.RawURLEncoding.EncodeToString(want),
		"5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY",
		"15oF4uVJwmo4TdGW7VfQxNLavjCXviqxT9S1MgbjMNHr6Sp5",
		" 5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY\n",
	} {
		got, err := ParsePublicKey(s)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("ParsePublicKey(%q) = %x, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "0x1234", "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQZ", "g4b"} {
		if _, err := ParsePublicKey(s); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("ParsePublicKey(%q) err = %v, want ErrInvalidKey", s, err)
		}
	}
}

func FuzzSS58Decode(f *testing.F) {
	for _, v := range ss58Vectors {
		f.Add(v.addr)
	}
	f.Add("")
	f.Add("0OIl")
	f.Fuzz(func(t *testing.T, addr string) {
		pub, prefix, err := SS58Decode(addr)
		if err != nil {
			if !errors.Is(err, ErrInvalidAddress) {
				t.Fatalf("error %v does not wrap ErrInvalidAddress", err)
			}
			return
		}
		// Decoding is canonical: what decodes re-encodes to the same text.
		if got := SS58Encode(pub, prefix); got != addr {
			t.Fatalf("SS58Decode(%q) = %x, %d, which encodes to %q", addr, pub, prefix, got)
		}
	})
}

func TestParseSignature(t *testing.T) {
	want := bytes.Repeat([]byte{0xab, 0x01}, 32)
	hexSig := hexOf(want)
	for _, s := range []string{
		hexSig,
		"0x" + hexSig,
		strings.ToUpper(hexSig),
		base64.StdEncoding.EncodeToString(want),
		base64.RawStdEncoding.EncodeToString(want),
		base64.URLEncoding.EncodeToString(want),
		" " + hexSig + "\n",
	} {
		got, err := ParseSignature(s)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("ParseSignature(%q) = %x, %v", s, got, err)
		}
	}
	cases := []struct{ in, want string }{
		{"", "0 bytes"},
		{hexSig[:126], "63 bytes"},
		{base64.StdEncoding.EncodeToString(want[:63]), "63 bytes"},
		{"0x" + hexSig[:10], "5 bytes of hex"},
		{"not a signature!", "not hex or base64"},
	}
	for _, c := range cases {
		_, err := ParseSignature(c.in)
		if !errors.Is(err, ErrMalformedSignature) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseSignature(%q) err = %v, want ErrMalformedSignature mentioning %q", c.in, err, c.want)
		}
	}
}
