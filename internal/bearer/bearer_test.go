package bearer_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/castellan-auth/castellan/internal/bearer"
)

func TestRead(t *testing.T) {
	for _, tc := range []struct {
		name    string
		target  string
		headers []string
		body    string
		rules   bearer.Rules
		want    bearer.Credentials
		code    string // "" with wantNone: the bare refusal
		none    bool
	}{
		{name: "ok/bearer", headers: []string{"Bearer abc.def-_~+/="}, want: bearer.Credentials{Token: "abc.def-_~+/="}},
		{name: "ok/scheme-case-insensitive", headers: []string{"bEaReR tok"}, want: bearer.Credentials{Token: "tok"}},
		{name: "ok/spaces-before-token", headers: []string{"Bearer   tok"}, want: bearer.Credentials{Token: "tok"}},
		{name: "ok/dpop", headers: []string{"DPoP tok"}, rules: bearer.Rules{DPoP: true}, want: bearer.Credentials{Token: "tok", DPoP: true}},
		{name: "none/no-header", none: true},
		{name: "none/basic", headers: []string{"Basic dXNlcjpwYXNz"}, none: true},
		{name: "none/dpop-not-taken", headers: []string{"DPoP tok"}, none: true},
		{name: "fail/two-headers", headers: []string{"Bearer a", "Bearer b"}, code: "invalid_request"},
		{name: "fail/empty-token", headers: []string{"Bearer "}, code: "invalid_request"},
		{name: "fail/two-tokens", headers: []string{"Bearer a b"}, code: "invalid_request"},
		{name: "fail/not-token68", headers: []string{"Bearer a\"b"}, code: "invalid_request"},
		{name: "fail/padding-inside", headers: []string{"Bearer a=b"}, code: "invalid_request"},
		{name: "fail/query-token", target: "/?access_token=x", headers: []string{"Bearer a"}, code: "invalid_request"},
		{name: "fail/form-token", body: "access_token=x", rules: bearer.Rules{Form: true}, headers: []string{"Bearer a"}, code: "invalid_request"},
		{name: "ok/form-not-read", body: "access_token=x", headers: []string{"Bearer a"}, want: bearer.Credentials{Token: "a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := tc.target
			if target == "" {
				target = "/"
			}
			method := http.MethodGet
			if tc.body != "" {
				method = http.MethodPost
			}
			r := httptest.NewRequest(method, target, strings.NewReader(tc.body))
			if tc.body != "" {
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			for _, h := range tc.headers {
				r.Header.Add("Authorization", h)
			}
			got, ref := bearer.Read(r, tc.rules)
			switch {
			case tc.none:
				if ref == nil || ref.Code != "" || ref.Status != http.StatusUnauthorized {
					t.Fatalf("got %+v, %v; want the bare refusal", got, ref)
				}
			case tc.code != "":
				if ref == nil || ref.Code != tc.code {
					t.Fatalf("got %+v, %v; want %s", got, ref, tc.code)
				}
			case ref != nil:
				t.Fatalf("got refusal %v, want %+v", ref, tc.want)
			case got != tc.want:
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestBound(t *testing.T) {
	storageDown := errors.New("storage down")
	proofOf := func(jkt string, err error) func() (string, error) {
		return func() (string, error) { return jkt, err }
	}
	for _, tc := range []struct {
		name   string
		creds  bearer.Credentials
		jkt    string
		proof  func() (string, error)
		code   string
		dpop   bool
		plain  error
		called bool
	}{
		{name: "ok/bearer-unbound", creds: bearer.Credentials{Token: "t"}},
		{name: "ok/dpop-bound", creds: bearer.Credentials{Token: "t", DPoP: true}, jkt: "k", proof: proofOf("k", nil)},
		{name: "fail/bound-sent-as-bearer", creds: bearer.Credentials{Token: "t"}, jkt: "k", code: "invalid_token"},
		{name: "fail/unbound-sent-as-dpop", creds: bearer.Credentials{Token: "t", DPoP: true}, code: "invalid_token", dpop: true},
		{name: "fail/proof-of-another-key", creds: bearer.Credentials{Token: "t", DPoP: true}, jkt: "k", proof: proofOf("other", nil), code: "invalid_dpop_proof", dpop: true},
		{name: "fail/proof-refused", creds: bearer.Credentials{Token: "t", DPoP: true}, jkt: "k",
			proof: proofOf("", bearer.InvalidProof("use_dpop_nonce", "nonce")), code: "use_dpop_nonce", dpop: true},
		{name: "fail/storage", creds: bearer.Credentials{Token: "t", DPoP: true}, jkt: "k", proof: proofOf("", storageDown), plain: storageDown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := bearer.Bound(tc.creds, tc.jkt, tc.proof)
			var ref *bearer.Refusal
			switch {
			case tc.plain != nil:
				if !errors.Is(err, tc.plain) || errors.As(err, &ref) {
					t.Fatalf("got %v, want %v as it is", err, tc.plain)
				}
			case tc.code == "":
				if err != nil {
					t.Fatalf("got %v, want nil", err)
				}
			case !errors.As(err, &ref) || ref.Code != tc.code || ref.DPoP != tc.dpop:
				t.Fatalf("got %#v, want %s (dpop %t)", err, tc.code, tc.dpop)
			}
		})
	}
}

func TestChallengerWrite(t *testing.T) {
	both := bearer.Challenger{Realm: "castellan", DPoPAlgs: []string{"ES256", "EdDSA"}, Nonce: func() string { return "n-1" }}
	plain := bearer.Challenger{Realm: "api"}
	for _, tc := range []struct {
		name       string
		c          bearer.Challenger
		ref        *bearer.Refusal
		status     int
		challenges []string
		body       string
		nonce      string
	}{
		{name: "no-token/bearer-only", c: plain, ref: bearer.NoToken(), status: 401,
			challenges: []string{`Bearer realm="api"`}},
		{name: "no-token/both-schemes", c: both, ref: bearer.NoToken(), status: 401,
			challenges: []string{`Bearer realm="castellan"`, `DPoP realm="castellan", algs="ES256 EdDSA"`}},
		{name: "invalid-token", c: both, ref: bearer.InvalidToken("expired"), status: 401,
			challenges: []string{`Bearer realm="castellan", error="invalid_token", error_description="expired"`},
			body:       `{"error":"invalid_token","error_description":"expired"}`},
		{name: "invalid-token/dpop-scheme", c: both, ref: bearer.InvalidToken("expired").InScheme(true), status: 401,
			challenges: []string{`DPoP realm="castellan", error="invalid_token", error_description="expired", algs="ES256 EdDSA"`},
			body:       `{"error":"invalid_token","error_description":"expired"}`},
		{name: "use-dpop-nonce", c: both, ref: bearer.InvalidProof("use_dpop_nonce", "a nonce is required"), status: 401, nonce: "n-1",
			challenges: []string{`DPoP realm="castellan", error="use_dpop_nonce", error_description="a nonce is required", algs="ES256 EdDSA"`},
			body:       `{"error":"use_dpop_nonce","error_description":"a nonce is required"}`},
		{name: "insufficient-scope", c: plain, ref: bearer.InsufficientScope("needs more", "read", "write"), status: 403,
			challenges: []string{`Bearer realm="api", error="insufficient_scope", error_description="needs more", scope="read write"`},
			body:       `{"error":"insufficient_scope","error_description":"needs more"}`},
		{name: "insufficient-user-authentication", c: plain, ref: bearer.InsufficientUserAuthentication("step up", []string{"phr"}, 300), status: 401,
			challenges: []string{`Bearer realm="api", error="insufficient_user_authentication", error_description="step up", acr_values="phr", max_age=300`},
			body:       `{"error":"insufficient_user_authentication","error_description":"step up"}`},
		{name: "escaping/quote-backslash-and-controls", c: plain, ref: bearer.InvalidToken("a \"b\" \\c\r\nX-Evil: 1"), status: 401,
			challenges: []string{`Bearer realm="api", error="invalid_token", error_description="a \"b\" \\cX-Evil: 1"`},
			body:       `{"error":"invalid_token","error_description":"a \"b\" \\c\r\nX-Evil: 1"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			tc.c.Write(w, tc.ref)
			if w.Code != tc.status {
				t.Errorf("status: got %d, want %d", w.Code, tc.status)
			}
			if got := w.Header().Values("WWW-Authenticate"); strings.Join(got, "\n") != strings.Join(tc.challenges, "\n") {
				t.Errorf("WWW-Authenticate:\ngot  %q\nwant %q", got, tc.challenges)
			}
			if got := strings.TrimSpace(w.Body.String()); got != tc.body {
				t.Errorf("body: got %s, want %s", got, tc.body)
			}
			if got := w.Header().Get("DPoP-Nonce"); got != tc.nonce {
				t.Errorf("DPoP-Nonce: got %q, want %q", got, tc.nonce)
			}
			if got := w.Header().Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control: got %q, want no-store", got)
			}
		})
	}
}

// FuzzQuote: whatever a description holds, the quoted string is one
// quoted-string: no control character, every quote and backslash escaped.
func FuzzQuote(f *testing.F) {
	for _, s := range []string{"", `a"b`, `\`, "x\r\ny", "é\x7f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q := bearer.Quote(s)
		if len(q) < 2 || q[0] != '"' || q[len(q)-1] != '"' {
			t.Fatalf("%q: not quoted", q)
		}
		inner := q[1 : len(q)-1]
		for i := 0; i < len(inner); i++ {
			switch c := inner[i]; {
			case c < 0x20 && c != '\t', c == 0x7f:
				t.Fatalf("%q: control character %#x", q, c)
			case c == '\\':
				i++ // the escaped character
				if i == len(inner) {
					t.Fatalf("%q: ends in a lone backslash", q)
				}
			case c == '"':
				t.Fatalf("%q: unescaped quote", q)
			}
		}
	})
}
