package keys

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.TrimPrefix(s, "0x"))
	if err != nil {
		t.Fatalf("bad hex in test: %v", err)
	}
	return b
}

func hexOf(b []byte) string { return hex.EncodeToString(b) }

// Public keys of Substrate's development accounts, as hard-coded in
// sp-keyring (substrate/primitives/keyring/src/{sr25519,ed25519}.rs) and
// printed by `subkey inspect //Alice` and friends.
var devAccounts = []struct {
	path    string
	sr25519 string
	ed25519 string
}{
	{"//Alice", "d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d", "88dc3417d5058ec4b4503e0c12ea1a0a89be200fe98922423d4334014fa6b0ee"},
	{"//Bob", "8eaf04151687736326c9fea17e25fc5287613693c912909cb226aa4794f26a48", "d17c2d7823ebf260fd138f2d7e27d114c0145d968b5ff5006125f2414fadae69"},
	{"//Charlie", "90b5ab205c6974c9ea841be688864633dc9ca8a357843eeacf2314649965fe22", "439660b36c6c03afafca027b910b4fecf99801834c62a5e6006f27d978de234f"},
	{"//Dave", "306721211d5404bd9da88e0204360a1a9ab8b87c66c1bc2fcdd37f3c2222cc20", "5e639b43e0052c47447dac87d6fd2b6ec50bdd4d0f614e4299c665249bbd09d9"},
	{"//Eve", "e659a7a1628cdd93febc04a4e0646ea20e9f5f0ce097d9a05290d4a9e054df4e", "1dfe3e22cc0d45c70779c1095f7489a8ef3cf52d62fbd8c2fa38c9f1723502b5"},
	{"//Ferdie", "1cbd2d43530a44705ad088af313e18f80b53ef16b36177cd4b77b846f2a5f07c", "568cb4a574c6d178feb39c27dfc8b3f789e5f5423e19c71633c748b9acf086b5"},
	{"//Alice//stash", "be5ddb1579b72e84524fc29e78609e3caf42e85aa118ebfe0b0ad404b5bdd25f", "451781cd0c5504504f69ceec484cc66e4c22a2b6a9d20fb1a426d91ad074a2a8"},
	{"//Bob//stash", "fe65717dad0447d715f660a0a58411de509b42e6efb8375f562f58a554d5860e", "292684abbb28def63807c5f6e84e9e8689769eb37b1ab130d79dbfbf1b9a0d44"},
	{"//One", "ac859f8a216eeb1b320b4c76d118da3d7407fa523484d0a980126d3b4d0d220a", "16f97016bbea8f7b45ae6757b49efc1080accc175d8f018f9ba719b60b0815e4"},
	{"//Two", "1254f7017f0b8347ce7ab14f96d818802e7e9e0c0d1b7c9acb3c726b080e7a03", "5079bcd20fd97d7d2f752c4607012600b401950260a91821f73e692071c82bf5"},
}

func TestDevAccounts(t *testing.T) {
	for _, a := range devAccounts {
		for _, c := range []struct {
			scheme Scheme
			want   string
		}{{Sr25519, a.sr25519}, {Ed25519, a.ed25519}} {
			t.Run(string(c.scheme)+a.path, func(t *testing.T) {
				kp, err := FromSecretURI(c.scheme, DevPhrase+a.path)
				if err != nil {
					t.Fatal(err)
				}
				if got := hexOf(kp.Public().Key); got != c.want {
					t.Fatalf("public key %s, want %s", got, c.want)
				}
				// The same through FromMnemonic.
				kp2, err := FromMnemonic(c.scheme, DevPhrase, "", a.path)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(kp2.Public().Key, kp.Public().Key) {
					t.Fatal("FromMnemonic and FromSecretURI disagree")
				}
				// A derived key's Seed reloads as the same key.
				again, err := FromSeed(c.scheme, kp.Seed())
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(again.Public().Key, kp.Public().Key) {
					t.Fatal("FromSeed(Seed()) gave another key")
				}
			})
		}
	}
}

