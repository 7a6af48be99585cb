package token_test

import (
	"database/sql"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/castellan-auth/castellan/internal/config"
	"github.com/castellan-auth/castellan/internal/server/servertest"
)

// storm sends the same token request from n goroutines released at once and
// returns every answer.
func storm(t *testing.T, env *servertest.Env, n int, form url.Values, c servertest.ClientAuth) []servertest.Reply {
	t.Helper()
	replies := make([]servertest.Reply, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			replies[i], errs[i] = env.PostForm("/token", form, c)
		}()
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return replies
}

// tally counts answers by status and error code ("200", "400 invalid_grant").
func tally(replies []servertest.Reply) map[string]int {
	out := map[string]int{}
	for _, r := range replies {
		out[strings.TrimSpace(strconv.Itoa(r.Status)+" "+r.Code())]++
	}
	return out
}

const http200 = "200"

// familySize counts the refresh tokens stored for a grant, reading the
// SQLite file directly: the storage interface has no reason to list them.
func familySize(t *testing.T, env *servertest.Env, grantID string) int {
	t.Helper()
	path := strings.TrimPrefix(env.Config.Storage, "sqlite://")
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM refresh_tokens WHERE grant_id = ?`, grantID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestConcurrentCodeRedemption: of n simultaneous redemptions of one code
// exactly one succeeds; the others are reuse, which revokes what the winner
// got (RFC 6749 §4.1.2; ADVERSARIAL 26).
func TestConcurrentCodeRedemption(t *testing.T) {
	f := newFixture(t)
	for _, n := range []int{20, 50} {
		name := "adv26/parallel-redemptions-" + strconv.Itoa(n)
		t.Run(name, func(t *testing.T) {
			code, a := f.code(t, servertest.Authz{})
			replies := storm(t, f.env, n, servertest.RedeemForm(code, a), servertest.SPAClient)
			got := tally(replies)
			if got[http200] != 1 || got["400 invalid_grant"] != n-1 {
				t.Fatalf("answers %v, want exactly one 200 and %d invalid_grant", got, n-1)
			}
			for _, r := range replies {
				checkReply(t, r, r.Status, r.Code())
				if r.Status == 200 {
					// The losers were reuse: the winner's tokens are revoked.
					tk := r.Tokens()
					inactive(t, f.env, servertest.SvcClient, tk.AccessToken)
					checkReply(t, f.env.Refresh(t, servertest.SPAClient, tk.RefreshToken, ""), 400, "invalid_grant")
				}
			}
		})
	}
}

// TestConcurrentRefresh: n simultaneous refreshes with one token. Inside the
// grace window every one gets the very same child and the family grows by
// one; outside it exactly one succeeds, the rest are reuse and end the
// family. Either way there are never two live children (ADVERSARIAL 36).
func TestConcurrentRefresh(t *testing.T) {
	for _, n := range []int{10, 50} {
		t.Run("adv36/inside-grace-window-"+strconv.Itoa(n), func(t *testing.T) {
			f := newFixture(t, func(cfg *config.Config) { cfg.Tokens.RefreshTokenGrace = config.Duration(10 * time.Second) })
			tk := f.tokens(t, servertest.Authz{})
			grant := grantOf(t, tk.AccessToken)
			replies := storm(t, f.env, n, form("grant_type", "refresh_token", "refresh_token", tk.RefreshToken), servertest.SPAClient)
			if got := tally(replies); got[http200] != n {
				t.Fatalf("answers %v, want %d × 200", got, n)
			}
			child := replies[0].Tokens().RefreshToken
			for _, r := range replies {
				if tk := mustToken(t, r); tk.RefreshToken != child || child == "" {
					t.Fatal("two refreshes inside the grace window got different children")
				}
				if !f.env.Active(t, r.Tokens().AccessToken) {
					t.Error("access token of a grace answer inactive")
				}
			}
			if size := familySize(t, f.env, grant); size != 2 {
				t.Fatalf("family has %d members, want 2 (parent and one child)", size)
			}
			if refreshActive(t, f.env, tk.RefreshToken) || !refreshActive(t, f.env, child) {
				t.Fatal("want the parent used and exactly the child live")
			}
			// The child moves on; the parent presented after the window is reuse.
			mustToken(t, f.env.Refresh(t, servertest.SPAClient, child, ""))
			f.env.Clock.Advance(11 * time.Second)
			checkReply(t, f.env.Refresh(t, servertest.SPAClient, tk.RefreshToken, ""), 400, "invalid_grant")
		})
		t.Run("adv36/outside-grace-window-"+strconv.Itoa(n), func(t *testing.T) {
			f := newFixture(t, func(cfg *config.Config) { cfg.Tokens.RefreshTokenGrace = 0 })
			tk := f.tokens(t, servertest.Authz{})
			grant := grantOf(t, tk.AccessToken)
			replies := storm(t, f.env, n, form("grant_type", "refresh_token", "refresh_token", tk.RefreshToken), servertest.SPAClient)
			if got := tally(replies); got[http200] != 1 || got["400 invalid_grant"] != n-1 {
				t.Fatalf("answers %v, want exactly one 200 and %d invalid_grant", got, n-1)
			}
			if size := familySize(t, f.env, grant); size != 2 {
				t.Fatalf("family has %d members, want 2 (parent and one child)", size)
			}
			for _, r := range replies {
				if r.Status != 200 {
					continue
				}
				// The others were reuse: the family, winner included, is revoked.
				won := r.Tokens()
				if refreshActive(t, f.env, won.RefreshToken) || refreshActive(t, f.env, tk.RefreshToken) {
					t.Fatal("a member of a family with detected reuse is still live")
				}
				checkReply(t, f.env.Refresh(t, servertest.SPAClient, won.RefreshToken, ""), 400, "invalid_grant")
				inactive(t, f.env, servertest.SvcClient, won.AccessToken)
			}
		})
	}
	t.Run("adv36/grace-window-confidential-rotating", func(t *testing.T) {
		// The same through introspection, for a client that may introspect its own refresh tokens.
		f := newFixture(t, func(cfg *config.Config) { cfg.Tokens.RefreshTokenGrace = config.Duration(10 * time.Second) })
		tk := f.tokens(t, servertest.Authz{Client: rotating, RedirectURI: servertest.WebRedirect})
		replies := storm(t, f.env, 10, form("grant_type", "refresh_token", "refresh_token", tk.RefreshToken), rotating)
		live := map[string]bool{}
		for _, r := range replies {
			rt := mustToken(t, r).RefreshToken
			if f.env.Introspect(t, rotating, rt).JSON["active"] == true {
				live[rt] = true
			}
		}
		if len(live) != 1 {
			t.Fatalf("%d live children, want 1", len(live))
		}
		inactive(t, f.env, rotating, tk.RefreshToken)
	})
}
