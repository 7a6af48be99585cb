package authorize

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/castellan-auth/castellan/internal/grant"
	"github.com/castellan-auth/castellan/internal/mint"
	"github.com/castellan-auth/castellan/internal/oauth"
	"github.com/castellan-auth/castellan/internal/oidc"
	"github.com/castellan-auth/castellan/internal/storage"
	"github.com/castellan-auth/castellan/internal/web"
)

// issue answers the request with a code or (implicit grant) tokens, for the
// session s of the user u that current read.
func (h *Handler) issue(w http.ResponseWriter, r *http.Request, f *flow, s storage.Session, u storage.User) {
	if err := h.consume(r, f); err != nil {
		h.showError(w, r, err)
		return
	}
	if err := h.completePushed(r.Context(), f); err != nil {
		// Another completion used the request_uri already: one code per push.
		h.showError(w, r, err)
		return
	}
	ctx := r.Context()
	req := f.req
	if !req.HasPrompt(PromptNone) || f.client.RenewalCountsAsActivity {
		// An interactive request is the person's activity at Castellan; a silent
		// renewal is not (an app left open must not keep the session alive),
		// unless the client opted out of that rule.
		if err := h.Sessions.Touch(ctx, s); err != nil {
			h.Log.Warn("touch session", "err", err)
		}
	}
	params := url.Values{}
	var err error
	if req.Implicit() {
		err = h.implicit(ctx, f, s, u, params)
	} else {
		var code string
		code, err = h.Grants.IssueCode(ctx, grant.CodeRequest{
			ClientID: f.client.ID, UserID: s.UserID, SID: s.SID, RedirectURI: redirectIfGiven(req),
			Scopes: req.Scopes, Nonce: req.Nonce, CodeChallenge: req.CodeChallenge,
			CodeChallengeMethod: req.CodeChallengeMethod, AuthTime: s.AuthTime, AMR: s.AMR,
			DPoPJKT: req.DPoPJKT,
		})
		params.Set("code", code)
	}
	if err != nil {
		h.fail(w, r, f, err)
		return
	}
	h.deliver(w, r, f, params)
}

func redirectIfGiven(req *Request) string {
	if req.RedirectGiven {
		return req.RedirectURI
	}
	return ""
}

// implicit mints the tokens of the legacy implicit grant (opt-in per client):
// never a refresh token; the access token names a session-bound grant so that
// sign-out revokes it.
func (h *Handler) implicit(ctx context.Context, f *flow, s storage.Session, u storage.User, params url.Values) error {
	req := f.req
	now := h.Clock.Now()
	var at string
	if req.Returns(oauth.ResponseToken) {
		g, err := h.Grants.IssueImplicit(ctx, storage.Grant{
			ClientID: f.client.ID, UserID: s.UserID, SID: s.SID, SessionBound: true,
			Scopes: req.Scopes, AuthTime: s.AuthTime, AMR: s.AMR,
		})
		if err != nil {
			return err
		}
		at, _, err = h.Mint.NewAccess(mint.AccessParams{
			ClientID: f.client.ID, Subject: s.UserID, Scopes: req.Scopes, GrantID: g.ID, SID: s.SID,
			AuthTime: s.AuthTime, AMR: s.AMR, IssuedAt: now, Expiry: g.ExpiresAt, Audience: f.client.Audience,
		})
		if err != nil {
			return err
		}
		params.Set("access_token", at)
		params.Set("token_type", "Bearer")
		params.Set("expires_in", strconv.FormatInt(int64(g.ExpiresAt.Sub(now).Seconds()), 10))
		params.Set("scope", oauth.JoinScope(req.Scopes))
	}
	if req.Returns(oauth.ResponseIDToken) {
		var claims mint.UserClaims
		if at == "" {
			// OIDC Core §5.4: with no access token (response_type=id_token) the
			// claims can only travel in the ID token.
			claims = oidc.UserClaims(u, req.Scopes)
		}
		alg := oidc.IDTokenAlgorithm(f.client, h.Algorithms)
		id, err := h.Mint.NewID(alg, mint.IDParams{
			ClientID: f.client.ID, Subject: s.UserID, SID: s.SID, Nonce: req.Nonce, AuthTime: s.AuthTime,
			AMR: s.AMR, ACR: oidc.ACR, IssuedAt: now, Expiry: now.Add(h.IDTokenTTL), AccessToken: at, User: claims,
		})
		if err != nil {
			return err
		}
		params.Set("id_token", id)
	}
	return nil
}

// fail answers with an error: on Castellan's own page unless the error is known
// to be safe to send to the client's validated redirect URI.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, f *flow, err error) {
	var full *storage.FullError
	if errors.As(err, &full) {
		// Nothing was wrong with the request: it can be sent again (a pushed
		// one too, so its request_uri is not used up).
		h.showFull(w, r, full)
		return
	}
	var oe *oauth.Error
	if !errors.As(err, &oe) {
		h.Log.Error("authorization endpoint", "request_id", web.RequestID(r.Context()), "err", err)
		oe = redirectError(oauth.ErrServerError, "internal error")
	}
	if f != nil {
		// An error answer completes the authorization too: the request_uri
		// is used up (best effort; a failure leaves it to expire).
		if err := h.completePushed(r.Context(), f); err != nil {
			h.Log.Debug("complete pushed request", "err", err)
		}
	}
	if !oe.Redirectable || f == nil || f.req.RedirectURI == "" {
		h.showError(w, r, oe)
		return
	}
	params := url.Values{"error": {oe.Code}}
	if oe.Description != "" {
		params.Set("error_description", oe.Description)
	}
	h.deliver(w, r, f, params)
}