// Secret seeds and SS58 addresses printed by `subkey inspect` for the
// development accounts, and the root of the development phrase (sp-core's
// DEV_ADDRESS).
func TestSubkeyInspectVectors(t *testing.T) {
	cases := []struct {
		scheme Scheme
		suri   string
		seed   string
		pub    string
		ss58   string
	}{
		{Sr25519, DevPhrase, "fac7959dbfe72f052e5a0c3c8d6530f202b02fd8f9f5ca3580ec8deb7797479e", "46ebddef8cd9bb167dc30878d7113b7e168e6f0646beffd77d69d39bad76b47a", "5DfhGyQdFobKM8NsWvEeAKk5EQQgYe9AydgJ7rMB6E1EqRzV"},
		{Sr25519, DevPhrase + "//Alice", "e5be9a5092b81bca64be81d212e7f2f9eba183bb7a90954f7b76361f6edb5c0a", "d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d", "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"},
		{Sr25519, DevPhrase + "//Bob", "398f0c28f98885e046333d4a41c19cee4c37368a9832c6502f6cfd182e2aef89", "8eaf04151687736326c9fea17e25fc5287613693c912909cb226aa4794f26a48", "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty"},
		{Sr25519, DevPhrase + "//Alice//stash", "", "be5ddb1579b72e84524fc29e78609e3caf42e85aa118ebfe0b0ad404b5bdd25f", "5GNJqTPyNqANBkUVMN1LPPrxXnFouWXoe2wNSmmEoLctxiZY"},
		{Ed25519, DevPhrase + "//Alice", "abf8e5bdbe30c65656c0a3cbd181ff8a56294a69dfedd27982aace4a76909115", "88dc3417d5058ec4b4503e0c12ea1a0a89be200fe98922423d4334014fa6b0ee", "5FA9nQDVg267DEd8m1ZypXLBnvN7SFxYwV7ndqSYGiN9TTpu"},
	}
	for _, c := range cases {
		t.Run(string(c.scheme)+" "+c.suri, func(t *testing.T) {
			kp, err := FromSecretURI(c.scheme, c.suri)
			if err != nil {
				t.Fatal(err)
			}
			if c.seed != "" && hexOf(kp.Seed()) != c.seed {
				t.Errorf("seed %x, want %s", kp.Seed(), c.seed)
			}
			if got := hexOf(kp.Public().Key); got != c.pub {
				t.Errorf("public key %s, want %s", got, c.pub)
			}
			if got := SS58Encode(kp.Public().Key, GenericSS58Prefix); got != c.ss58 {
				t.Errorf("SS58 %s, want %s", got, c.ss58)
			}
		})
	}
}

// sp-core's sr25519 compatibility test: a soft junction off the development
// phrase ("<DEV_PHRASE>/Alice").
func TestSr25519SoftDerivationVector(t *testing.T) {
	kp, err := FromSecretURI(Sr25519, DevPhrase+"/Alice")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := hexOf(kp.Public().Key), "d6c71059dbbe9ad2b0ed3f289738b800836eb425544ce694825285b958ca755e"; got != want {
		t.Fatalf("public key %s, want %s", got, want)
	}
	if kp.Seed() != nil {
		t.Fatal("a soft-derived sr25519 key reports a seed")
	}
	msg := []byte("soft")
	sig, err := kp.Sign(msg)
	if err != nil {
		t.Fatal(err)
	}
	if !kp.Public().Verify(msg, sig) {
		t.Fatal("soft-derived key's signature does not verify")
	}
	// A hard junction after the soft one makes a mini secret key again.
	kp2, err := FromSecretURI(Sr25519, DevPhrase+"/Alice//x")
	if err != nil {
		t.Fatal(err)
	}
	again, err := FromSeed(Sr25519, kp2.Seed())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.Public().Key, kp2.Public().Key) {
		t.Fatal("FromSeed(Seed()) after soft then hard gave another key")
	}
}

// sp-core's ed25519 seed_and_derive_should_work: seed 9d61…7f60 (RFC 8032
// TEST 1) with a hard junction of chain code 0 (which is what "//0" encodes
// to) gives seed ede3…b21c.
func TestEd25519HardDerivationVector(t *testing.T) {
	root, err := FromSeed(Ed25519, mustHex(t, "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"))
	if err != nil {
		t.Fatal(err)
	}
	child, err := Derive(root, []Junction{{Hard: true}})
	if err != nil {
		t.Fatal(err)
	}
	const want = "ede3354e133f9c8e337ddd6ee5415ed4b4ffe5fc7d21e933f4930a3730e5b21c"
	if got := hexOf(child.Seed()); got != want {
		t.Fatalf("derived seed %s, want %s", got, want)
	}
	viaURI, err := FromSecretURI(Ed25519, "0x9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60//0")
	if err != nil {
		t.Fatal(err)
	}
	if got := hexOf(viaURI.Seed()); got != want {
		t.Fatalf("derived seed via //0 %s, want %s", got, want)
	}
}

