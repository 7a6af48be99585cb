package cluster_test

import (
	"regexp"
	"testing"
	"time"
)

// must(f())(t) fails the test if f returned an error, else returns its value.
func must[T any](v T, err error) func(t *testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// One person's session and one grant travel across the nodes: nothing one node
// needs is kept only in another node's memory.
func TestMultiNodeFlow(t *testing.T) {
	c := newCluster(t, options{})
	a, b, cc := c.nodes[0], c.nodes[1], c.nodes[2]
	br := c.browser()

	if err := br.signIn(a); err != nil {
		t.Fatal(err)
	}
	p := newPKCE()
	params := must(br.authorize(b, p, spaScope, "none"))(t)
	tok := must(c.redeem(cc, params.Get("code"), p))(t)
	if tok.RefreshToken == "" || tok.IDToken == "" {
		t.Fatalf("redeem on C: got %+v, want access, refresh and ID tokens", tok)
	}
	for _, n := range c.nodes {
		if !must(c.introspect(n, tok.AccessToken))(t) {
			t.Errorf("access token from C inactive at node %s", n.name)
		}
	}

	refreshed := must(c.refresh(a, tok.RefreshToken))(t)
	if refreshed.RefreshToken == tok.RefreshToken {
		t.Error("refresh on A: the refresh token of a public client did not rotate")
	}
	if err := c.revoke(b, refreshed.RefreshToken); err != nil {
		t.Fatal(err)
	}
	for _, at := range []string{tok.AccessToken, refreshed.AccessToken} {
		if must(c.introspect(cc, at))(t) {
			t.Error("introspect on C after revocation on B: got active, want inactive")
		}
	}
	if _, err := c.refresh(a, refreshed.RefreshToken); statusOf(err) != 400 {
		t.Errorf("refresh on A with the token revoked on B: got %v, want 400 invalid_grant", err)
	}

	t.Run("rotation", func(t *testing.T) { testRotation(t, c, br) })

	// A node asked to stop finishes in-flight work and exits cleanly.
	if err := b.term(25 * time.Second); err != nil {
		t.Errorf("node B on SIGTERM: %v", err)
	}
}

var rotatedLine = regexp.MustCompile(`(?m)^rotated (\S+): new key (\S+) signs from (\S+)$`)

// Keys rotated on A reach B and C within the propagation delay; every node
// then signs with the new key, and tokens of the previous key still verify.
func testRotation(t *testing.T, c *cluster, br *browser) {
	a, b, cc := c.nodes[0], c.nodes[1], c.nodes[2]
	p := newPKCE()
	old := must(c.redeem(a, must(br.authorize(cc, p, spaScope, "none"))(t).Get("code"), p))(t)
	oldKID := kidOf(old.AccessToken)

	out := c.cli("keys", "rotate")
	rotatedAt := time.Now()
	m := rotatedLine.FindAllStringSubmatch(out, -1)
	if len(m) != 2 {
		t.Fatalf("keys rotate: got %q, want a new key for ES256 and RS256", out)
	}
	newKID := map[string]string{}
	activates := rotatedAt
	for _, r := range m {
		newKID[r[1]] = r[2]
		at, err := time.Parse(time.RFC3339, r[3])
		if err != nil {
			t.Fatalf("keys rotate: activation %q: %v", r[3], err)
		}
		activates = at.Add(time.Second) // RFC 3339 in whole seconds: round up
	}

	// Published everywhere within one refresh interval (plus a request's slack),
	// and in any case before the key signs.
	for _, n := range []*node{a, b, cc} {
		for {
			set := must(c.jwks(n))(t)
			if len(set.Key(newKID["ES256"])) == 1 && len(set.Key(newKID["RS256"])) == 1 {
				break
			}
			if time.Since(rotatedAt) > propagation {
				t.Fatalf("node %s: new keys not in JWKS %s after rotation, want within %s", n.name, time.Since(rotatedAt).Round(time.Millisecond), propagation)
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Logf("node %s publishes the new keys %s after rotation", n.name, time.Since(rotatedAt).Round(time.Millisecond))
	}
	// Until the new key activates, nodes go on signing with the current one.
	if tok := must(c.refresh(b, old.RefreshToken))(t); time.Since(rotatedAt) < propagation-500*time.Millisecond {
		if kid := kidOf(tok.AccessToken); kid != oldKID {
			t.Errorf("before activation: node B signed with %s, want the current key %s", kid, oldKID)
		}
	}

	time.Sleep(time.Until(activates))
	for _, n := range []*node{a, b, cc} {
		p := newPKCE()
		tok := must(c.redeem(n, must(br.authorize(n, p, spaScope, "none"))(t).Get("code"), p))(t)
		if kid := kidOf(tok.AccessToken); kid != newKID["ES256"] {
			t.Errorf("node %s signs access tokens with %s, want the new key %s", n.name, kid, newKID["ES256"])
		}
		if kid := kidOf(tok.IDToken); kid != newKID["RS256"] {
			t.Errorf("node %s signs ID tokens with %s, want the new key %s", n.name, kid, newKID["RS256"])
		}
	}

	// The token signed by the previous key still verifies, at every node and
	// against every node's JWKS.
	for _, n := range []*node{a, b, cc} {
		if !must(c.introspect(n, old.AccessToken))(t) {
			t.Errorf("node %s: access token of the previous key inactive, want active until it expires", n.name)
		}
		if err := verifyWith(must(c.jwks(n))(t), old.AccessToken); err != nil {
			t.Errorf("node %s JWKS: access token of the previous key: %v", n.name, err)
		}
	}
}
