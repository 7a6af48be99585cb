// Package browser holds Castellan's end-to-end tests in a real browser:
// headless Chromium, driven from Go with chromedp (internal/browsertest),
// against a real provider (servertest), the demo single-page app and the demo
// API, each on its own loopback origin as `castellan dev` runs them.
//
// They show that each renewal strategy of the demo renews without the
// password, keeps calling the API and stops at sign-out; that the iframe
// strategies fail cross-site while refresh tokens keep working; that the
// session-ended push signs the app out at once; and that two tabs renew with
// one token request between them. In its fourth mode the app runs behind the
// Backend-for-Frontend gateway (internal/bff), and bff_test.go shows that
// the BFF refreshes behind the scenes and that no token reaches the page:
// every response the browser gets from the BFF's origin is read through the
// DevTools Network domain and searched for one.
//
// They need Chromium: set CASTELLAN_TEST_CHROMIUM (e.g. /usr/bin/chromium).
// Without it they skip, except under CI=true, where they fail.
package browser
