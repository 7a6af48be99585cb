package loadgen_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/castellan-auth/castellan/internal/loadgen"
)

// The reference endpoint answers the bench's client_credentials scenario like
// a provider would (discovery, a signed at+jwt for the service client), and
// refuses any other secret.
func TestReferenceEndpoint(t *testing.T) {
	srv := httptest.NewUnstartedServer(nil)
	srv.Start()
	defer srv.Close()
	svc := loadgen.Client{ID: loadgen.ServiceClient, Secret: "reference-secret", AuthMethod: "client_secret_basic", Scope: "api"}
	ref, err := loadgen.NewReference(srv.URL, svc, "ES256")
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = ref

	res, err := loadgen.Run(t.Context(), loadgen.Options{
		Target: srv.URL, Scenario: loadgen.ClientCredentials, Credentials: loadgen.Credentials{Service: svc},
		Duration: 200 * time.Millisecond, Concurrency: 2, Timeout: 10 * time.Second,
		ServerPID: os.Getpid(), Baseline: loadgen.BaselineOptions{Budget: 5 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, res, "token:client_credentials")
	if res.Baseline == nil || res.Baseline.AccessAlg != "ES256" {
		t.Errorf("baseline %+v: want it measured with the reference's ES256", res.Baseline)
	}

	post := func(secret string) (*http.Response, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/token", strings.NewReader("grant_type=client_credentials"))
		req.SetBasicAuth(svc.ID, secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		json.NewDecoder(resp.Body).Decode(&body)
		return resp, body
	}
	if resp, body := post("wrong"); resp.StatusCode != http.StatusUnauthorized || body["error"] != "invalid_client" {
		t.Errorf("wrong secret: %d %v, want 401 invalid_client", resp.StatusCode, body)
	}
	resp, body := post(svc.Secret)
	token, _ := body["access_token"].(string)
	if resp.StatusCode != http.StatusOK || token == "" || body["token_type"] != "Bearer" {
		t.Fatalf("right secret: %d %v", resp.StatusCode, body)
	}
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	if typ := jws.Signatures[0].Protected.ExtraHeaders["typ"]; typ != "at+jwt" {
		t.Errorf("typ %v, want at+jwt", typ)
	}
	var claims map[string]any
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[1])
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	if claims["iss"] != srv.URL || claims["client_id"] != svc.ID || claims["scope"] != "api" || claims["jti"] == "" {
		t.Errorf("claims %v", claims)
	}
}
