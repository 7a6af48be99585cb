// bff.js is the demo app's session when a Backend-for-Frontend (BFF) keeps
// the tokens: the page is served by the BFF on the BFF's own origin, holds no
// token at all, and talks only to its own origin. The BFF runs the code flow
// as a confidential client, keeps the access and refresh tokens on its
// server, gives this page an HttpOnly session cookie (invisible to
// document.cookie) and attaches the access token to the API calls it passes
// on, refreshing it behind the scenes.
//
// The BFF's endpoints (Duende BFF's conventions, see DESIGN.md):
//
//	GET  /bff/login?returnUrl=/   sign in (a navigation, not a fetch)
//	GET  /bff/user                who is signed in, or 401
//	POST /bff/logout              ends the BFF session, answers {logoutUrl}
//	     /api/...                 the API, through the BFF
//
// Every fetch carries X-CSRF: 1. A cross-site page cannot send that header
// without a CORS preflight, which the BFF does not allow, so the header
// proves the call comes from a page of this origin.

const CSRF = { "X-CSRF": "1" };
const SIGNING_IN = "castellan-demo:bff-signing-in";
const SIGNING_OUT = "castellan-demo:bff-signing-out";

/** bffFetch calls the BFF on this origin with its session cookie and X-CSRF. */
export function bffFetch(path, init = {}) {
  return fetch(path, {
    ...init,
    headers: { ...CSRF, ...(init.headers || {}) },
    credentials: "same-origin",
    cache: "no-store",
    redirect: "error",
  });
}

/**
 * probeBff reports whether a BFF serves this origin: its /bff/user answers
 * 401, or 200 with JSON, where a plain static server answers 404 or the
 * app's index page.
 */
export async function probeBff() {
  try {
    const res = await bffFetch("/bff/user");
    if (res.status !== 200 && res.status !== 401) return false;
    const type = res.headers.get("Content-Type") || "";
    return res.status === 401 || type.includes("json");
  } catch {
    return false;
  }
}

/**
 * userFromBff reads the answer of GET /bff/user: Castellan's gateway answers
 * {claims, expires_at, expires_in, absolute_expires_at}; Duende BFF, whose
 * conventions it follows, a list of {type, value} claims.
 */
export function userFromBff(body) {
  if (Array.isArray(body)) {
    const claims = {};
    let sessionExpiresAt = null;
    for (const c of body) {
      if (!c || typeof c.type !== "string") continue;
      if (c.type === "bff:session_expires_in") sessionExpiresAt = Date.now() + Number(c.value) * 1000;
      else if (c.type.startsWith("bff:")) continue;
      else if (c.type in claims) claims[c.type] = [].concat(claims[c.type], c.value);
      else claims[c.type] = c.value;
    }
    return { claims, sessionExpiresAt };
  }
  const claims = body?.claims && typeof body.claims === "object" ? { ...body.claims } : {};
  const at = Date.parse(body?.expires_at);
  return { claims, sessionExpiresAt: Number.isNaN(at) ? null : at };
}

/**
 * bffSession is the app's session over the BFF: the same functions as the
 * token strategies' session (start, stop, signIn, signOut, renewNow), plus
 * fetchApi for the API and the token's expiry as the API last reported it.
 * ui receives what happens: signedIn(user, how), signedOut(reason),
 * renewed(expiry), log(kind, text, via).
 */
export function bffSession(config, strategy, ui) {
  let user = null;
  let expiry = null; // {expiresAt, receivedAt} of the access token the API last saw
  let stopped = false;

  async function readUser() {
    const res = await bffFetch("/bff/user");
    if (res.status === 401) return null;
    if (!res.ok) throw new Error(`/bff/user: HTTP ${res.status}`);
    return userFromBff(await res.json());
  }

  function ended(reason) {
    if (!user) return;
    user = null;
    expiry = null;
    ui.signedOut(reason);
  }

  return {
    async start() {
      const signingIn = sessionStorage.getItem(SIGNING_IN) === strategy.id;
      const signingOut = sessionStorage.getItem(SIGNING_OUT) === strategy.id;
      sessionStorage.removeItem(SIGNING_IN);
      sessionStorage.removeItem(SIGNING_OUT);
      user = await readUser();
      if (stopped) return;
      if (user) ui.signedIn(user, signingIn ? "signin" : "restored");
      else ui.signedOut(signingOut ? "rp_logout" : null);
    },
    stop() {
      stopped = true;
    },
    async signIn() {
      sessionStorage.setItem(SIGNING_IN, strategy.id);
      // A top-level navigation: the BFF redirects to Castellan's sign-in
      // page and, from its callback, back to returnUrl (a local path only).
      location.assign("/bff/login?returnUrl=" + encodeURIComponent("/"));
    },
    async signOut() {
      const res = await bffFetch("/bff/logout", { method: "POST" });
      if (res.status === 401) {
        ended("bff_session_ended");
        return;
      }
      if (!res.ok) throw new Error(`/bff/logout: HTTP ${res.status}`);
      const { logoutUrl } = await res.json();
      user = null;
      expiry = null;
      if (!logoutUrl) {
        ui.signedOut("signed_out");
        return;
      }
      // The BFF session has ended; Castellan's ends at its end-session
      // endpoint, which comes back to this app's start page.
      sessionStorage.setItem(SIGNING_OUT, strategy.id);
      ui.signedOut("signed_out");
      location.assign(logoutUrl);
    },
    // The BFF renews by itself; there is nothing to renew from the page.
    renewNow: async () => {},
    /** fetchApi calls the API through the BFF, which adds the token. */
    async fetchApi(path) {
      const res = await bffFetch(path);
      if (res.status === 401 && user) {
        // The BFF refused: its session ended (sign-out elsewhere, back-channel
        // logout, a refresh that failed). /bff/user says for sure.
        const still = await readUser().catch(() => user);
        if (!still) ended("bff_session_ended");
      }
      return res;
    },
    /** sawToken records the expiry of the token the API just accepted. */
    sawToken(expiresAt) {
      if (!expiresAt || !user) return;
      if (expiry && expiry.expiresAt === expiresAt) return;
      const first = !expiry;
      expiry = { expiresAt, receivedAt: Date.now() };
      if (!first) ui.renewed(expiry);
    },
    get active() { return !!user; },
    get user() { return user; },
    get expiry() { return expiry; },
    get tokens() { return null; },
  };
}
