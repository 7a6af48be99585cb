package oauth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
)

// PKCE (RFC 7636). Castellan supports only S256: "plain" gives no protection
// when the authorization request leaks (OAuth 2.1 §4.1.1, RFC 9700 §2.1.1).
const PKCES256 = "S256"

// ValidChallenge reports whether c is an S256 code challenge: the unpadded
// base64url encoding of a SHA-256 digest, so exactly 43 characters of that
// alphabet (RFC 7636 §4.2).
func ValidChallenge(c string) bool {
	if len(c) != 43 {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	return err == nil && len(b) == sha256.Size
}

// ValidVerifier reports whether v is a code verifier: 43 to 128 characters of
// [A-Z] [a-z] [0-9] "-" "." "_" "~" (RFC 7636 §4.1).
func ValidVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
}

// S256Challenge is BASE64URL(SHA256(ASCII(verifier))).
func S256Challenge(verifier string) string {
	h := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// VerifyPKCE checks a verifier against an S256 challenge in constant time.
func VerifyPKCE(verifier, challenge string) bool {
	if !ValidVerifier(verifier) {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(S256Challenge(verifier)), []byte(challenge)) == 1
}