// ed25519 seeds for secret URIs, as listed by the substrate_bip39 Dart
// package's tests (its //Alice matches `subkey inspect --scheme ed25519`).
// They cover the junction encodings: numbers (u64 little-endian, leading
// zeros), the u64 overflow that falls back to a string, negative numbers and
// hex-looking names that stay strings.
func TestEd25519SecretURIVectors(t *testing.T) {
	const abandon = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"
	cases := []struct{ suri, seed string }{
		{abandon + "//Alice", "44619e7d561115c143d6926973562c86cf5b31c915e9c0a5294e7c74dabfb17b"},
		{DevPhrase + "//Alice", "abf8e5bdbe30c65656c0a3cbd181ff8a56294a69dfedd27982aace4a76909115"},
		{DevPhrase + "//Bob", "3b7b60af2abcd57ba401ab398f84f4ca54bd6b2140d2503fbcf3286535fe3ff1"},
		{DevPhrase + "//Charlie", "072c02fa1409dc37e03a4ed01703d4a9e6bba9c228a49a00366e9630a97cba7c"},
		{DevPhrase + "//Dave", "771f47d3caf8a2ee40b0719e1c1ecbc01d73ada220cf08df12a00453ab703738"},
		{DevPhrase + "//Eve", "bef5a3cd63dd36ab9792364536140e5a0cce6925969940c431934de056398556"},
		{DevPhrase + "//Ferdie", "1441e38eb309b66e9286867a5cd05902b05413eb9723a685d4d77753d73d0a1d"},
		{DevPhrase + "//1//2//3", "b4b62b076ae5e9b63dc6a976924fa7a83bf0e7d2d627bd4374344f78c871e248"},
		{DevPhrase + "//18446744073709551616", "e95232125504305f665b8e8c891e1e1e87fcbb0b4eff38a9e100862207d2ce97"},
		{DevPhrase + "//18446744073709551615", "62f06c42dd25e780d5be1610c571e5eaa30fc3d510d946f92fb88f17e94449a7"},
		{DevPhrase + "//0", "f8dfdb0f1103d9fb2905204ac32529d5f148761c4321b2865b0a40e15be75f57"},
		{DevPhrase + "//-1", "42fa53169f3fcff0bb2992abb50f40324779794e6833e788e7d18947feb0790b"},
		{DevPhrase + "//75f57", "23b0d4c3892481d67fac285e2f3b5d2f6c8c55482506fe25f2fe6197f42432ab"},
		{DevPhrase + "//0xFF", "ae2383139b3aa529c5997ed82f62def14243fbf92bc9ef7badf72e0ff289ea82"},
		{DevPhrase + "//00011111", "ebbc952247ed4c148e0d7ec2a60d8ee12d656240ea4f64065412a6feafadfb63"},
	}
	for _, c := range cases {
		kp, err := FromSecretURI(Ed25519, c.suri)
		if err != nil {
			t.Errorf("%s: %v", c.suri, err)
			continue
		}
		if got := hexOf(kp.Seed()); got != c.seed {
			t.Errorf("%s: seed %s, want %s", c.suri, got, c.seed)
		}
	}
}

// sp-core test vectors for raw seeds (sr_test_vector_should_work and
// seeded_pair_should_work for sr25519; the ed25519 ones are RFC 8032's).
func TestSr25519SeedVectors(t *testing.T) {
	cases := []struct{ seed, pub string }{
		{"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", "44a996beb1eef7bdcab976ab6d2ca26104834164ecf28fb375600576fcc6eb0f"},
		{hex.EncodeToString([]byte("12345678901234567890123456789012")), "741c08a06f41c596608f6774259bd9043304adfa5d3eea62760bd9be97634d63"},
	}
	for _, c := range cases {
		kp, err := FromSecretURI(Sr25519, "0x"+c.seed)
		if err != nil {
			t.Fatal(err)
		}
		if got := hexOf(kp.Public().Key); got != c.pub {
			t.Errorf("seed %s: public key %s, want %s", c.seed, got, c.pub)
		}
	}
}

func TestPasswordChangesKey(t *testing.T) {
	for _, s := range []Scheme{Ed25519, Sr25519} {
		plain, err := FromSecretURI(s, DevPhrase+"//Alice")
		if err != nil {
			t.Fatal(err)
		}
		withPw, err := FromSecretURI(s, DevPhrase+"//Alice///pass/word")
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(plain.Public().Key, withPw.Public().Key) {
			t.Fatalf("%s: password did not change the key", s)
		}
		viaMnemonic, err := FromMnemonic(s, DevPhrase, "pass/word", "//Alice")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(viaMnemonic.Public().Key, withPw.Public().Key) {
			t.Fatalf("%s: ///password and FromMnemonic's password disagree", s)
		}
		// An empty password is no password, as in Substrate.
		empty, err := FromSecretURI(s, DevPhrase+"//Alice///")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(empty.Public().Key, plain.Public().Key) {
			t.Fatalf("%s: empty password changed the key", s)
		}
	}
}

func TestEd25519SoftJunctionRefused(t *testing.T) {
	_, err := FromSecretURI(Ed25519, DevPhrase+"//Alice/soft")
	if !errors.Is(err, ErrSoftDerivation) {
		t.Fatalf("err = %v, want ErrSoftDerivation", err)
	}
}

