package auth

import (
	"net/http"
	"strings"
	"testing"

	"github.com/grid4/grid4/keys"
)

// TestMalformedHeaders sends hand-written header sets through the
// middleware and checks the status and error message of each refusal.
func TestMalformedHeaders(t *testing.T) {
	const (
		comps  = `("@method" "@path" "@query" "content-digest")`
		params = `;created=1718000000;expires=1718000060;nonce="abcdefghijklmnopqrstuv";keyid="1";alg="ed25519"`
		si     = "sig1=" + comps + params
		sig    = "sig1=:" + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==" + ":"
	)
	emptyDigest := ContentDigest(nil)
	cases := []struct {
		name    string
		headers map[string]string
		status  int
		msg     string
	}{
		{"nothing", map[string]string{}, 401, "missing credentials"},
		{"signature only", map[string]string{"Signature": sig}, 400, "Signature without Signature-Input"},
		{"input garbage", map[string]string{"Signature-Input": "sig1=(", "Signature": sig}, 400, "Signature-Input"},
		{"input not a dictionary", map[string]string{"Signature-Input": `("@method")`, "Signature": sig}, 400, "Signature-Input"},
		{"input item", map[string]string{"Signature-Input": "sig1=1", "Signature": sig}, 400, "not an inner list"},
		{"two labels no sig1", map[string]string{"Signature-Input": "a=" + comps + params + ", b=" + comps + params, "Signature": sig}, 400, "exactly one member"},
		{"signature absent", map[string]string{"Signature-Input": si}, 400, "Signature has no member"},
		{"signature garbage", map[string]string{"Signature-Input": si, "Signature": "sig1=:%%:"}, 400, "Signature"},
		{"signature not bytes", map[string]string{"Signature-Input": si, "Signature": `sig1="abc"`}, 400, "not a byte sequence"},
		{"signature other label", map[string]string{"Signature-Input": si, "Signature": strings.Replace(sig, "sig1", "sig2", 1)}, 400, "no member"},
		{"missing created", map[string]string{"Signature-Input": strings.Replace(si, ";created=1718000000", "", 1), "Signature": sig}, 400, "created"},
		{"missing expires", map[string]string{"Signature-Input": strings.Replace(si, ";expires=1718000060", "", 1), "Signature": sig}, 400, "expires"},
		{"missing nonce", map[string]string{"Signature-Input": strings.Replace(si, `;nonce="abcdefghijklmnopqrstuv"`, "", 1), "Signature": sig}, 400, "nonce"},
		{"missing keyid", map[string]string{"Signature-Input": strings.Replace(si, `;keyid="1"`, "", 1), "Signature": sig}, 400, "keyid"},
		{"missing alg", map[string]string{"Signature-Input": strings.Replace(si, `;alg="ed25519"`, "", 1), "Signature": sig}, 400, "alg"},
		{"created string", map[string]string{"Signature-Input": strings.Replace(si, "created=1718000000", `created="1718000000"`, 1), "Signature": sig}, 400, "created"},
		{"created negative", map[string]string{"Signature-Input": strings.Replace(si, "created=1718000000", `created=-1`, 1), "Signature": sig}, 400, "created"},
		{"created decimal", map[string]string{"Signature-Input": strings.Replace(si, "created=1718000000", `created=1718000000.5`, 1), "Signature": sig}, 400, "created"},
		{"keyid token", map[string]string{"Signature-Input": strings.Replace(si, `keyid="1"`, `keyid=k1`, 1), "Signature": sig}, 400, "keyid"},
		{"nonce short", map[string]string{"Signature-Input": strings.Replace(si, `abcdefghijklmnopqrstuv`, `abc`, 1), "Signature": sig}, 400, "nonce"},
		{"nonce long", map[string]string{"Signature-Input": strings.Replace(si, `abcdefghijklmnopqrstuv`, strings.Repeat("n", 129), 1), "Signature": sig}, 400, "nonce"},
		{"unknown parameter", map[string]string{"Signature-Input": si + ";foo=1", "Signature": sig}, 400, "unknown signature parameter"},
		{"expires before created", map[string]string{"Signature-Input": strings.Replace(si, "expires=1718000060", "expires=1718000000", 1), "Signature": sig}, 400, "expires must be after created"},
		{"component not a string", map[string]string{"Signature-Input": strings.Replace(si, `"@query"`, `"@query" 1`, 1), "Signature": sig, "Content-Digest": emptyDigest}, 400, "not a string"},
		{"component parameter", map[string]string{"Signature-Input": strings.Replace(si, `"@query"`, `"@query";req`, 1), "Signature": sig, "Content-Digest": emptyDigest}, 400, "component parameters"},
		{"unsupported derived", map[string]string{"Signature-Input": strings.Replace(si, `"@query"`, `"@query" "@status"`, 1), "Signature": sig, "Content-Digest": emptyDigest}, 400, "unsupported derived"},
		{"duplicate component", map[string]string{"Signature-Input": strings.Replace(si, `"@query"`, `"@query" "@path"`, 1), "Signature": sig, "Content-Digest": emptyDigest}, 400, "twice"},
		{"uppercase field", map[string]string{"Signature-Input": strings.Replace(si, `"@query"`, `"@query" "Date"`, 1), "Signature": sig, "Content-Digest": emptyDigest}, 400, "lowercase"},
		{"too many components", map[string]string{"Signature-Input": strings.Replace(si, `"@query"`, `"@query"`+strings.Repeat(` "x"`, 40), 1), "Signature": sig}, 400, "more than"},
		{"digest absent", map[string]string{"Signature-Input": si, "Signature": sig}, 400, "Content-Digest"},
		{"digest garbage", map[string]string{"Signature-Input": si, "Signature": sig, "Content-Digest": "sha-256=abc"}, 400, "Content-Digest"},
		{"digest short", map[string]string{"Signature-Input": si, "Signature": sig, "Content-Digest": "sha-256=:AAAA:"}, 400, "Content-Digest"},
		{"digest unknown alg", map[string]string{"Signature-Input": si, "Signature": sig, "Content-Digest": "md5=:AAAA:"}, 400, "Content-Digest"},
		{"not covering digest", map[string]string{"Signature-Input": strings.Replace(si, ` "content-digest"`, "", 1), "Signature": sig}, 401, "does not cover"},
		{"not covering query", map[string]string{"Signature-Input": strings.Replace(si, ` "@query"`, "", 1), "Signature": sig}, 401, "does not cover"},
		{"unknown alg", map[string]string{"Signature-Input": strings.Replace(si, `alg="ed25519"`, `alg="rsa-pss-sha512"`, 1), "Signature": sig}, 401, "unsupported signature algorithm"},
		{"keyid not a number", map[string]string{"Signature-Input": strings.Replace(si, `keyid="1"`, `keyid="alice"`, 1), "Signature": sig}, 401, "unknown twin"},
		{"keyid leading zero", map[string]string{"Signature-Input": strings.Replace(si, `keyid="1"`, `keyid="01"`, 1), "Signature": sig}, 401, "unknown twin"},
		{"keyid unknown", map[string]string{"Signature-Input": strings.Replace(si, `keyid="1"`, `keyid="2"`, 1), "Signature": sig, "Content-Digest": emptyDigest}, 401, "unknown twin"},
		{"created in the future", map[string]string{"Signature-Input": strings.Replace(strings.Replace(si, "1718000000", "1718000006", 1), "1718000060", "1718000066", 1), "Signature": sig}, 401, "not yet valid"},
		{"expired", map[string]string{"Signature-Input": strings.Replace(strings.Replace(si, "1718000000", "1717999000", 1), "1718000060", "1717999060", 1), "Signature": sig}, 401, "expired"},
		{"too long", map[string]string{"Signature-Input": strings.Replace(si, "1718000060", "1718000301", 1), "Signature": sig}, 401, "validity too long"},
		{"short signature", map[string]string{"Signature-Input": si, "Signature": "sig1=:AAAA:", "Content-Digest": emptyDigest}, 401, "bad signature"},
		{"zero signature", map[string]string{"Signature-Input": si, "Signature": sig, "Content-Digest": emptyDigest}, 401, "bad signature"},
		{"x-auth garbage", map[string]string{"X-Auth": "garbage"}, 400, "X-Auth"},
		{"x-auth bad challenge", map[string]string{"X-Auth": "MQ==:AAAA"}, 400, "X-Auth"},
		{"x-auth unknown twin", map[string]string{"X-Auth": LegacyHeaderValue([]byte("1718000000:2"), make([]byte, 64))}, 401, "unknown twin"},
		{"x-auth zero signature", map[string]string{"X-Auth": LegacyHeaderValue([]byte("1718000000:1"), make([]byte, 64))}, 401, "bad signature"},
		{"x-auth old", map[string]string{"X-Auth": LegacyHeaderValue([]byte("1717990000:1"), make([]byte, 64))}, 401, "expired"},
		{"x-auth future", map[string]string{"X-Auth": LegacyHeaderValue([]byte("1718009999:1"), make([]byte, 64))}, 401, "not yet valid"},
	}
	e := newEnv(t, nil)
	e.db.add(1, mustKey(t, keys.Ed25519))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", e.srv.URL+"/protected/", nil)
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			r := send(t, e.srv.Client(), req)
			wantStatus(t, r, tc.status, tc.msg)
			if r.header.Get(HeaderAcceptSignature) == "" {
				t.Fatal("no Accept-Signature hint")
			}
		})
	}
}