// showError renders an error on Castellan's origin; it never redirects.
func (h *Handler) showError(w http.ResponseWriter, r *http.Request, err error) {
	var full *storage.FullError
	if errors.As(err, &full) {
		h.showFull(w, r, full)
		return
	}
	var hint string
	var ce *clientError
	if errors.As(err, &ce) {
		// The reason stays in the log: told on the page, it would let anyone
		// find out which client ids exist.
		h.Log.Info("authorization request refused", "request_id", web.RequestID(r.Context()),
			"client_id", ce.clientID, "redirect_uri", ce.redirectURI, "reason", ce.reason)
		err, hint = errClientOrRedirect, ce.hint
	}
	var oe *oauth.Error
	if !errors.As(err, &oe) {
		h.Log.Error("authorization endpoint", "request_id", web.RequestID(r.Context()), "err", err)
		h.Pages.Error(w, r, http.StatusInternalServerError, "Something went wrong", web.ErrorPage{Message: "Please try again in a moment."})
		return
	}
	msg := "The application sent an authorization request Castellan cannot accept: " + oe.Description + "."
	if hint != "" {
		msg += " " + hint
	}
	h.Pages.Error(w, r, http.StatusBadRequest, "The request cannot be processed", web.ErrorPage{Message: msg, Detail: oe.Code})
}

// deliver sends an authorization response (or error) to the redirect URI with
// state and iss (RFC 9207: the client can tell which server answered, against
// mix-up attacks), in the request's response mode.
func (h *Handler) deliver(w http.ResponseWriter, r *http.Request, f *flow, params url.Values) {
	req := f.req
	if req.State != "" {
		params.Set("state", req.State)
	}
	params.Set("iss", h.Issuer)
	web.NoStore(w)
	framers := frameAncestors(f)
	switch req.ResponseMode {
	case ModeFormPost:
		h.formPost(w, r, req.RedirectURI, params, framers)
		return
	case ModeWebMessage:
		h.webMessage(w, r, req.RedirectURI, params, framers)
		return
	}
	if len(framers) > 0 {
		// The redirect itself may load in the app's hidden iframe.
		w.Header().Del("X-Frame-Options")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; frame-ancestors "+strings.Join(framers, " ")+"; base-uri 'none'; form-action 'none'")
	}
	target := req.RedirectURI + "#" + params.Encode()
	if req.ResponseMode != ModeFragment {
		// RFC 6749 §3.1.2: a query the registered URI has is kept.
		sep := "?"
		if strings.Contains(req.RedirectURI, "?") {
			sep = "&"
		}
		target = req.RedirectURI + sep + params.Encode()
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// frameAncestors are the origins that may frame this authorization response:
// a silent request's answer (prompt=none, never a page to click on) may load in
// a hidden iframe of the client's own allowed_origins; nothing else of
// Castellan may be framed (clickjacking).
func frameAncestors(f *flow) []string {
	if len(f.req.Prompt) != 1 || f.req.Prompt[0] != PromptNone {
		// Not silent, or an invalid prompt=none combination.
		return nil
	}
	return f.client.AllowedOrigins
}

// webMessage renders the Web Message Response Mode page: a script posts the
// response to the window that framed or opened it, addressed to the exact
// origin of the registered redirect URI, so no other origin can receive it.
func (h *Handler) webMessage(w http.ResponseWriter, r *http.Request, redirectURI string, params url.Values, framers []string) {
	response := make(map[string]string, len(params))
	for k, v := range params {
		response[k] = v[0]
	}
	h.Pages.Render(w, r, http.StatusOK, "web_message", web.View{Title: "Returning to the application", Page: struct {
		Origin   string
		Response map[string]string
	}{origin(redirectURI), response}}, web.PageOptions{Script: true, FrameAncestors: framers})
}

type formField struct{ Name, Value string }

// formPost renders the Form Post Response Mode page: the response is POSTed to
// the redirect URI by a form that submits itself.
func (h *Handler) formPost(w http.ResponseWriter, r *http.Request, action string, params url.Values, framers []string) {
	fields := make([]formField, 0, len(params))
	for k, v := range params {
		fields = append(fields, formField{k, v[0]})
	}
	sort.Slice(fields, func(i, j int) bool { return fields[i].Name < fields[j].Name })
	h.Pages.Render(w, r, http.StatusOK, "form_post", web.View{Title: "Returning to the application", Page: struct {
		Action string
		Fields []formField
	}{action, fields}}, web.PageOptions{FormActions: []string{origin(action)}, Script: true, FrameAncestors: framers})
}
