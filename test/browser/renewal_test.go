package browser_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/browsertest"
	"github.com/castellan-auth/castellan/internal/demo"
)

// Each strategy of the demo signs in through the real sign-in page, renews at
// least twice without the password while calling the API, and stops once
// the session at Castellan ends: its next renewal fails and it shows signed
// out. The session-ended stream is off here, so that the failed renewal is
// what the app notices. After signing in again, the app's own sign-out button
// (RP-initiated logout) ends the session at Castellan too, and a renewal with
// the tokens it had is refused.
//
// Silent iframe renewals come back by web_message where the provider offers
// it, else through the app's callback page; the "iframe-callback-page" case
// uses the callback page regardless.
func TestStrategies(t *testing.T) {
	stacks := map[bool]*stack{
		false: newStack(t, stackOptions{noEvents: true}),
		true:  newStack(t, stackOptions{noEvents: true, silentCallbackPage: true}),
	}
	webMessage := stacks[false].offersWebMessage()
	for _, tc := range []struct {
		name, strategy string
		callbackPage   bool
		via            string // how renewals travel
		refused        string // the error of a renewal after sign-out
	}{
		{"implicit", demo.StrategyImplicit, false, silentVia(webMessage), "login_required"},
		{"iframe", demo.StrategyIframe, false, silentVia(webMessage), "login_required"},
		{"iframe-callback-page", demo.StrategyIframe, true, "redirect", "login_required"},
		{"refresh", demo.StrategyRefresh, false, "token_endpoint", "invalid_grant"},
	} {
		s := stacks[tc.callbackPage]
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := browsertest.New(t)
			a := s.app(b.Tab("app"))
			a.pick(tc.strategy)
			a.signIn()
			first := a.jti()

			a.waitRenewals(2)
			if got := a.jti(); got == first || got == "" {
				t.Errorf("after two renewals: access token jti %q, want a new one (first %q)", got, first)
			}
			if n := a.count("renewed"); a.countVia(tc.via) != n {
				t.Errorf("of %d renewals, %d went by %s, want all: %s", n, a.countVia(tc.via), tc.via, a.Text("#renewal-log"))
			}
			if u := a.Location(); !strings.HasPrefix(u, s.setup.SPA+"/") {
				t.Errorf("renewal left the app: at %s", u)
			}
			a.WaitFor("the API to answer with a renewed token", renewalWait, func() (bool, string) {
				n := a.apiOK()
				return n >= 3, fmt.Sprintf("%d successful API calls; status %q", n, a.Text("#api-status"))
			})

			// The person signs out at Castellan in another tab.
			s.signOutAtCastellan(b.Tab("castellan"))
			a.waitState("signed-out", renewalWait)
			// A silent renewal that got its code just before the sign-out
			// fails at the code exchange instead: the session the code was
			// bound to has ended (invalid_grant). Both are the session ending.
			if got := a.reason(); got != tc.refused && !(tc.via != "token_endpoint" && tc.strategy == demo.StrategyIframe && got == "invalid_grant") {
				t.Errorf("signed out with reason %q, want %q (log: %s)", got, tc.refused, a.Text("#renewal-log"))
			}
			if a.count("failed") == 0 {
				t.Errorf("no failed renewal in the log: %s", a.Text("#renewal-log"))
			}

			// Signing in again needs the password: the session is gone.
			a.signIn()
			saved := browsertest.Eval[string](a.Tab, `JSON.stringify(window.demo.renewal.tokens)`)
			a.Click("#sign-out")
			// The app shows signed out at once, then comes back from Castellan.
			a.WaitJS("the return from RP-initiated logout", browsertest.Timeout,
				`document.getElementById("reason").dataset.reason === "rp_logout"`)
			if u := a.Location(); !strings.HasPrefix(u, s.setup.SPA+"/") {
				t.Errorf("after RP-initiated logout: at %s, want back at the app", u)
			}
			got := browsertest.Eval[string](a.Tab, fmt.Sprintf(
				`window.demo.renewal.renewWith(%s).then(() => "renewed", (e) => e.code)`, saved))
			if got != tc.refused {
				t.Errorf("renewal with the tokens from before the sign-out button: got %q, want %q", got, tc.refused)
			}
		})
	}
}

func silentVia(webMessage bool) string {
	if webMessage {
		return "web_message"
	}
	return "redirect"
}

