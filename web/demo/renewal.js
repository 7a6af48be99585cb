// renewal.js keeps a single-page app's access token fresh, in every open tab,
// for as long as the person's session at the OpenID provider lives, and not a
// moment longer. Copy it into your app: it is one ES module with no
// dependencies, written against Castellan but using only standard OAuth 2.1 /
// OpenID Connect plus two small Castellan endpoints found through discovery.
//
//   const renewal = new Renewal({ issuer, clientId, scope, method: "refresh",
//     redirectUri: location.origin + "/callback.html" });
//   renewal.addEventListener("tokens", (e) => use(e.detail.tokens.accessToken));
//   renewal.addEventListener("signedout", (e) => showSignedOut(e.detail.reason));
//   await renewal.start();
//
// What it does:
//   - Renews the access token before it expires, with one of two methods:
//     "refresh" (authorization code + PKCE, then rotating refresh tokens at the
//     token endpoint) or "iframe" (prompt=none in a hidden iframe, answered by
//     response_mode=web_message when the provider offers it, else by a tiny
//     callback page; code + PKCE, or the legacy implicit grant).
//   - Coordinates the app's open tabs: a renewal runs under a Web Lock, so one
//     tab renews at a time; the result goes to the other tabs over a
//     BroadcastChannel, and a tab that finds a fresh result waiting does not
//     renew again. (Two tabs refreshing with the same rotating refresh token
//     would otherwise look like token theft and revoke the whole family.)
//   - Tells the provider when the person really uses the app (clicks, keys,
//     scrolling), at most once per activityInterval, so that an app in use
//     keeps the sign-in session alive and an app left open over lunch does not:
//     silent renewals alone do not extend the session's idle timer.
//   - Listens to the provider's session-ended stream (Server-Sent Events read
//     with a streaming fetch, since EventSource cannot send an Authorization
//     header; one tab listens for all) and signs out at once when it fires.
//   - Treats login_required, interaction_required, consent_required and
//     invalid_grant as "the session is over": every tab shows signed out.
//
// Tokens live in memory, mirrored to sessionStorage (per tab) when you pass
// `storage: sessionStorage` so that a reload keeps them. Anything that runs
// script in your origin can read them either way: see docs/spa-renewal.md for
// the trade-offs and for the Backend-for-Frontend alternative.

/** Error codes that mean the sign-in session is over. */
const SIGNED_OUT = new Set([
  "login_required", "interaction_required", "consent_required",
  "account_selection_required", "invalid_grant", "session_ended", "signed_out",
]);

/** RenewalError is an OAuth error (RFC 6749 §5.2 codes) or a local failure. */
export class RenewalError extends Error {
  constructor(code, description = "") {
    super(description ? `${code}: ${description}` : code);
    this.name = "RenewalError";
    this.code = code;
    this.description = description;
  }

  /** signedOut reports whether the error means the session has ended. */
  get signedOut() { return SIGNED_OUT.has(this.code); }
}

// ---------------------------------------------------------------------------
// Protocol helpers

/** discover fetches the provider's metadata (OpenID Connect Discovery 1.0). */
export async function discover(issuer) {
  const res = await fetch(issuer.replace(/\/$/, "") + "/.well-known/openid-configuration", { credentials: "omit" });
  if (!res.ok) throw new RenewalError("discovery_failed", `HTTP ${res.status}`);
  const meta = await res.json();
  // §4.3: the issuer in the document must be exactly the one we asked.
  if (meta.issuer !== issuer) throw new RenewalError("discovery_failed", `issuer ${meta.issuer} is not ${issuer}`);
  return meta;
}

