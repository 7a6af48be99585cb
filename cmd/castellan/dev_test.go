package main

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/castellan-auth/castellan/internal/config"
	"github.com/castellan-auth/castellan/internal/demo"
)

// castellan dev's Backend-for-Frontend is registered at the provider for the
// origin it listens on, and its gateway configuration is valid, with its
// sessions in the data directory.
func TestDevBFF(t *testing.T) {
	dir := t.TempDir()
	cfg := devConfig(dir, "a-password-for-the-test")
	if problems := cfg.Validate(); len(problems) > 0 {
		t.Fatalf("dev config: %v", problems)
	}
	setup := devSetup(cfg.Issuer, "api-secret-0123456789abcdef0123456789", "bff-secret-0123456789abcdef0123456789")
	gw := devBFFConfig(dir, setup)
	if problems := gw.Validate(); len(problems) > 0 {
		t.Fatalf("dev bff config: %v", problems)
	}
	if gw.Listen != devBFF || gw.PublicURL != "http://"+devBFF || gw.Issuer != cfg.Issuer {
		t.Errorf("bff: listen %q, public_url %q, issuer %q", gw.Listen, gw.PublicURL, gw.Issuer)
	}
	if want := "sqlite:" + filepath.Join(dir, "bff.db"); gw.Storage != want || !strings.HasPrefix(gw.KeyFile, dir) {
		t.Errorf("bff storage %q, key %q: want both in %s", gw.Storage, gw.KeyFile, dir)
	}
	if gw.RefreshBefore.D() >= cfg.Tokens.AccessTokenTTL.D() {
		t.Errorf("bff refresh_before %v is not shorter than the access tokens' %v: it would refresh at every call", gw.RefreshBefore.D(), cfg.Tokens.AccessTokenTTL.D())
	}
	i := slices.IndexFunc(cfg.Clients, func(c config.Client) bool { return c.ClientID == demo.ClientBFF })
	if i < 0 {
		t.Fatalf("dev config has no client %s", demo.ClientBFF)
	}
	if c := cfg.Clients[i]; !slices.Contains(c.RedirectURIs, gw.PublicURL+"/bff/callback") || c.BackchannelLogoutURI != gw.PublicURL+"/bff/backchannel-logout" {
		t.Errorf("client %s: redirect URIs %v, back-channel %q", c.ClientID, c.RedirectURIs, c.BackchannelLogoutURI)
	}
}
