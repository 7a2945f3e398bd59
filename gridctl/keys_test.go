package gridctl

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/grid4/grid4/keys"
)

const (
	aliceSr25519   = "0xd43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d"
	aliceSS58      = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"
	aliceEd25519   = "0x88dc3417d5058ec4b4503e0c12ea1a0a89be200fe98922423d4334014fa6b0ee"
	aliceEd25519SS = "5FA9nQDVg267DEd8m1ZypXLBnvN7SFxYwV7ndqSYGiN9TTpu"
)

type result struct {
	code           int
	stdout, stderr string
}

// run executes gridctl in-process with the given environment variables and
// standard input.
func run(t *testing.T, vars map[string]string, stdin string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Run(context.Background(), args, Env{
		Stdin:  strings.NewReader(stdin),
		Stdout: &out,
		Stderr: &errOut,
		Getenv: func(k string) string { return vars[k] },
	})
	return result{code, out.String(), errOut.String()}
}

// wantOK fails unless the command succeeded silently on stderr.
func wantOK(t *testing.T, r result) {
	t.Helper()
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q, stdout %q", r.code, r.stderr, r.stdout)
	}
}

// wantErr fails unless the command failed with exactly one "gridctl: " line
// containing want, and printed nothing on stdout.
func wantErr(t *testing.T, r result, want string) {
	t.Helper()
	if r.code == 0 {
		t.Fatalf("exit 0, want an error; stdout %q", r.stdout)
	}
	if !strings.HasPrefix(r.stderr, "gridctl: ") || strings.Count(r.stderr, "\n") != 1 || !strings.HasSuffix(r.stderr, "\n") {
		t.Fatalf("stderr %q is not one line starting with \"gridctl: \"", r.stderr)
	}
	if !strings.Contains(r.stderr, want) {
		t.Fatalf("stderr %q does not mention %q", r.stderr, want)
	}
	if r.stdout != "" {
		t.Fatalf("stdout %q on error", r.stdout)
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func devEnv() map[string]string { return map[string]string{MnemonicEnv: keys.DevPhrase} }

func TestShowAliceFromEnv(t *testing.T) {
	r := run(t, devEnv(), "", "keys", "show", "--scheme", "sr25519", "--path", "//Alice")
	wantOK(t, r)
	for _, want := range []string{aliceSS58, aliceSr25519, "1DWTxxX90xxhFBq9BKmf1oIshViFTM3jmlaE56Vton0="} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %s:\n%s", want, r.stdout)
		}
	}
}

func TestShowJSON(t *testing.T) {
	r := run(t, devEnv(), "", "keys", "show", "--scheme", "ed25519", "--path", "//Alice", "-o", "json")
	wantOK(t, r)
	var v publicKeyView
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, r.stdout)
	}
	if v.Scheme != "ed25519" || v.PublicKey != aliceEd25519 || v.SS58 != aliceEd25519SS || v.SS58Prefix != 42 || v.Path != "//Alice" || v.Mnemonic != "" {
		t.Fatalf("unexpected %+v", v)
	}
	raw, _ := hex.DecodeString(strings.TrimPrefix(aliceEd25519, "0x"))
	if v.PublicKeyB64 != base64.StdEncoding.EncodeToString(raw) {
		t.Fatalf("base64 %s", v.PublicKeyB64)
	}
}

func TestShowSS58Prefix(t *testing.T) {
	r := run(t, devEnv(), "", "keys", "show", "--path", "//Alice", "--ss58-prefix", "0")
	wantOK(t, r)
	if !strings.Contains(r.stdout, "15oF4uVJwmo4TdGW7VfQxNLavjCXviqxT9S1MgbjMNHr6Sp5") {
		t.Fatalf("no Polkadot address:\n%s", r.stdout)
	}
	wantErr(t, run(t, devEnv(), "", "keys", "show", "--ss58-prefix", "16384"), "--ss58-prefix")
	wantErr(t, run(t, devEnv(), "", "keys", "show", "-o", "yaml"), "--output")
}

