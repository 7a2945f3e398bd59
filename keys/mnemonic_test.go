package keys

import (
	"errors"
	"slices"
	"strings"
	"testing"

	bip39 "github.com/cosmos/go-bip39"
)

// substrate-bip39's test vectors (paritytech/substrate-bip39, src/lib.rs):
// mnemonic, entropy, and the 64-byte seed PBKDF2 derives from the entropy
// with password "Substrate". They are the BIP-39 reference mnemonics, so the
// entropy column also checks our BIP-39 encoding.
var substrateBip39Vectors = []struct{ mnemonic, entropy, seed string }{
	{"abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about", "00000000000000000000000000000000", "44e9d125f037ac1d51f0a7d3649689d422c2af8b1ec8e00d71db4d7bf6d127e33f50c3d5c84fa3e5399c72d6cbbbbc4a49bf76f76d952f479d74655a2ef2d453"},
	{"legal winner thank year wave sausage worth useful legal winner thank yellow", "7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f", "4313249608fe8ac10fd5886c92c4579007272cb77c21551ee5b8d60b780416850f1e26c1f4b8d88ece681cb058ab66d6182bc2ce5a03181f7b74c27576b5c8bf"},
	{"letter advice cage absurd amount doctor acoustic avoid letter advice cage above", "80808080808080808080808080808080", "27f3eb595928c60d5bc91a4d747da40ed236328183046892ed6cd5aa9ae38122acd1183adf09a89839acb1e6eaa7fb563cc958a3f9161248d5a036e0d0af533d"},
	{"zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo wrong", "ffffffffffffffffffffffffffffffff", "227d6256fd4f9ccaf06c45eaa4b2345969640462bbb00c5f51f43cb43418c7a753265f9b1e0c0822c155a9cabc769413ecc14553e135fe140fc50b6722c6b9df"},
	{"legal winner thank year wave sausage worth useful legal winner thank year wave sausage worth useful legal will", "7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f", "cb1d50e14101024a88905a098feb1553d4306d072d7460e167a60ccb3439a6817a0afc59060f45d999ddebc05308714733c9e1e84f30feccddd4ad6f95c8a445"},
	{"zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo when", "ffffffffffffffffffffffffffffffffffffffffffffffff", "8971cb290e7117c64b63379c97ed3b5c6da488841bd9f95cdc2a5651ac89571e2c64d391d46e2475e8b043911885457cd23e99a28b5a18535fe53294dc8e1693"},
	{"legal winner thank year wave sausage worth useful legal winner thank year wave sausage worth useful legal winner thank year wave sausage worth title", "7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f", "3037276a5d05fcd7edf51869eb841bdde27c574dae01ac8cfb1ea476f6bea6ef57ab9afe14aea1df8a48f97ae25b37d7c8326e49289efb25af92ba5a25d09ed3"},
	{"letter advice cage absurd amount doctor acoustic avoid letter advice cage absurd amount doctor acoustic avoid letter advice cage absurd amount doctor acoustic bless", "8080808080808080808080808080808080808080808080808080808080808080", "2c9c6144a06ae5a855453d98c3dea470e2a8ffb78179c2e9eb15208ccca7d831c97ddafe844ab933131e6eb895f675ede2f4e39837bb5769d4e2bc11df58ac42"},
	{"ozone drill grab fiber curtain grace pudding thank cruise elder eight picnic", "9e885d952ad362caeb4efe34a8e91bd2", "f4956be6960bc145cdab782e649a5056598fd07cd3f32ceb73421c3da27833241324dc2c8b0a4d847eee457e6d4c5429f5e625ece22abaa6a976e82f1ec5531d"},
	{"gravity machine north sort system female filter attitude volume fold club stay feature office ecology stable narrow fog", "6610b25967cdcca9d59875f5cb50b0ea75433311869e930b", "fbcc5229ade0c0ff018cb7a329c5459f91876e4dde2a97ddf03c832eab7f26124366a543f1485479c31a9db0d421bda82d7e1fe562e57f3533cb1733b001d84d"},
	{"hamster diagram private dutch cause delay private meat slide toddler razor book happy fancy gospel tennis maple dilemma loan word shrug inflict delay length", "68a79eaca2324873eacc50cb9c6eca8cc68ea5d936f98787c60c7ebc74e6ce7c", "7c60c555126c297deddddd59f8cdcdc9e3608944455824dd604897984b5cc369cad749803bb36eb8b786b570c9cdc8db275dbe841486676a6adf389f3be3f076"},
	{"panda eyebrow bullet gorilla call smoke muffin taste mesh discover soft ostrich alcohol speed nation flash devote level hobby quick inner drive ghost inside", "9f6a2878b2520799a44ef18bc7df394e7061a224d2c33cd015b157d746869863", "f4c83c86617cb014d35cd87d38b5ef1c5d5c3d58a73ab779114438a7b358f457e0462c92bddab5a406fe0e6b97c71905cf19f925f356bc673ceb0e49792f4340"},
	{"void come effort suffer camp survey warrior heavy shoot primary clutch crush open amazing screen patrol group space point ten exist slush involve unfold", "f585c11aec520db57dd353c69554b21a89b20fb0650966fa0a9d6f74fd989d8f", "938ba18c3f521f19bd4a399c8425b02c716844325b1a65106b9d1593fbafe5e0b85448f523f91c48e331995ff24ae406757cff47d11f240847352b348ff436ed"},
}