function b64url(bytes) {
  let s = "";
  for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function unb64url(s) {
  const bin = atob(s.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(s.length / 4) * 4, "="));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

/** randomString returns n random bytes, base64url-encoded. */
export function randomString(n = 32) {
  return b64url(crypto.getRandomValues(new Uint8Array(n)));
}

async function sha256(text) {
  return crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
}

/** decodeJwt returns the claims of a JWT without checking it (for display). */
export function decodeJwt(jwt) {
  const parts = String(jwt || "").split(".");
  if (parts.length !== 3) return null;
  try {
    return JSON.parse(new TextDecoder().decode(unb64url(parts[1])));
  } catch {
    return null;
  }
}

/** tokenSet normalizes a token response (or implicit fragment) with local times. */
function tokenSet(p, previous) {
  const now = Date.now();
  let lifetime = Number(p.expires_in);
  if (!(lifetime > 0)) {
    const exp = decodeJwt(p.access_token)?.exp;
    lifetime = exp ? Math.max(1, exp - now / 1000) : 300;
  }
  return {
    accessToken: p.access_token,
    tokenType: p.token_type || "Bearer",
    // Refresh responses may omit what did not change (RFC 6749 §6).
    idToken: p.id_token || previous?.idToken,
    refreshToken: p.refresh_token || previous?.refreshToken,
    scope: p.scope || previous?.scope,
    receivedAt: now,
    expiresAt: now + lifetime * 1000,
  };
}

async function postForm(url, form) {
  let res;
  try {
    res = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(form),
      credentials: "omit",
      cache: "no-store",
    });
  } catch (e) {
    throw new RenewalError("network_error", e.message);
  }
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new RenewalError(body.error || "server_error", body.error_description || `HTTP ${res.status}`);
  return body;
}

// The provider's keys, for ID tokens that arrive through the front channel
// (implicit grant), whose signature OIDC Core §3.2.2.11 requires checking.
const jwksCache = new Map();