func TestShowSources(t *testing.T) {
	// A secret URI in a file, with a trailing newline; --path appends to it.
	uriFile := writeFile(t, keys.DevPhrase+"//Alice\n")
	r := run(t, nil, "", "keys", "show", "--mnemonic-file", uriFile)
	wantOK(t, r)
	if !strings.Contains(r.stdout, aliceSS58) {
		t.Fatalf("secret URI file:\n%s", r.stdout)
	}
	stashFile := writeFile(t, keys.DevPhrase+"//Alice")
	r = run(t, nil, "", "keys", "show", "--mnemonic-file", stashFile, "--path", "//stash")
	wantOK(t, r)
	if !strings.Contains(r.stdout, "5GNJqTPyNqANBkUVMN1LPPrxXnFouWXoe2wNSmmEoLctxiZY") {
		t.Fatalf("//Alice + --path //stash:\n%s", r.stdout)
	}
	// A hex seed in a file: Alice's sr25519 seed as subkey prints it.
	seedHex := writeFile(t, "0xe5be9a5092b81bca64be81d212e7f2f9eba183bb7a90954f7b76361f6edb5c0a")
	r = run(t, nil, "", "keys", "show", "--mnemonic-file", seedHex)
	wantOK(t, r)
	if !strings.Contains(r.stdout, aliceSS58) {
		t.Fatalf("hex seed file:\n%s", r.stdout)
	}
	// A file wins over the environment.
	r = run(t, map[string]string{MnemonicEnv: "not a mnemonic"}, "", "keys", "show", "--mnemonic-file", uriFile)
	wantOK(t, r)
	// A seed file carries its scheme.
	kp, err := keys.FromSecretURI(keys.Ed25519, keys.DevPhrase+"//Alice")
	if err != nil {
		t.Fatal(err)
	}
	seedFile := filepath.Join(t.TempDir(), "node.seed")
	if err := keys.WriteSeedFile(seedFile, kp); err != nil {
		t.Fatal(err)
	}
	r = run(t, nil, "", "keys", "show", "--seed-file", seedFile)
	wantOK(t, r)
	if !strings.Contains(r.stdout, aliceEd25519SS) || !strings.Contains(r.stdout, "ed25519") {
		t.Fatalf("seed file:\n%s", r.stdout)
	}
	wantErr(t, run(t, nil, "", "keys", "show", "--seed-file", seedFile, "--scheme", "sr25519"), "holds an ed25519 key")
}

