package config_test

import (
	"strings"
	"testing"

	"github.com/castellan-auth/castellan/internal/config"
)

func TestDPoPConfig(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  []string
		want string // "" loads, else a part of the one-line error
	}{
		{name: "ok/default", yaml: "issuer: http://127.0.0.1:9000\n"},
		{name: "ok/file", yaml: "dpop:\n  algorithms: [ES256]\n  require_nonce: true\n"},
		{name: "ok/env", yaml: "issuer: http://127.0.0.1:9000\n", env: []string{"CASTELLAN_DPOP_REQUIRE_NONCE=true", "CASTELLAN_DPOP_ALGORITHMS=EdDSA,PS256"}},
		{name: "fail/none", yaml: "dpop:\n  algorithms: [none]\n", want: "dpop.algorithms[0]: want one of"},
		{name: "fail/hs256", yaml: "dpop:\n  algorithms: [ES256, HS256]\n", want: "dpop.algorithms[1]: want one of"},
		{name: "fail/empty", yaml: "dpop:\n  algorithms: []\n", want: "dpop.algorithms: list at least one"},
		{name: "fail/unknown-key", yaml: "dpop:\n  nonce: true\n", want: "dpop.nonce"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, "castellan.yaml", tc.yaml)
			cfg, err := config.Load(path, tc.env)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("got %v, want an error with %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			switch tc.name {
			case "ok/default":
				eq(t, "dpop.algorithms", cfg.DPoP.Algorithms, []string{"ES256", "EdDSA", "RS256", "PS256"})
				eq(t, "dpop.require_nonce", cfg.DPoP.RequireNonce, false)
			case "ok/file":
				eq(t, "dpop.algorithms", cfg.DPoP.Algorithms, []string{"ES256"})
				eq(t, "dpop.require_nonce", cfg.DPoP.RequireNonce, true)
			case "ok/env":
				eq(t, "dpop.algorithms", cfg.DPoP.Algorithms, []string{"EdDSA", "PS256"})
				eq(t, "dpop.require_nonce", cfg.DPoP.RequireNonce, true)
			}
		})
	}
}
