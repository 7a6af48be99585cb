// Package authorize serves the authorization endpoint (RFC 6749 §3.1, OIDC Core
// §3.1.2) and the consent page. It validates a request in the safe order (the
// client and redirect URI first, shown on Castellan's own error page when
// wrong; everything else returned to the redirect URI), then applies the
// session rule: no live session → the sign-in page; session and consent known
// → an answer at once, with no page, which is the silent path single-page apps
// renew on. A request that needs a page is kept server-side as a pending
// request, bound to the browser, short-lived and consumed once.
package authorize
