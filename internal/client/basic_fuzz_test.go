package client

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/castellan-auth/castellan/internal/oauth"
)

// FuzzCredentials feeds the Authorization header and the client_id and
// client_secret form values to credentials (RFC 6749 §2.3.1). Invariants:
// errors are invalid_client or invalid_request; exactly one method is used;
// Basic credentials are form-decoded and re-encoding them reads back the same.
func FuzzCredentials(f *testing.F) {
	basic := func(id, secret string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
	}
	for _, s := range [][3]string{
		{basic("web", "s3cret"), "", ""},
		{basic("a b+c:%", "p:w d"), "", ""},
		{"basic " + base64.StdEncoding.EncodeToString([]byte("svc:x")), "", ""},
		{"Basic !!!", "", ""},
		{"Basic " + base64.StdEncoding.EncodeToString([]byte("svc")), "", ""},
		{"Basic " + base64.StdEncoding.EncodeToString([]byte(":x")), "", ""},
		{"Basic " + base64.StdEncoding.EncodeToString([]byte("%zz:x")), "", ""},
		{"Bearer abc", "svc", ""},
		{basic("web", "s"), "", "s"},
		{basic("web", "s"), "other", ""},
		{basic("web", "s"), "web", ""},
		{"", "svc", "secret"},
		{"", "spa", ""},
		{"", "", ""},
		{"Basic", "", ""},
		{"Basic  " + base64.StdEncoding.EncodeToString([]byte("a:b")) + " ", "", ""},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, header, clientID, clientSecret string) {
		r, _ := http.NewRequest(http.MethodPost, "http://id.example/token", nil)
		if header != "" {
			r.Header.Set("Authorization", header)
		}
		form := map[string]string{}
		if clientID != "" {
			form["client_id"] = clientID
		}
		if clientSecret != "" {
			form["client_secret"] = clientSecret
		}
		method, id, secret, err := credentials(r, form)
		if err != nil {
			var oe *oauth.Error
			if !errors.As(err, &oe) || (oe.Code != oauth.ErrInvalidClient && oe.Code != oauth.ErrInvalidRequest) {
				t.Fatalf("credentials(%q, %q, %q): error %v", header, clientID, clientSecret, err)
			}
			return
		}
		// What the Authorization header says once net/http has stored it.
		sent := r.Header.Get("Authorization")
		switch method {
		case oauth.AuthClientSecretBasic:
			scheme, _, _ := strings.Cut(sent, " ")
			if !strings.EqualFold(scheme, "Basic") || id == "" || clientSecret != "" || (clientID != "" && clientID != id) {
				t.Fatalf("Basic accepted from %q with form %q/%q: id %q", header, clientID, clientSecret, id)
			}
			r2, _ := http.NewRequest(http.MethodPost, "http://id.example/token", nil)
			r2.Header.Set("Authorization", basic(id, secret))
			m2, id2, secret2, err := credentials(r2, map[string]string{})
			if err != nil || m2 != method || id2 != id || secret2 != secret {
				t.Fatalf("round trip of %q/%q: %q %q %q %v", id, secret, m2, id2, secret2, err)
			}
		case oauth.AuthClientSecretPost:
			if sent != "" || id != clientID || secret != clientSecret || secret == "" {
				t.Fatalf("client_secret_post from %q, %q, %q: %q %q", header, clientID, clientSecret, id, secret)
			}
		case oauth.AuthNone:
			if sent != "" || id != clientID || id == "" || secret != "" || clientSecret != "" {
				t.Fatalf("none from %q, %q, %q: %q %q", header, clientID, clientSecret, id, secret)
			}
		default:
			t.Fatalf("credentials(%q, %q, %q): method %q", header, clientID, clientSecret, method)
		}
	})
}
