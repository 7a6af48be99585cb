package oauth_test

import (
	"strings"
	"testing"

	"github.com/castellan-auth/castellan/internal/oauth"
)

// RFC 7636 Appendix B.
const (
	rfcVerifier  = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	rfcChallenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
)

func TestS256Challenge(t *testing.T) {
	if got := oauth.S256Challenge(rfcVerifier); got != rfcChallenge {
		t.Fatalf("got %q, want %q (RFC 7636 Appendix B)", got, rfcChallenge)
	}
	if !oauth.VerifyPKCE(rfcVerifier, rfcChallenge) {
		t.Fatal("the RFC's verifier does not verify")
	}
}

func TestValidChallenge(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    string
		ok   bool
	}{
		{"ok/rfc", rfcChallenge, true},
		{"bad/empty", "", false},
		{"bad/42", rfcChallenge[:42], false},
		{"bad/44", rfcChallenge + "A", false},
		{"bad/padded", rfcChallenge[:42] + "=", false},
		{"bad/std-alphabet", "+" + rfcChallenge[1:], false},
		{"bad/verifier-alphabet", rfcChallenge[:42] + "~", false},
		{"bad/space", rfcChallenge[:42] + " ", false},
		{"bad/verifier-as-plain-challenge", rfcVerifier + "x", false},
		{"bad/128", strings.Repeat("A", 128), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := oauth.ValidChallenge(tc.c); got != tc.ok {
				t.Errorf("ValidChallenge(%q): got %v, want %v", tc.c, got, tc.ok)
			}
		})
	}
}

func TestVerifyPKCE(t *testing.T) {
	for _, tc := range []struct {
		name     string
		verifier string
		ok       bool
	}{
		{"ok/rfc", rfcVerifier, true},
		{"bad/empty", "", false},
		{"bad/other", strings.Repeat("a", 43), false},
		{"bad/challenge-as-verifier", rfcChallenge, false},
		{"bad/truncated", rfcVerifier[:42], false},
		{"bad/padded", rfcVerifier + "=", false},
		{"bad/too-long", strings.Repeat("a", 129), false},
		{"bad/alphabet", rfcVerifier[:42] + "+", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := oauth.VerifyPKCE(tc.verifier, rfcChallenge); got != tc.ok {
				t.Errorf("VerifyPKCE(%q): got %v, want %v", tc.verifier, got, tc.ok)
			}
		})
	}
	if !oauth.ValidVerifier(strings.Repeat("a", 128)) || oauth.ValidVerifier(strings.Repeat("a", 42)) {
		t.Error("verifier length bounds are not 43..128 (RFC 7636 §4.1)")
	}
}
