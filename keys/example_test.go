package keys_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/grid4/grid4/keys"
)

// A key from a secret URI (mnemonic, path, optional ///password), shown as an
// SS58 address, signing and verifying.
func ExampleFromSecretURI() {
	kp, err := keys.FromSecretURI(keys.Sr25519, keys.DevPhrase+"//Alice")
	if err != nil {
		panic(err)
	}
	fmt.Println(keys.SS58Encode(kp.Public().Key, keys.GenericSS58Prefix))

	msg := []byte("hello grid")
	sig, err := kp.Sign(msg)
	if err != nil {
		panic(err)
	}
	scheme, ok := keys.VerifyAny(kp.Public().Key, msg, sig)
	fmt.Println(scheme, ok)
	// Output:
	// 5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY
	// sr25519 true
}

// How a node loads its identity: a missing seed file means "first boot, make
// one"; any other error stops the node, because replacing an unreadable
// identity would silently turn the node into another one.
func ExampleReadSeedFile() {
	dir, err := os.MkdirTemp("", "identity")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "node.seed")

	kp, err := keys.ReadSeedFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if kp, err = keys.Generate(keys.Ed25519); err != nil {
			panic(err)
		}
		if err := keys.WriteSeedFile(path, kp); err != nil {
			panic(err)
		}
		fmt.Println("new identity")
	case err != nil:
		panic(err) // corrupt, insecure or unreadable: a human must look
	}

	again, err := keys.ReadSeedFile(path)
	if err != nil {
		panic(err)
	}
	fmt.Println(again.Public().Verify(nil, must(kp.Sign(nil))))
	// Output:
	// new identity
	// true
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
