package keys

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"slices"
	"strings"

	bip39 "github.com/cosmos/go-bip39"
)

// DefaultMnemonicWords is the length of the mnemonics NewMnemonic makes.
//
// 24 words carry 256 bits of entropy. polkadot.js and subkey default to 12
// words (128 bits), which matches the curve's security level; we still take
// 24 because a grid identity is long-lived, the mnemonic is its only backup,
// and the extra words buy a margin against multi-target guessing at no real
// cost. Every BIP-39 length (12, 15, 18, 21, 24) is accepted when reading.
const DefaultMnemonicWords = 24

// DevPhrase is Substrate's publicly known development mnemonic. Keys derived
// from it (//Alice, //Bob, ...) are test identities that anyone can sign for;
// never use it for anything real.
const DevPhrase = "bottom drive obey lake curtain smoke basket hold race lonely fit walk"

// ErrInvalidMnemonic is returned for a phrase that is not a valid BIP-39
// English mnemonic: wrong number of words, unknown word, or bad checksum.
var ErrInvalidMnemonic = errors.New("invalid mnemonic")

// substrateKDFRounds and the "mnemonic" salt prefix are BIP-39's PBKDF2
// parameters, which Substrate reuses with the entropy as the password.
const substrateKDFRounds = 2048

// NewMnemonic returns a new random BIP-39 English mnemonic of
// DefaultMnemonicWords (24) words.
func NewMnemonic() (string, error) {
	return NewMnemonicWords(DefaultMnemonicWords)
}

// NewMnemonicWords returns a new random BIP-39 English mnemonic of the given
// number of words: 12, 15, 18, 21 or 24.
func NewMnemonicWords(words int) (string, error) {
	if !validWordCount(words) {
		return "", fmt.Errorf("%w: %d words requested, want 12, 15, 18, 21 or 24", ErrInvalidMnemonic, words)
	}
	entropy := make([]byte, words*4/3)
	if _, err := rand.Read(entropy); err != nil {
		return "", fmt.Errorf("reading randomness: %w", err)
	}
	return EntropyToMnemonic(entropy)
}

// EntropyToMnemonic encodes 16, 20, 24, 28 or 32 bytes of entropy as a BIP-39
// English mnemonic.
func EntropyToMnemonic(entropy []byte) (string, error) {
	if n := len(entropy); n < 16 || n > 32 || n%4 != 0 {
		return "", fmt.Errorf("%w: entropy is %d bytes, want 16, 20, 24, 28 or 32", ErrInvalidMnemonic, n)
	}
	sum := sha256.Sum256(entropy)
	// The checksum is at most 8 bits, so the first hash byte is all we need
	// after the entropy.
	bits := append(append([]byte(nil), entropy...), sum[0])
	nWords := len(entropy) * 8 * 33 / 32 / 11
	words := make([]string, nWords)
	for i := range words {
		idx := 0
		for b := i * 11; b < i*11+11; b++ {
			idx = idx<<1 | int(bits[b/8]>>(7-b%8)&1)
		}
		words[i] = bip39.EnglishWordList[idx]
	}
	return strings.Join(words, " "), nil
}

// MnemonicToEntropy checks a BIP-39 English mnemonic (word count, words,
// checksum) and returns the entropy it encodes. Words may be separated by any
// whitespace and are matched case-insensitively.
func MnemonicToEntropy(mnemonic string) ([]byte, error) {
	words := strings.Fields(mnemonic)
	if !validWordCount(len(words)) {
		return nil, fmt.Errorf("%w: %d words, want 12, 15, 18, 21 or 24", ErrInvalidMnemonic, len(words))
	}
	totalBits := len(words) * 11
	csBits := totalBits / 33
	buf := make([]byte, (totalBits+7)/8)
	for i, w := range words {
		idx, ok := slices.BinarySearch(bip39.EnglishWordList, strings.ToLower(w))
		if !ok {
			// Do not echo the word: a typo in a secret is still mostly secret.
			return nil, fmt.Errorf("%w: word %d is not in the BIP-39 English word list", ErrInvalidMnemonic, i+1)
		}
		for j := 0; j < 11; j++ {
			if idx>>(10-j)&1 == 1 {
				b := i*11 + j
				buf[b/8] |= 1 << (7 - b%8)
			}
		}
	}
	entropy := buf[:(totalBits-csBits)/8]
	sum := sha256.Sum256(entropy)
	got := buf[len(entropy)] >> (8 - csBits)
	want := sum[0] >> (8 - csBits)
	if got != want {
		return nil, fmt.Errorf("%w: checksum mismatch (a word is wrong or words are out of order)", ErrInvalidMnemonic)
	}
	return entropy, nil
}

// ValidateMnemonic reports why mnemonic is not a valid BIP-39 English
// mnemonic, or nil if it is.
func ValidateMnemonic(mnemonic string) error {
	_, err := MnemonicToEntropy(mnemonic)
	return err
}

// SeedFromMnemonic returns the 32-byte seed Substrate derives from a mnemonic
// and an optional password: the first 32 bytes of
// PBKDF2-HMAC-SHA512(password = entropy, salt = "mnemonic"+password, 2048
// rounds). Unlike BIP-39's own seed, the PBKDF2 password is the entropy, not
// the phrase, which is why polkadot.js and subkey keys differ from BIP-32
// wallets for the same words. The seed is the ed25519 seed and the sr25519
// mini secret key alike.
func SeedFromMnemonic(mnemonic, password string) ([]byte, error) {
	entropy, err := MnemonicToEntropy(mnemonic)
	if err != nil {
		return nil, err
	}
	full, err := substrateSeedFromEntropy(entropy, password)
	if err != nil {
		return nil, err
	}
	return full[:SeedSize], nil
}

// substrateSeedFromEntropy is substrate-bip39's 64-byte seed; callers keep
// the first 32 bytes.
func substrateSeedFromEntropy(entropy []byte, password string) ([]byte, error) {
	seed, err := pbkdf2.Key(sha512.New, string(entropy), []byte("mnemonic"+password), substrateKDFRounds, 64)
	if err != nil {
		return nil, fmt.Errorf("deriving seed from mnemonic: %w", err)
	}
	return seed, nil
}

func validWordCount(n int) bool {
	return n >= 12 && n <= 24 && n%3 == 0
}
