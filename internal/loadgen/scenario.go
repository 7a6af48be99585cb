package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Scenario names.
const (
	ClientCredentials = "client_credentials"
	Refresh           = "refresh"
	Silent            = "silent"
	SignIn            = "signin"
	Introspect        = "introspect"
	Userinfo          = "userinfo"
	Mixed             = "mixed"
)

// Scenarios lists every scenario, in the order reports use.
var Scenarios = []string{ClientCredentials, Refresh, Silent, SignIn, Introspect, Userinfo, Mixed}

// DefaultMix is the blend of the mixed scenario, in parts: what a fleet of
// SPAs and APIs sends an authorization server during a working day — mostly
// resource servers checking tokens and apps renewing them, a few service
// tokens, and rare password sign-ins.
var DefaultMix = map[string]int{
	Introspect: 40, Refresh: 25, Userinfo: 15, ClientCredentials: 10, Silent: 9, SignIn: 1,
}

// kind is one operation a virtual client can perform.
type kind struct {
	name string
	// user: the virtual client needs a signed-in browser and tokens at setup.
	user bool
	do   func(ctx context.Context, vc *vclient) error
	// floor is the cryptography the server cannot avoid for one operation, in
	// µs of the baseline.
	floor func(b *Baseline) float64
}

// signatures is the floor of an operation that issues an access token and,
// with openid, an ID token.
func signatures(withID bool) func(b *Baseline) float64 {
	return func(b *Baseline) float64 {
		us := b.SignMicros[b.AccessAlg]
		if withID {
			us += b.SignMicros[b.IDAlg]
		}
		return us
	}
}

var kinds = map[string]*kind{
	ClientCredentials: {
		name: ClientCredentials,
		do: func(ctx context.Context, vc *vclient) error {
			_, err := vc.api.clientCredentials(ctx, &vc.creds.Service)
			return err
		},
		floor: signatures(false),
	},
	Refresh: {
		name: Refresh, user: true,
		do: func(ctx context.Context, vc *vclient) error {
			tok, err := vc.api.refresh(ctx, &vc.creds.SPA, vc.tokens.Refresh)
			if err != nil {
				// The family may be gone (or the rotation's answer lost): start a
				// new one on the SSO session so the next operation can go on.
				vc.recover(ctx)
				return err
			}
			vc.tokens = tok
			return nil
		},
		floor: signatures(true),
	},
	Silent: {
		name: Silent, user: true,
		do: func(ctx context.Context, vc *vclient) error {
			tok, err := vc.api.silent(ctx, &vc.creds.SPA, false)
			if err != nil {
				return err
			}
			// Keep the newest tokens for the other kinds of the mixed scenario
			// (the refresh family from setup goes on).
			vc.tokens.Access, vc.tokens.ID = tok.Access, tok.ID
			return nil
		},
		floor: signatures(true),
	},
	SignIn: {
		name: SignIn,
		do: func(ctx context.Context, vc *vclient) error {
			// A new browser every time: no cookies, so the full sign-in. The
			// virtual client's own browser (its SSO session) is left alone.
			jar, _ := cookiejar.New(nil)
			fresh := &browser{http: vc.flow.t.client(jar)}
			c := &client{t: vc.flow.t, rt: fresh, step: vc.flow.step}
			_, err := c.signIn(ctx, &vc.creds.SPA, vc.nextUser())
			return err
		},
		floor: func(b *Baseline) float64 { return b.Argon2Millis*1000 + signatures(true)(b) },
	},
	Introspect: {
		name: Introspect, user: true,
		do: func(ctx context.Context, vc *vclient) error {
			return vc.api.introspect(ctx, &vc.creds.Resource, vc.tokens.Access)
		},
		// The first time the server sees a token; it remembers tokens it
		// verified, so the same token again costs it a SHA-256 instead.
		floor: func(b *Baseline) float64 { return b.VerifyMicros[b.AccessAlg] },
	},
	Userinfo: {
		name: Userinfo, user: true,
		do: func(ctx context.Context, vc *vclient) error {
			return vc.api.userinfo(ctx, vc.tokens.Access)
		},
		floor: func(b *Baseline) float64 { return b.VerifyMicros[b.AccessAlg] },
	},
}

// plan is a scenario resolved to the kinds it runs and their weights.
type plan struct {
	name    string
	kinds   []*kind
	weights []int
	total   int
}

func newPlan(scenario string, mix map[string]int) (*plan, error) {
	if scenario != Mixed {
		k, ok := kinds[scenario]
		if !ok {
			return nil, fmt.Errorf("unknown scenario %q (want one of %s)", scenario, strings.Join(Scenarios, ", "))
		}
		return &plan{name: scenario, kinds: []*kind{k}, weights: []int{1}, total: 1}, nil
	}
	if len(mix) == 0 {
		mix = DefaultMix
	}
	p := &plan{name: Mixed}
	names := make([]string, 0, len(mix))
	for n := range mix {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		k, ok := kinds[n]
		if !ok {
			return nil, fmt.Errorf("mix: unknown scenario %q", n)
		}
		if mix[n] < 0 {
			return nil, fmt.Errorf("mix: negative weight for %s", n)
		}
		if mix[n] == 0 {
			continue
		}
		p.kinds = append(p.kinds, k)
		p.weights = append(p.weights, mix[n])
		p.total += mix[n]
	}
	if p.total == 0 {
		return nil, fmt.Errorf("mix: no scenario with a positive weight")
	}
	return p, nil
}