func TestShowErrors(t *testing.T) {
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "corrupt.seed")
	if err := os.WriteFile(corrupt, []byte(`{"version":1,"sch`), 0o600); err != nil {
		t.Fatal(err)
	}
	typo := writeFile(t, "bottom drive obey lake curtain smoke basket hold race lonely fit wak")
	cases := []struct {
		name string
		vars map[string]string
		args []string
		want string
	}{
		{"no identity", nil, []string{"keys", "show"}, "no identity"},
		{"bad env mnemonic", map[string]string{MnemonicEnv: "one two three"}, []string{"keys", "show"}, MnemonicEnv + ": invalid mnemonic: 3 words"},
		{"word typo", nil, []string{"keys", "show", "--mnemonic-file", typo}, "word 12 is not in"},
		{"missing mnemonic file", nil, []string{"keys", "show", "--mnemonic-file", filepath.Join(dir, "nope")}, "no such file"},
		{"empty mnemonic file", nil, []string{"keys", "show", "--mnemonic-file", writeFile(t, "\n")}, "is empty"},
		{"missing seed file", nil, []string{"keys", "show", "--seed-file", filepath.Join(dir, "nope")}, "no such file"},
		{"corrupt seed file", nil, []string{"keys", "show", "--seed-file", corrupt}, "corrupt seed file"},
		{"both files", nil, []string{"keys", "show", "--seed-file", corrupt, "--mnemonic-file", typo}, "gridctl: give --mnemonic-file or --seed-file, not both\n"},
		{"bad scheme", devEnv(), []string{"keys", "show", "--scheme", "ecdsa"}, "unknown key scheme"},
		{"ed25519 soft path", devEnv(), []string{"keys", "show", "--scheme", "ed25519", "--path", "/soft"}, "soft derivation"},
		{"bad path", devEnv(), []string{"keys", "show", "--path", "Alice"}, "invalid derivation path"},
		{"positional secret", nil, []string{"keys", "show", "bottom", "drive"}, "takes no positional arguments"},
		{"unknown flag", nil, []string{"keys", "show", "--mnemonic", "x"}, "unknown flag: --mnemonic"},
		{"unknown command", nil, []string{"keys", "shw"}, `unknown command "shw"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := run(t, c.vars, "", c.args...)
			wantErr(t, r, c.want)
			if strings.Contains(r.stderr, "bottom") || strings.Contains(r.stderr, "wak") {
				t.Fatalf("error echoes the secret: %q", r.stderr)
			}
		})
	}
}

func TestNew(t *testing.T) {
	r := run(t, nil, "", "keys", "new", "-o", "json")
	wantOK(t, r)
	var v publicKeyView
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatal(err)
	}
	if n := len(strings.Fields(v.Mnemonic)); n != keys.DefaultMnemonicWords {
		t.Fatalf("%d words", n)
	}
	if v.Scheme != "sr25519" {
		t.Fatalf("default scheme %s", v.Scheme)
	}
	// The printed mnemonic gives the printed key.
	mf := writeFile(t, v.Mnemonic)
	r2 := run(t, nil, "", "keys", "show", "--mnemonic-file", mf, "-o", "json")
	wantOK(t, r2)
	var v2 publicKeyView
	if err := json.Unmarshal([]byte(r2.stdout), &v2); err != nil {
		t.Fatal(err)
	}
	if v2.PublicKey != v.PublicKey || v2.SS58 != v.SS58 {
		t.Fatalf("new printed %s, show gives %s", v.PublicKey, v2.PublicKey)
	}

	// Text output, ed25519, a path, 12 words.
	r = run(t, nil, "", "keys", "new", "--scheme", "ed25519", "--path", "//node//1", "--words", "12")
	wantOK(t, r)
	var mnemonic, pub string
	for _, line := range strings.Split(r.stdout, "\n") {
		if rest, ok := strings.CutPrefix(line, "mnemonic:"); ok {
			mnemonic = strings.TrimSpace(rest)
		}
		if rest, ok := strings.CutPrefix(line, "public key:"); ok {
			pub = strings.TrimSpace(rest)
		}
	}
	if len(strings.Fields(mnemonic)) != 12 {
		t.Fatalf("mnemonic line %q", mnemonic)
	}
	kp, err := keys.FromMnemonic(keys.Ed25519, mnemonic, "", "//node//1")
	if err != nil {
		t.Fatal(err)
	}
	if pub != "0x"+hex.EncodeToString(kp.Public().Key) {
		t.Fatalf("printed %s, mnemonic gives %x", pub, kp.Public().Key)
	}

	wantErr(t, run(t, nil, "", "keys", "new", "--words", "13"), "13 words")
	wantErr(t, run(t, nil, "", "keys", "new", "--scheme", "ed25519", "--path", "/x"), "soft derivation")
}

func TestNewSaveSeed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.seed")
	r := run(t, nil, "", "keys", "new", "--scheme", "ed25519", "--save-seed", path, "-o", "json")
	wantOK(t, r)
	var v publicKeyView
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatal(err)
	}
	kp, err := keys.ReadSeedFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if "0x"+hex.EncodeToString(kp.Public().Key) != v.PublicKey {
		t.Fatal("seed file holds another key")
	}
	// Never replaced: a second run fails and prints no mnemonic.
	wantErr(t, run(t, nil, "", "keys", "new", "--save-seed", path), "refusing to replace")
	// An sr25519 key derived with a soft junction has no seed to save.
	wantErr(t, run(t, nil, "", "keys", "new", "--path", "/soft", "--save-seed", filepath.Join(t.TempDir(), "s")), "no seed")
}

func TestSignVerify(t *testing.T) {
	for _, scheme := range []string{"ed25519", "sr25519"} {
		t.Run(scheme, func(t *testing.T) {
			r := run(t, devEnv(), "", "keys", "sign", "--scheme", scheme, "--path", "//Alice", "--message", "hello grid")
			wantOK(t, r)
			sig := strings.TrimSpace(r.stdout)
			if len(sig) != 128 {
				t.Fatalf("signature %q is not 128 hex digits", sig)
			}
			pub := aliceSr25519
			addr := aliceSS58
			if scheme == "ed25519" {
				pub, addr = aliceEd25519, aliceEd25519SS
			}
			// Any public key form, with or without --scheme.
			for _, pk := range []string{pub, addr, strings.TrimPrefix(pub, "0x")} {
				r := run(t, nil, "", "keys", "verify", "--public-key", pk, "--signature", sig, "--message", "hello grid")
				wantOK(t, r)
				if r.stdout != "valid\n" {
					t.Fatalf("stdout %q", r.stdout)
				}
			}
			wantOK(t, run(t, nil, "", "keys", "verify", "--scheme", scheme, "--public-key", pub, "--signature", "0x"+sig, "--message", "hello grid"))

			// Wrong message, wrong key, wrong scheme: exit 1 with the reason.
			wantErr(t, run(t, nil, "", "keys", "verify", "--public-key", pub, "--signature", sig, "--message", "hello grid!"), "invalid signature")
			other := aliceEd25519
			if scheme == "ed25519" {
				other = aliceSr25519
			}
			wantErr(t, run(t, nil, "", "keys", "verify", "--public-key", other, "--signature", sig, "--message", "hello grid"), "invalid signature")
			wrong := "ed25519"
			if scheme == "ed25519" {
				wrong = "sr25519"
			}
			wantErr(t, run(t, nil, "", "keys", "verify", "--scheme", wrong, "--public-key", pub, "--signature", sig, "--message", "hello grid"), "not a valid "+wrong+" signature")
		})
	}
}

func TestSignSourcesAndEncodings(t *testing.T) {
	// ed25519 is deterministic, so every message source must give the same
	// signature for the same bytes.
	msgFile := writeFile(t, "from a file\n")
	base := []string{"keys", "sign", "--scheme", "ed25519", "--path", "//Alice"}
	fromFile := run(t, devEnv(), "", append(base, "--file", msgFile)...)
	wantOK(t, fromFile)
	fromStdin := run(t, devEnv(), "from a file\n", base...)
	wantOK(t, fromStdin)
	fromDash := run(t, devEnv(), "from a file\n", append(base, "--file", "-")...)
	wantOK(t, fromDash)
	fromFlag := run(t, devEnv(), "", append(base, "--message", "from a file\n")...)
	wantOK(t, fromFlag)
	if fromFile.stdout != fromStdin.stdout || fromFile.stdout != fromDash.stdout || fromFile.stdout != fromFlag.stdout {
		t.Fatalf("sources disagree: %q %q %q %q", fromFile.stdout, fromStdin.stdout, fromDash.stdout, fromFlag.stdout)
	}
	b64 := run(t, devEnv(), "", append(base, "--file", msgFile, "--encoding", "base64")...)
	wantOK(t, b64)
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64.stdout))
	if err != nil || hex.EncodeToString(raw) != strings.TrimSpace(fromFile.stdout) {
		t.Fatalf("base64 %q does not match hex %q", b64.stdout, fromFile.stdout)
	}
	// Verify reads the message from stdin too, and takes base64 signatures.
	wantOK(t, run(t, nil, "from a file\n", "keys", "verify", "--public-key", aliceEd25519SS, "--signature", strings.TrimSpace(b64.stdout)))

	// An empty message is a message.
	wantOK(t, run(t, devEnv(), "", append(base, "--message", "")...))

	wantErr(t, run(t, devEnv(), "", append(base, "--message", "a", "--file", msgFile)...), "gridctl: give --message or --file, not both\n")
	wantErr(t, run(t, devEnv(), "", append(base, "--encoding", "base32")...), "--encoding")
	wantErr(t, run(t, devEnv(), "", append(base, "--file", filepath.Join(t.TempDir(), "nope"))...), "reading message")
	wantErr(t, run(t, nil, "", "keys", "sign", "--message", "x"), "no identity")
}

func TestVerifyInputErrors(t *testing.T) {
	sig := strings.Repeat("ab", 64)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--signature", sig}, "--public-key and --signature are required"},
		{[]string{"--public-key", aliceSS58}, "--public-key and --signature are required"},
		{[]string{"--public-key", "0x1234", "--signature", sig}, "--public-key"},
		{[]string{"--public-key", aliceSS58[:len(aliceSS58)-1] + "Z", "--signature", sig}, "checksum"},
		{[]string{"--public-key", aliceSS58, "--signature", "0x1234"}, "--signature"},
		{[]string{"--public-key", aliceSS58, "--signature", base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, 63))}, "63 bytes of base64"},
		{[]string{"--public-key", aliceSS58, "--signature", sig, "--scheme", "rsa"}, "unknown key scheme"},
		{[]string{"--public-key", aliceSS58, "--signature", sig}, "invalid signature"},
	}
	for _, c := range cases {
		wantErr(t, run(t, nil, "m", append([]string{"keys", "verify"}, c.args...)...), c.want)
	}
}

func TestHelpAndGroups(t *testing.T) {
	for _, args := range [][]string{nil, {"keys"}, {"--help"}, {"keys", "sign", "--help"}} {
		r := run(t, nil, "", args...)
		wantOK(t, r)
		if !strings.Contains(r.stdout, "Usage:") {
			t.Fatalf("%v: no usage:\n%s", args, r.stdout)
		}
	}
	wantErr(t, run(t, nil, "", "nope"), `unknown command "nope" for "gridctl"`)
}

// A partial Env (nil streams and Getenv) is usable.
func TestZeroEnv(t *testing.T) {
	if code := Run(context.Background(), []string{"keys", "new"}, Env{}); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if code := Run(context.Background(), []string{"keys", "show"}, Env{}); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
}