async function verifyJwt(meta, jwt) {
  const [h, p, s] = jwt.split(".");
  const header = JSON.parse(new TextDecoder().decode(unb64url(h)));
  const algs = {
    ES256: [{ name: "ECDSA", namedCurve: "P-256" }, { name: "ECDSA", hash: "SHA-256" }],
    RS256: [{ name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, { name: "RSASSA-PKCS1-v1_5" }],
  };
  const alg = algs[header.alg];
  if (!alg) throw new RenewalError("invalid_id_token", `unsupported alg ${header.alg}`);
  const find = async (reload) => {
    if (reload || !jwksCache.has(meta.jwks_uri)) {
      const res = await fetch(meta.jwks_uri, { credentials: "omit" });
      jwksCache.set(meta.jwks_uri, (await res.json()).keys || []);
    }
    return jwksCache.get(meta.jwks_uri).find((k) => k.kid === header.kid);
  };
  const jwk = (await find(false)) || (await find(true)); // unknown kid: keys rotated
  if (!jwk) throw new RenewalError("invalid_id_token", "unknown signing key");
  const key = await crypto.subtle.importKey("jwk", jwk, alg[0], false, ["verify"]);
  const ok = await crypto.subtle.verify(alg[1], key, unb64url(s), new TextEncoder().encode(`${h}.${p}`));
  if (!ok) throw new RenewalError("invalid_id_token", "bad signature");
  return header;
}

/** checkIdToken validates an ID token's claims (OIDC Core §3.1.3.7, §3.2.2.9). */
async function checkIdToken(meta, tokens, tx, { signature }) {
  const c = decodeJwt(tokens.idToken);
  if (!c) throw new RenewalError("invalid_id_token", "not a JWT");
  const aud = [].concat(c.aud);
  if (c.iss !== meta.issuer || !aud.includes(tx.clientId)) throw new RenewalError("invalid_id_token", "wrong issuer or audience");
  if (tx.nonce && c.nonce !== tx.nonce) throw new RenewalError("invalid_id_token", "nonce mismatch");
  if (c.exp * 1000 < Date.now() - 60_000) throw new RenewalError("invalid_id_token", "expired");
  if (signature) {
    const header = await verifyJwt(meta, tokens.idToken);
    if (tokens.accessToken && c.at_hash) {
      // at_hash: the left half of the access token's SHA-256, base64url (ES256, RS256).
      const digest = new Uint8Array(await sha256(tokens.accessToken));
      if (b64url(digest.slice(0, digest.length / 2)) !== c.at_hash) throw new RenewalError("invalid_id_token", "at_hash mismatch");
    } else if (tokens.accessToken && header) {
      throw new RenewalError("invalid_id_token", "at_hash missing");
    }
  }
}

// ---------------------------------------------------------------------------
// Renewal

const defaults = {
  method: "refresh", // or "iframe"
  responseType: "code", // or "id_token token" (legacy implicit, iframe only)
  scope: "openid",
  renewAt: 0.75, // renew when this share of the token's lifetime has passed
  retryDelay: 5_000, // after a failure that is not "signed out"
  iframeTimeout: 10_000,
  activityInterval: 60_000, // activity signal at most this often (0: never)
  sessionEvents: true, // listen to the provider's session-ended stream
  webMessage: "auto", // iframe answers by web_message when offered (true, false)
  storage: null, // e.g. sessionStorage, to keep tokens across reloads
  peerWait: 150, // ms to wait for other tabs' answers
};

const ACTIVITY_EVENTS = ["pointerdown", "keydown", "wheel", "touchstart"];

/**
 * Renewal keeps one client's tokens fresh. Events (CustomEvent, in .detail):
 *   tokens    {tokens, source}  new tokens: signin, renewed, peer, restored
 *   renewal   {ok, method, via, reason, error?, ms, at}  a renewal this tab ran
 *             (via: token_endpoint, web_message or redirect)
 *   signedout {reason}          the session is over (or the person signed out)
 *   activity  {idleExpiresAt, expiresAt}  the provider extended the session
 *   session   {state}           session-ended stream: open, closed
 */
export class Renewal extends EventTarget {
  constructor(options) {
    super();
    this.o = { ...defaults, ...options };
    for (const k of ["issuer", "clientId", "redirectUri"]) {
      if (!this.o[k]) throw new Error(`Renewal: option ${k} is required`);
    }
    if (this.o.method === "iframe" && !this.o.silentRedirectUri) {
      throw new Error("Renewal: option silentRedirectUri is required for the iframe method");
    }
    this.name = `castellan-renewal|${this.o.issuer}|${this.o.clientId}`;
    this.tokens = null;
    this.lastActivity = 0;
    this.timer = 0;
    this.renewing = null;
    this.onInteraction = () => this.#interaction();
    // Browsers slow down timers in hidden tabs: catch up when the tab is seen
    // again or the network is back.
    this.onWake = () => {
      if (document.visibilityState === "visible" && this.tokens && this.#due(this.tokens)) {
        this.renew("woke up").catch(() => {});
      }
    };
  }

  // -- lifecycle -------------------------------------------------------------

  /** start discovers the provider, joins the other tabs and restores tokens. */
  async start() {
    this.meta ||= await discover(this.o.issuer);
    this.stopped = false;
    if (typeof BroadcastChannel === "function") {
      this.channel = new BroadcastChannel(this.name);
      this.channel.onmessage = (e) => this.#message(e.data);
    }
    for (const t of ACTIVITY_EVENTS) addEventListener(t, this.onInteraction, { capture: true, passive: true });
    document.addEventListener("visibilitychange", this.onWake);
    addEventListener("online", this.onWake);
    const saved = this.#load();
    const peer = await this.#askPeers(saved);
    const best = newest(saved, peer);
    if (best && best.expiresAt > Date.now()) this.#adopt(best, best === peer ? "peer" : "restored");
    else if (saved) this.#save(null);
    return this.tokens;
  }

  /** stop ends timers, listeners and the session stream of this tab. */
  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.watch?.abort();
    this.channel?.close();
    this.channel = null;
    for (const t of ACTIVITY_EVENTS) removeEventListener(t, this.onInteraction, { capture: true });
    document.removeEventListener("visibilitychange", this.onWake);
    removeEventListener("online", this.onWake);
  }

  // -- sign-in and sign-out --------------------------------------------------

  /**
   * signIn sends the browser to the provider's sign-in page. Call
   * completeSignIn on the page at redirectUri.
   */
  async signIn({ prompt, loginHint, returnTo = location.pathname } = {}) {
    this.meta ||= await discover(this.o.issuer);
    const { url, tx } = await this.#authorizationRequest({ redirectUri: this.o.redirectUri, prompt, loginHint });
    tx.returnTo = returnTo;
    sessionStorage.setItem(this.name + "|tx", JSON.stringify(tx));
    location.assign(url);
  }

  /**
   * completeSignIn handles the authorization response at redirectUri (query
   * or fragment), shares the tokens with the other tabs and returns
   * {tokens, returnTo}.
   */
  async completeSignIn(url = location.href) {
    this.meta ||= await discover(this.o.issuer);
    const raw = sessionStorage.getItem(this.name + "|tx");
    sessionStorage.removeItem(this.name + "|tx");
    if (!raw) throw new RenewalError("invalid_state", "no sign-in in progress in this tab");
    const tx = JSON.parse(raw);
    const u = new URL(url);
    const params = Object.fromEntries(new URLSearchParams(u.hash.length > 1 ? u.hash.slice(1) : u.search));
    const tokens = await this.#authorizationResponse(tx, params);
    this.#adopt(tokens, "signin");
    this.#post({ type: "tokens", tokens });
    return { tokens, returnTo: tx.returnTo || "/" };
  }

  /**
   * signOut ends the session at the provider too (OpenID Connect RP-Initiated
   * Logout 1.0): every tab signs out, then the browser goes to the provider's
   * end-session endpoint and comes back to postLogoutRedirectUri.
   */
  async signOut({ postLogoutRedirectUri, state = randomString(16) } = {}) {
    this.meta ||= await discover(this.o.issuer);
    const t = this.tokens;
    this.#signedOut("signed_out", true);
    if (t?.refreshToken && this.meta.revocation_endpoint) {
      // RFC 7009; ending the session revokes it as well, so a failure is fine.
      await postForm(this.meta.revocation_endpoint, {
        token: t.refreshToken, token_type_hint: "refresh_token", client_id: this.o.clientId,
      }).catch(() => {});
    }
    const p = new URLSearchParams({ client_id: this.o.clientId });
    if (t?.idToken) p.set("id_token_hint", t.idToken);
    if (postLogoutRedirectUri) {
      p.set("post_logout_redirect_uri", postLogoutRedirectUri);
      p.set("state", state);
      sessionStorage.setItem(this.name + "|logout", state);
    }
    location.assign(`${this.meta.end_session_endpoint}?${p}`);
  }

  /** signedOutReturn reports whether this page is the return from signOut. */
  signedOutReturn(url = location.href) {
    const state = new URL(url).searchParams.get("state");
    const want = sessionStorage.getItem(this.name + "|logout");
    if (!state || state !== want) return false;
    sessionStorage.removeItem(this.name + "|logout");
    return true;
  }

  // -- renewal ---------------------------------------------------------------

  /**
   * renew gets new tokens now, unless another tab just did (then its result is
   * used). reason is for the log; force skips the freshness check.
   */
  renew(reason = "manual", { force = false } = {}) {
    this.renewing ||= this.#locked(() => this.#renewOnce(reason, force)).finally(() => { this.renewing = null; });
    return this.renewing;
  }

  /**
   * renewWith runs one renewal with the given tokens, outside the tab
   * coordination, and returns the new tokens or throws. It changes nothing
   * here: tests use it to show what the provider answers to a stale state.
   */
  async renewWith(tokens) {
    this.meta ||= await discover(this.o.issuer);
    return this.o.method === "refresh" ? this.#refresh(tokens) : this.#silent();
  }

  #due(t) {
    return !t || Date.now() >= t.receivedAt + this.o.renewAt * (t.expiresAt - t.receivedAt);
  }

  async #renewOnce(reason, force) {
    if (!this.tokens) throw new RenewalError("signed_out", "not signed in");
    if (!force) {
      // While this tab waited for the lock, another may have renewed: its
      // result came over the channel, or comes when asked.
      if (!this.#due(this.tokens)) return this.tokens;
      const peer = await this.#askPeers(this.tokens);
      if (peer && peer.expiresAt > this.tokens.expiresAt) {
        this.#adopt(peer, "peer");
        if (!this.#due(peer)) return peer;
      }
    }
    const started = performance.now();
    const entry = { method: this.o.method, via: this.#via(), reason, at: Date.now() };
    try {
      const tokens = this.o.method === "refresh" ? await this.#refresh(this.tokens) : await this.#silent();
      this.#adopt(tokens, "renewed");
      this.#post({ type: "tokens", tokens });
      this.#emit("renewal", { ...entry, ok: true, ms: Math.round(performance.now() - started) });
      return tokens;
    } catch (e) {
      const err = e instanceof RenewalError ? e : new RenewalError("renewal_failed", e.message);
      this.#emit("renewal", { ...entry, ok: false, error: err.code, description: err.description, ms: Math.round(performance.now() - started) });
      if (err.signedOut) this.#signedOut(err.code, true);
      else this.#schedule(this.o.retryDelay);
      throw err;
    }
  }

  async #refresh(tokens) {
    if (!tokens?.refreshToken) throw new RenewalError("invalid_grant", "no refresh token");
    const body = await postForm(this.meta.token_endpoint, {
      grant_type: "refresh_token", refresh_token: tokens.refreshToken, client_id: this.o.clientId,
    });
    return tokenSet(body, tokens);
  }

  /** #via tells how a renewal travels: token endpoint, web_message or a redirect. */
  #via() {
    if (this.o.method === "refresh") return "token_endpoint";
    const offered = (this.meta?.response_modes_supported || []).includes("web_message");
    return this.o.webMessage === true || (this.o.webMessage === "auto" && offered) ? "web_message" : "redirect";
  }

  /** #silent asks the provider again with prompt=none in a hidden iframe. */
  async #silent() {
    const { url, tx } = await this.#authorizationRequest({
      redirectUri: this.o.silentRedirectUri, prompt: "none",
      responseMode: this.#via() === "web_message" ? "web_message" : undefined,
    });
    const issuerOrigin = new URL(this.meta.authorization_endpoint).origin;
    const frame = document.createElement("iframe");
    frame.hidden = true;
    frame.title = "silent token renewal";
    frame.setAttribute("aria-hidden", "true");
    let onMessage, timer;
    try {
      const params = await new Promise((resolve, reject) => {
        onMessage = (e) => {
          // web_message answers from the provider's origin; the callback page
          // from ours. Either way it must be our iframe and our request.
          if (e.source !== frame.contentWindow) return;
          if (e.origin !== issuerOrigin && e.origin !== location.origin) return;
          const d = e.data;
          if (!d || d.type !== "authorization_response" || !d.response || d.response.state !== tx.state) return;
          resolve(d.response);
        };
        addEventListener("message", onMessage);
        timer = setTimeout(() => reject(new RenewalError("timeout", "the provider did not answer the silent request")), this.o.iframeTimeout);
        frame.src = url;
        document.body.append(frame);
      });
      return await this.#authorizationResponse(tx, params);
    } finally {
      clearTimeout(timer);
      removeEventListener("message", onMessage);
      frame.remove();
    }
  }

  async #authorizationRequest({ redirectUri, prompt, responseMode, loginHint }) {
    const tx = {
      state: randomString(), nonce: randomString(), redirectUri,
      responseType: this.o.responseType, clientId: this.o.clientId,
    };
    const p = new URLSearchParams({
      client_id: this.o.clientId, redirect_uri: redirectUri, response_type: this.o.responseType,
      scope: this.o.scope, state: tx.state, nonce: tx.nonce,
    });
    if (this.o.responseType === "code") {
      tx.verifier = randomString(48);
      p.set("code_challenge", b64url(await sha256(tx.verifier)));
      p.set("code_challenge_method", "S256");
    }
    if (responseMode) p.set("response_mode", responseMode);
    if (prompt) p.set("prompt", prompt);
    if (loginHint) p.set("login_hint", loginHint);
    return { url: `${this.meta.authorization_endpoint}?${p}`, tx };
  }

  async #authorizationResponse(tx, params) {
    if (params.state !== tx.state) throw new RenewalError("invalid_state", "state does not match");
    // RFC 9207: the response names the provider that sent it (mix-up defense).
    if (params.iss !== undefined ? params.iss !== this.meta.issuer : this.meta.authorization_response_iss_parameter_supported) {
      throw new RenewalError("invalid_issuer", "the response comes from another issuer");
    }
    if (params.error) throw new RenewalError(params.error, params.error_description);
    if (tx.responseType === "code") {
      if (!params.code) throw new RenewalError("invalid_response", "no code");
      const body = await postForm(this.meta.token_endpoint, {
        grant_type: "authorization_code", code: params.code, redirect_uri: tx.redirectUri,
        client_id: tx.clientId, code_verifier: tx.verifier,
      });
      const tokens = tokenSet(body);
      if (tokens.idToken) await checkIdToken(this.meta, tokens, tx, { signature: false });
      return tokens;
    }
    if (!params.access_token) throw new RenewalError("invalid_response", "no access token");
    const tokens = tokenSet(params);
    if (tx.responseType.includes("id_token")) await checkIdToken(this.meta, tokens, tx, { signature: true });
    return tokens;
  }

  // -- tabs ------------------------------------------------------------------

  /** #locked runs fn while holding this client's renewal lock (Web Locks API). */
  #locked(fn) {
    if (!navigator.locks) return fn(); // not a secure context: no coordination
    return navigator.locks.request(this.name + "|renew", fn);
  }

  #post(msg) {
    try {
      this.channel?.postMessage(msg);
    } catch { /* closed */ }
  }

  /** #askPeers asks the other tabs for their tokens; resolves with the newest. */
  #askPeers(mine) {
    if (!this.channel) return Promise.resolve(null);
    const id = randomString(8);
    return new Promise((resolve) => {
      let best = null;
      const done = () => { this.pending?.delete(id); resolve(best); };
      const timer = setTimeout(done, this.o.peerWait);
      (this.pending ||= new Map()).set(id, (t) => {
        best = newest(best, t);
        // A fresher answer than ours cannot be beaten by much: stop waiting.
        if (best && (!mine || best.expiresAt > mine.expiresAt) && !this.#due(best)) {
          clearTimeout(timer);
          done();
        }
      });
      this.#post({ type: "ask", id });
    });
  }

  #message(m) {
    if (this.stopped || !m) return;
    switch (m.type) {
      case "ask":
        if (this.tokens) this.#post({ type: "answer", id: m.id, tokens: this.tokens });
        break;
      case "answer":
        this.pending?.get(m.id)?.(m.tokens);
        break;
      case "tokens":
        if (!this.tokens || m.tokens.expiresAt >= this.tokens.expiresAt) this.#adopt(m.tokens, "peer");
        break;
      case "signedout":
        if (this.tokens) this.#signedOut(m.reason, false);
        break;
      case "activity":
        this.lastActivity = Math.max(this.lastActivity, m.at);
        break;
    }
  }

  // -- state -----------------------------------------------------------------

  #adopt(tokens, source) {
    const first = !this.tokens;
    this.tokens = tokens;
    this.#save(tokens);
    this.#schedule();
    if (first) this.#watchSession();
    this.#emit("tokens", { tokens, source });
  }

  #schedule(delay) {
    clearTimeout(this.timer);
    if (this.stopped || !this.tokens) return;
    const t = this.tokens;
    const due = delay ?? t.receivedAt + this.o.renewAt * (t.expiresAt - t.receivedAt) - Date.now();
    this.timer = setTimeout(() => this.renew("scheduled").catch(() => {}), Math.max(0, due));
  }

  #signedOut(reason, broadcast) {
    const had = !!this.tokens;
    this.tokens = null;
    clearTimeout(this.timer);
    this.#save(null);
    this.watch?.abort();
    this.watch = null;
    if (broadcast) this.#post({ type: "signedout", reason });
    if (had || broadcast) this.#emit("signedout", { reason });
  }

  #load() {
    try {
      return JSON.parse(this.o.storage?.getItem(this.name) || "null");
    } catch {
      return null;
    }
  }

  #save(tokens) {
    if (!this.o.storage) return;
    if (tokens) this.o.storage.setItem(this.name, JSON.stringify(tokens));
    else this.o.storage.removeItem(this.name);
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  // -- presence --------------------------------------------------------------

  /** #interaction sends the activity signal, at most once per interval across tabs. */
  #interaction() {
    const endpoint = this.meta?.castellan_activity_endpoint;
    if (!this.o.activityInterval || !endpoint || !this.tokens) return;
    const now = Date.now();
    if (now - this.lastActivity < this.o.activityInterval) return;
    this.lastActivity = now;
    this.#post({ type: "activity", at: now });
    fetch(endpoint, {
      method: "POST", headers: { Authorization: `Bearer ${this.tokens.accessToken}` }, credentials: "omit",
    }).then(async (res) => {
      if (res.ok) {
        const b = await res.json();
        this.#emit("activity", { idleExpiresAt: b.idle_expires_at * 1000, expiresAt: b.expires_at * 1000 });
      }
    }).catch(() => {});
  }

  /**
   * #watchSession keeps the provider's session-ended stream open while signed
   * in. One tab watches for all (the holder of a Web Lock; another tab takes
   * over when it closes) and tells the others over the channel.
   */
  #watchSession() {
    const endpoint = this.meta?.castellan_session_ended_endpoint;
    if (!this.o.sessionEvents || !endpoint || this.watch) return;
    const ctrl = new AbortController();
    this.watch = ctrl;
    const run = async () => {
      let failures = 0;
      while (!ctrl.signal.aborted && this.tokens) {
        const result = await this.#readStream(endpoint, ctrl.signal).catch((e) => (ctrl.signal.aborted ? "aborted" : "error"));
        if (result === "ended") {
          this.#signedOut("session_ended", true);
          return;
        }
        if (result === "unauthorized") {
          // The token expired or the session ended: a renewal tells which.
          await this.renew("session stream", { force: true }).catch(() => {});
        }
        failures = result === "closed" ? 0 : failures + 1;
        await sleep(Math.min(30_000, 1000 * 2 ** Math.min(failures, 5)), ctrl.signal);
      }
    };
    const locked = navigator.locks
      ? navigator.locks.request(this.name + "|events", { signal: ctrl.signal }, run)
      : run();
    locked.catch(() => {}).finally(() => { if (this.watch === ctrl) this.watch = null; });
  }

  async #readStream(endpoint, signal) {
    const res = await fetch(endpoint, {
      headers: { Authorization: `Bearer ${this.tokens.accessToken}`, Accept: "text/event-stream" },
      credentials: "omit", cache: "no-store", signal,
    });
    if (res.status === 401) return "unauthorized";
    if (!res.ok || !res.body) return "error";
    this.#emit("session", { state: "open" });
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return "closed";
        buf += value;
        let i;
        while ((i = buf.search(/\r?\n\r?\n/)) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i).replace(/^\r?\n\r?\n/, "");
          const event = /^event:\s*(.*)$/m.exec(block)?.[1];
          if (event === "session_ended") return "ended";
        }
      }
    } finally {
      this.#emit("session", { state: "closed" });
      reader.cancel().catch(() => {});
    }
  }
}

function newest(a, b) {
  if (!a) return b || null;
  if (!b) return a;
  return b.expiresAt > a.expiresAt ? b : a;
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => { clearTimeout(t); resolve(); }, { once: true });
  });
}