// ParseMix reads a blend written like "introspect=40,refresh=25,signin=1".
func ParseMix(s string) (map[string]int, error) {
	mix := map[string]int{}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, w, ok := strings.Cut(part, "=")
		n, err := strconv.Atoi(w)
		if !ok || err != nil || n < 0 {
			return nil, fmt.Errorf("mix: want name=weight, got %q", part)
		}
		if _, known := kinds[name]; !known {
			return nil, fmt.Errorf("mix: unknown scenario %q", name)
		}
		mix[name] = n
	}
	return mix, nil
}

// needsUser says whether any kind needs a signed-in virtual client.
func (p *plan) needsUser() bool {
	return slices.ContainsFunc(p.kinds, func(k *kind) bool { return k.user })
}

// check reports what the provider config lacks for this plan.
func (p *plan) check(cr *Credentials) error {
	var spa, svc, rs, users bool
	for _, k := range p.kinds {
		switch k.name {
		case ClientCredentials:
			svc = true
		case Introspect:
			rs, spa, users = true, true, true
		default:
			spa, users = true, true
		}
	}
	return cr.needs(spa, svc, rs, users)
}

// pick chooses the next operation's kind.
func (p *plan) pick(r *rand.Rand) *kind {
	if len(p.kinds) == 1 {
		return p.kinds[0]
	}
	n := r.IntN(p.total)
	for i, w := range p.weights {
		if n < w {
			return p.kinds[i]
		}
		n -= w
	}
	return p.kinds[len(p.kinds)-1]
}

// floor is the mean cryptographic floor of one operation of the plan, in µs.
func (p *plan) floor(b *Baseline) float64 {
	var us float64
	for i, k := range p.kinds {
		us += k.floor(b) * float64(p.weights[i]) / float64(p.total)
	}
	return us
}

// vclient is one virtual client: a browser (cookie jar) with its own SSO
// session and refresh-token family, its connection, and the tokens it holds.
// Exactly one worker goroutine uses it at a time.
type vclient struct {
	id    int
	creds *Credentials
	user  User
	// browser keeps the cookies; flow signs in through it; api sends the
	// measured exchanges (over the lean wire client unless net/http is asked
	// for), with the browser's cookies copied where a request needs them.
	browser *browser
	flow    *client
	api     *client
	tokens  Tokens
	rnd     *rand.Rand
	signins int
}

func newVClient(t *Target, id int, creds *Credentials, netHTTP bool) *vclient {
	b := newBrowser(t, true)
	vc := &vclient{id: id, creds: creds, browser: b, flow: &client{t: t, rt: b}, api: &client{t: t, rt: b},
		rnd: rand.New(rand.NewPCG(uint64(id), uint64(time.Now().UnixNano())))}
	if !netHTTP {
		if w, err := newWire(t.Issuer, t.timeout); err == nil {
			vc.api.rt = w
		}
	}
	if len(creds.Users) > 0 {
		vc.user = creds.Users[id%len(creds.Users)]
	}
	return vc
}

// setStep routes the timing of every exchange to f (nil: not timed).
func (vc *vclient) setStep(f func(string, time.Duration)) { vc.flow.step, vc.api.step = f, f }

func (vc *vclient) close() { vc.api.rt.close() }

func (vc *vclient) nextUser() User {
	vc.signins++
	return vc.creds.Users[(vc.id+vc.signins)%len(vc.creds.Users)]
}

// adopt takes tokens from a new sign-in or renewal, and the SSO session cookie
// for the api client when it keeps no cookies itself.
func (vc *vclient) adopt(tok Tokens) {
	vc.tokens = tok
	if vc.api.rt != roundTripper(vc.browser) {
		vc.api.cookie = vc.browser.cookieHeader(vc.api.t.Authorization)
	}
}

// setUp signs the virtual client in (a real sign-in and code flow), leaving it
// with an SSO session cookie and tokens of its own refresh-token family.
func (vc *vclient) setUp(ctx context.Context) error {
	tok, err := vc.flow.signIn(ctx, &vc.creds.SPA, vc.user)
	// The hashing pool answers 503 when its queue is full for longer than
	// passwords.queue_timeout (a busy machine, or many virtual clients signing
	// in at once): setup is not measured, so try again as a browser would.
	for try := 0; try < setupRetries && isBusy(err); try++ {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
		tok, err = vc.flow.signIn(ctx, &vc.creds.SPA, vc.user)
	}
	if err != nil {
		return fmt.Errorf("virtual client %d: sign-in as %s: %w", vc.id, vc.user.Username, err)
	}
	if tok.Refresh == "" {
		return fmt.Errorf("virtual client %d: the code exchange gave no refresh token (does %s allow refresh_token and offline_access?)", vc.id, vc.creds.SPA.ID)
	}
	vc.adopt(tok)
	return nil
}

// recover starts a new refresh-token family after a failed refresh: silently on
// the SSO session if it lives, else by signing in again. Its exchanges are not
// part of the measured operation's steps.
func (vc *vclient) recover(ctx context.Context) {
	step := vc.flow.step
	vc.flow.step = nil
	defer func() { vc.flow.step = step }()
	if tok, err := vc.flow.silent(ctx, &vc.creds.SPA, true); err == nil && tok.Refresh != "" {
		vc.adopt(tok)
		return
	}
	if tok, err := vc.flow.signIn(ctx, &vc.creds.SPA, vc.user); err == nil && tok.Refresh != "" {
		vc.adopt(tok)
	}
}

// setupRetries bounds the sign-ins a virtual client's setup retries after 503.
const setupRetries = 10

// isBusy says whether err is the server's 503 (hashing pool saturated).
func isBusy(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Status == http.StatusServiceUnavailable
}