// Cross-site — the app on http://localhost, Castellan on http://127.0.0.1 —
// the browser does not send Castellan's SameSite=Lax session cookie to an
// iframe, so silent iframe renewal fails with login_required at its first
// attempt (as it does wherever third-party cookies are blocked), while the
// refresh token strategy, which needs no cookie, keeps renewing.
func TestCrossSite(t *testing.T) {
	s := newStack(t, stackOptions{crossSite: true})
	if !strings.HasPrefix(s.setup.SPA, "http://localhost:") || !strings.HasPrefix(s.env.URL, "http://127.0.0.1:") {
		t.Fatalf("app at %s, Castellan at %s: want different sites", s.setup.SPA, s.env.URL)
	}

	t.Run("iframe", func(t *testing.T) {
		a := s.app(browsertest.New(t).Tab("app"))
		a.pick(demo.StrategyIframe)
		a.signIn() // top-level navigation: the cookie goes along
		a.waitState("signed-out", renewalWait)
		if got := a.reason(); got != "login_required" {
			t.Errorf("signed out with reason %q, want login_required (log: %s)", got, a.Text("#renewal-log"))
		}
		if n := a.count("renewed"); n != 0 {
			t.Errorf("%d silent renewals succeeded cross-site, want 0", n)
		}
	})

	t.Run("refresh", func(t *testing.T) {
		a := s.app(browsertest.New(t).Tab("app"))
		a.pick(demo.StrategyRefresh)
		a.signIn()
		a.waitRenewals(2)
		if a.state() != "signed-in" {
			t.Errorf("app state %q, want signed-in", a.state())
		}
		if a.apiOK() == 0 {
			t.Errorf("no successful API call cross-site: %s", a.Text("#api-status"))
		}
	})
}

// A click in the app is the person's activity: the app tells Castellan,
// which extends the session's idle timer. When the session at Castellan ends,
// the session-ended stream tells the app at once: it shows signed out within a
// second, long before its token would need renewing.
func TestSessionEndedPush(t *testing.T) {
	// Tokens outlive the test: no renewal can notice the end before the push.
	s := newStack(t, stackOptions{accessTTL: 10 * time.Minute})
	b := browsertest.New(t)
	a := s.app(b.Tab("app"))
	a.pick(demo.StrategyRefresh)
	a.signIn()
	a.WaitText("#stream-state", "listening", browsertest.Timeout)

	a.Click("#log-heading")
	a.WaitText("#presence", "Castellan keeps your session until", browsertest.Timeout)

	s.signOutAtCastellan(b.Tab("castellan"))
	ended := time.Now()
	a.waitState("signed-out", time.Second)
	t.Logf("the app showed signed out %v after the session ended", time.Since(ended).Round(time.Millisecond))
	if got := a.reason(); got != "session_ended" {
		t.Errorf("signed out with reason %q, want session_ended", got)
	}
}

// Two tabs of the app share one sign-in: the second receives the tokens from
// the first, and at each renewal exactly one of them asks the token endpoint
// (a Web Lock lets one renew; the other receives the result over a
// BroadcastChannel). A second refresh with the same rotating refresh token
// would revoke the family: refresh_token_grace is 0 here. Signing out in one
// tab signs out the other.
func TestTwoTabsOneRefresh(t *testing.T) {
	s := newStack(t, stackOptions{})
	b := browsertest.New(t)
	one := s.app(b.Tab("one"))
	one.pick(demo.StrategyRefresh)
	one.signIn()
	two := s.app(b.Tab("two"))
	two.waitState("signed-in", browsertest.Timeout)
	var jti string
	one.WaitFor("both tabs to hold the same token", browsertest.Timeout, func() (bool, string) {
		a, b := one.jti(), two.jti()
		jti = a
		return a != "" && a == b, fmt.Sprintf("tab one %q, tab two %q", a, b)
	})
	for cycle := 1; cycle <= 2; cycle++ {
		var next string
		one.WaitFor(fmt.Sprintf("renewal %d in both tabs", cycle), renewalWait, func() (bool, string) {
			a, b := one.jti(), two.jti()
			next = a
			return a != jti && a == b, fmt.Sprintf("tab one %q, tab two %q (was %q)", a, b, jti)
		})
		jti = next
		// On a slow machine the next renewal may already be under way, so the
		// count is checked at the end; a second refresh with the same token
		// would have been refused, and that is checked here.
		for outcome, n := range s.tokenOutcomes("refresh_token") {
			if outcome != "issued" {
				t.Fatalf("after %d renewals: %d refresh requests refused with %s, want none", cycle, n, outcome)
			}
		}
	}
	// Every refresh at the token endpoint is one renewal logged in exactly
	// one tab. A third renewal may be under way by now on a slow machine, so
	// compare the two counts once they agree rather than against a constant.
	one.WaitFor("each refresh request logged as one renewal", renewalWait, func() (bool, string) {
		logged := one.count("renewed") + two.count("renewed")
		// All of the stack's refresh requests: a renewal may have come
		// before the loop started on a slow machine.
		sent := s.tokenRequests("refresh_token")
		return logged == sent && logged >= 2, fmt.Sprintf("tabs logged %d renewals, token endpoint saw %d refresh requests", logged, sent)
	})
	if one.state() != "signed-in" || two.state() != "signed-in" {
		t.Errorf("states %q and %q, want both signed-in", one.state(), two.state())
	}

	one.Click("#sign-out")
	two.waitState("signed-out", browsertest.Timeout)
	one.waitState("signed-out", browsertest.Timeout)
}