func TestSecretURIErrors(t *testing.T) {
	cases := []struct {
		suri string
		want error
	}{
		{"", ErrInvalidSecretURI},
		{"//Alice", ErrInvalidSecretURI},
		{DevPhrase + "//", ErrInvalidSecretURI},
		{DevPhrase + "//a//", ErrInvalidSecretURI},
		{"0x9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60///pw", ErrInvalidSecretURI},
		{"0x9d61", ErrInvalidSecretURI},
		{"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", ErrInvalidSecretURI},
		{"bottom drive obey lake curtain smoke basket hold race lonely fit fit", ErrInvalidMnemonic},
		{"bottom drive obey lake curtain smoke basket hold race lonely fit wal", ErrInvalidMnemonic},
	}
	for _, c := range cases {
		if _, err := FromSecretURI(Sr25519, c.suri); !errors.Is(err, c.want) {
			t.Errorf("FromSecretURI(%q) err = %v, want %v", c.suri, err, c.want)
		}
	}
	if _, err := FromMnemonic(Sr25519, DevPhrase, "", "Alice"); !errors.Is(err, ErrInvalidPath) {
		t.Errorf("path without slash: err = %v, want ErrInvalidPath", err)
	}
	if _, err := FromMnemonic("rsa", DevPhrase, "", ""); !errors.Is(err, ErrUnknownScheme) {
		t.Errorf("unknown scheme: err = %v, want ErrUnknownScheme", err)
	}
}

func TestJunctionChainCodes(t *testing.T) {
	cases := []struct {
		seg  string
		want string
	}{
		{"0", strings.Repeat("00", 32)},
		{"258", "0201" + strings.Repeat("00", 30)},
		{"+7", "07" + strings.Repeat("00", 31)},
		{"Alice", "14416c696365" + strings.Repeat("00", 26)},
		{"", "00" + strings.Repeat("00", 31)},
	}
	for _, c := range cases {
		j := NewJunction(c.seg, true)
		if got := hexOf(j.ChainCode[:]); got != c.want {
			t.Errorf("NewJunction(%q) = %s, want %s", c.seg, got, c.want)
		}
	}
	// Exactly 32 bytes encoded (1-byte length + 31 bytes) is used as is.
	exact := NewJunction(strings.Repeat("a", 31), true)
	if got, want := hexOf(exact.ChainCode[:]), "7c"+strings.Repeat("61", 31); got != want {
		t.Errorf("31-byte name: chain code %s, want %s", got, want)
	}
	// Longer than 32 bytes encoded: hashed, so two long names differ.
	a := NewJunction(strings.Repeat("a", 40), true)
	b := NewJunction(strings.Repeat("a", 41), true)
	if a.ChainCode == b.ChainCode {
		t.Error("long junctions collide")
	}
}

func TestCompactEncoding(t *testing.T) {
	cases := []struct {
		n    uint64
		want string
	}{
		{0, "00"}, {1, "04"}, {63, "fc"}, {64, "0101"}, {16383, "fdff"},
		{16384, "02000100"}, {1<<30 - 1, "feffffff"}, {1 << 30, "0300000040"},
		{1<<64 - 1, "13ffffffffffffffff"},
	}
	for _, c := range cases {
		if got := hexOf(appendCompact(nil, c.n)); got != c.want {
			t.Errorf("compact(%d) = %s, want %s", c.n, got, c.want)
		}
	}
}

func TestParsePath(t *testing.T) {
	js, err := ParsePath("//grid/7//x")
	if err != nil {
		t.Fatal(err)
	}
	if len(js) != 3 || !js[0].Hard || js[1].Hard || !js[2].Hard {
		t.Fatalf("ParsePath = %+v", js)
	}
	if js, err := ParsePath(""); err != nil || len(js) != 0 {
		t.Fatalf("empty path: %v, %v", js, err)
	}
	for _, bad := range []string{"x", "/", "//", "///pw", "//a///b", "/a/"} {
		if _, err := ParsePath(bad); !errors.Is(err, ErrInvalidPath) {
			t.Errorf("ParsePath(%q) err = %v, want ErrInvalidPath", bad, err)
		}
	}
}

func TestDeriveRejectsForeignKeyPair(t *testing.T) {
	if _, err := Derive(fakePair{}, nil); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("err = %v, want ErrInvalidKey", err)
	}
}

type fakePair struct{}

func (fakePair) Scheme() Scheme                  { return Ed25519 }
func (fakePair) Public() PublicKey               { return PublicKey{Scheme: Ed25519, Key: make([]byte, 32)} }
func (fakePair) Sign(msg []byte) ([]byte, error) { return make([]byte, 64), nil }
func (fakePair) Seed() []byte                    { return make([]byte, 32) }
