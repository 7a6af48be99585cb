package cluster_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/castellan-auth/castellan/internal/opaque"
)

// rounds is how often each race is run.
const rounds = 5

// onEveryNode calls fn on every node at the same moment and returns the
// results in node order.
func onEveryNode(c *cluster, fn func(n *node) (tokens, error)) ([]tokens, []error) {
	toks, errs := make([]tokens, len(c.nodes)), make([]error, len(c.nodes))
	// Warm the connections first, so that no request waits for a handshake
	// the others do not.
	for _, n := range c.nodes {
		healthz(c.http, n)
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, n := range c.nodes {
		wg.Go(func() {
			<-start
			toks[i], errs[i] = fn(n)
		})
	}
	close(start)
	wg.Wait()
	return toks, errs
}

// oneWinner checks that exactly one node answered 200 and every other one
// 400 invalid_grant, and returns the winner's tokens.
func oneWinner(t *testing.T, what string, toks []tokens, errs []error) tokens {
	t.Helper()
	var won []int
	for i, err := range errs {
		switch {
		case err == nil:
			won = append(won, i)
		case statusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), `"invalid_grant"`):
			t.Errorf("%s: node %c: got %v, want 200 or 400 invalid_grant", what, nodeNames[i], err)
		}
	}
	if len(won) != 1 {
		t.Fatalf("%s on %d nodes at once: got %d successes, want exactly 1", what, len(errs), len(won))
	}
	return toks[won[0]]
}

// Single-use things stay single-use across nodes.
func TestRacesAcrossNodes(t *testing.T) {
	c := newCluster(t, options{}) // refresh_token_grace: 0s
	br := c.browser()
	if err := br.signIn(c.nodes[0]); err != nil {
		t.Fatal(err)
	}

	t.Run("same-code-on-every-node", func(t *testing.T) {
		for round := range rounds {
			p := newPKCE()
			code := must(br.authorize(c.nodes[round%len(c.nodes)], p, spaScope, "none"))(t).Get("code")
			toks, errs := onEveryNode(c, func(n *node) (tokens, error) { return c.redeem(n, code, p) })
			won := oneWinner(t, "redeem", toks, errs)
			// RFC 6749 §4.1.2: the second use revoked what the first one issued,
			// whichever nodes they ran on.
			if must(c.introspect(c.nodes[round%len(c.nodes)], won.AccessToken))(t) {
				t.Errorf("round %d: the winner's access token is active after the code was used again", round)
			}
		}
	})

	t.Run("same-refresh-token-on-every-node", func(t *testing.T) {
		for round := range rounds {
			p := newPKCE()
			tok := must(c.redeem(c.nodes[0], must(br.authorize(c.nodes[1], p, spaScope, "none"))(t).Get("code"), p))(t)
			toks, errs := onEveryNode(c, func(n *node) (tokens, error) { return c.refresh(n, tok.RefreshToken) })
			won := oneWinner(t, "refresh", toks, errs)

			// Never two children: the family holds the parent and one child, and
			// the reuse the losers presented revoked it (RFC 9700 §4.14.2).
			_, g, err := c.store.GetRefreshToken(t.Context(), opaque.Hash(tok.RefreshToken))
			if err != nil {
				t.Fatal(err)
			}
			var members, live int
			if err := c.db.QueryRowContext(t.Context(),
				`SELECT count(*), count(*) FILTER (WHERE used_at = 0) FROM refresh_tokens WHERE grant_id = $1`, g.ID).Scan(&members, &live); err != nil {
				t.Fatal(err)
			}
			if members != 2 || live != 1 {
				t.Errorf("round %d: family has %d tokens, %d unused; want the parent and one child", round, members, live)
			}
			if g.RevokedAt.IsZero() {
				t.Errorf("round %d: family not revoked after its rotated token was presented again", round)
			}
			if _, err := c.refresh(c.nodes[2], won.RefreshToken); statusOf(err) != http.StatusBadRequest {
				t.Errorf("round %d: the child of a revoked family: got %v, want 400", round, err)
			}
		}
	})
}