func TestSubstrateBip39Vectors(t *testing.T) {
	for _, v := range substrateBip39Vectors {
		entropy, err := MnemonicToEntropy(v.mnemonic)
		if err != nil {
			t.Fatalf("%q: %v", v.mnemonic, err)
		}
		if got := hexOf(entropy); got != v.entropy {
			t.Errorf("%q: entropy %s, want %s", v.mnemonic, got, v.entropy)
		}
		m, err := EntropyToMnemonic(mustHex(t, v.entropy))
		if err != nil {
			t.Fatal(err)
		}
		if m != v.mnemonic {
			t.Errorf("EntropyToMnemonic(%s) = %q, want %q", v.entropy, m, v.mnemonic)
		}
		full, err := substrateSeedFromEntropy(entropy, "Substrate")
		if err != nil {
			t.Fatal(err)
		}
		if got := hexOf(full); got != v.seed {
			t.Errorf("%q: seed %s, want %s", v.mnemonic, got, v.seed)
		}
		seed, err := SeedFromMnemonic(v.mnemonic, "Substrate")
		if err != nil {
			t.Fatal(err)
		}
		if got := hexOf(seed); got != v.seed[:64] {
			t.Errorf("%q: SeedFromMnemonic %s, want %s", v.mnemonic, got, v.seed[:64])
		}
	}
}

func TestNewMnemonic(t *testing.T) {
	m, err := NewMnemonic()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(strings.Fields(m)); n != DefaultMnemonicWords {
		t.Fatalf("NewMnemonic gave %d words, want %d", n, DefaultMnemonicWords)
	}
	if err := ValidateMnemonic(m); err != nil {
		t.Fatalf("NewMnemonic gave an invalid mnemonic: %v", err)
	}
	m2, err := NewMnemonic()
	if err != nil {
		t.Fatal(err)
	}
	if m == m2 {
		t.Fatal("two NewMnemonic calls gave the same phrase")
	}
	for _, n := range []int{12, 15, 18, 21, 24} {
		m, err := NewMnemonicWords(n)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(strings.Fields(m)); got != n {
			t.Errorf("NewMnemonicWords(%d) gave %d words", n, got)
		}
		if err := ValidateMnemonic(m); err != nil {
			t.Errorf("NewMnemonicWords(%d): %v", n, err)
		}
	}
	for _, n := range []int{0, 11, 13, 27} {
		if _, err := NewMnemonicWords(n); !errors.Is(err, ErrInvalidMnemonic) {
			t.Errorf("NewMnemonicWords(%d) err = %v", n, err)
		}
	}
}

func TestValidateMnemonicErrors(t *testing.T) {
	cases := []struct{ mnemonic, wantText string }{
		{"", "0 words"},
		{"bottom drive obey lake curtain smoke basket hold race lonely fit", "11 words"},
		{"bottom drive obey lake curtain smoke basket hold race lonely fit walkk", "word 12 is not in"},
		{"bottom drive obey lake curtain smoke basket hold race lonely walk fit", "checksum"},
	}
	for _, c := range cases {
		err := ValidateMnemonic(c.mnemonic)
		if !errors.Is(err, ErrInvalidMnemonic) || !strings.Contains(err.Error(), c.wantText) {
			t.Errorf("ValidateMnemonic(%q) = %v, want ErrInvalidMnemonic mentioning %q", c.mnemonic, err, c.wantText)
		}
		if err != nil && strings.Contains(err.Error(), "walkk") {
			t.Errorf("error echoes the secret word: %v", err)
		}
	}
	// Whitespace and case do not matter: the key comes from the entropy.
	if err := ValidateMnemonic("  BOTTOM drive\tobey lake curtain smoke basket hold race lonely fit walk\n"); err != nil {
		t.Errorf("mixed whitespace and case rejected: %v", err)
	}
	if _, err := EntropyToMnemonic(make([]byte, 15)); !errors.Is(err, ErrInvalidMnemonic) {
		t.Errorf("15-byte entropy accepted: %v", err)
	}
}

// MnemonicToEntropy binary-searches the word list, which must therefore be
// sorted (BIP-39's English list is).
func TestWordListSorted(t *testing.T) {
	if len(bip39.EnglishWordList) != 2048 || !slices.IsSorted(bip39.EnglishWordList) {
		t.Fatal("the BIP-39 English word list is not 2048 sorted words")
	}
}
