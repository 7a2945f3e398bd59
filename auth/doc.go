// Package auth authenticates HTTP requests between grid4 clients and
// servers with twin keys (package keys), in two schemes:
//
//   - Signed requests v2: RFC 9421 HTTP Message Signatures over at least
//     "@method", "@path", "@query" and "content-digest" (RFC 9530), with
//     created, expires, nonce, keyid (the twin id) and alg ("ed25519", or
//     grid4's own "sr25519") parameters, and a replay check on the nonce.
//   - Legacy X-Auth, byte-compatible with the public Grid v4
//     node-registrar: X-Auth: base64("<unix_ts>:<twin_id>") ":"
//     base64(signature), plus the account-creation challenge
//     "<unix_ts>:<base64 public key>".
//
// Servers wrap handlers with Verifier.Middleware (or Verifier.Optional) and
// read the caller with CallerFrom. Clients use Transport (or NewClient).
// The wire formats, the exact signed bytes, the time windows, the replay
// rules and the error answers are specified in docs/auth.md.
package auth
