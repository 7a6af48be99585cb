// app.js is the demo's user interface. All token handling is in renewal.js
// (or, in BFF mode, on the Backend-for-Frontend's server, which bff.js talks
// to); this file only shows what happens: the token and its countdown, each
// renewal, the API's answers and the session's end.
import { bffSession } from "./bff.js";
import { decodeJwt } from "./renewal.js";
import { chooseStrategy, chosenStrategy, loadConfig, renewalFor, strategyLink, usableStrategy } from "./setup.js";

const $ = (id) => document.getElementById(id);

const REASONS = {
  signed_out: "You signed out.",
  rp_logout: "You signed out, at Castellan too.",
  session_ended: "Castellan reported that your session ended (session-ended push).",
  login_required: "Renewal refused: there is no session at Castellan any more (login_required).",
  interaction_required: "Renewal refused: Castellan needs you to interact (interaction_required).",
  consent_required: "Renewal refused: consent is needed (consent_required).",
  invalid_grant: "Renewal refused: the refresh token is no longer valid (invalid_grant).",
  bff_session_ended: "The BFF session ended (signed out elsewhere, back-channel logout, or a refresh the BFF could not make).",
};

let config;
let strategy;
let session; // the strategy's session: see tokenSession
let apiTimer = 0;

$("sign-in").addEventListener("click", () => session.signIn().catch((e) => showError(e.message)));
$("sign-out").addEventListener("click", () => session.signOut().catch((e) => showError(e.message)));
$("renew-now").addEventListener("click", () => session.renewNow().catch(() => {}));


// -- strategies ---------------------------------------------------------------

function renderStrategies() {
  const box = $("strategies");
  box.replaceChildren();
  for (const s of config.strategies) {
    const id = `strategy-${s.id}`;
    const label = document.createElement("label");
    label.className = "strategy";
    label.htmlFor = id;
    const input = document.createElement("input");
    Object.assign(input, { type: "radio", name: "strategy", id, value: s.id, checked: s.id === strategy.id });
    input.disabled = !usableStrategy(config, s);
    const text = document.createElement("span");
    const title = document.createElement("strong");
    title.textContent = s.title;
    const summary = document.createElement("span");
    summary.className = "summary";
    summary.textContent = s.summary + (input.disabled ? " (not running in this setup)" : "");
    text.append(title, summary);
    label.append(input, text);
    box.append(label);
  }
  $("strategy-form").addEventListener("change", async (e) => {
    const next = config.strategies.find((s) => s.id === e.target.value);
    if (!next || next.id === strategy.id) return;
    const link = strategyLink(config, next);
    if (link) {
      // The strategy runs on another origin: a Backend-for-Frontend serves
      // the app on its own, and the token strategies run on the app's.
      location.assign(link);
      return;
    }
    chooseStrategy(next);
    await switchTo(next);
  });
}

async function switchTo(next) {
  session?.stop();
  strategy = next;
  clearLog();
  const bff = strategy.kind === "bff";
  session = bff ? bffView(config, strategy) : tokenSession(config, strategy);
  $("api-url").textContent = (bff ? location.origin : config.api) + "/api/profile";
  $("api-how").textContent = bff
    ? "through the BFF, which adds the access token this page never sees"
    : "with the current access token";
  $("api-interval").textContent = config.apiPollSeconds === 1 ? "second" : `${config.apiPollSeconds} seconds`;
  await session.start();
}

/**
 * tokenSession adapts renewal.js to the page: the tokens live in this tab.
 * (A Backend-for-Frontend strategy keeps them on its server and would supply
 * the same five functions over its /bff endpoints.)
 */
function tokenSession(config, strategy) {
  const renewal = renewalFor(config, strategy);
  window.demo = { renewal, strategy, config }; // for the browser tests
  renewal.addEventListener("tokens", (e) => {
    const { tokens, source } = e.detail;
    if (source === "peer") log("peer", "Received new tokens from another tab", tokens);
    if (source === "restored") {
      // The callback page signed in, then came back here.
      const signedIn = sessionStorage.getItem("castellan-demo:signed-in") === strategy.id;
      sessionStorage.removeItem("castellan-demo:signed-in");
      if (signedIn) log("signin", `Signed in with ${strategy.responseType === "code" ? "the code flow and PKCE" : "the implicit grant"}`, tokens);
      else log("restored", "Tokens kept across a reload", tokens);
    }
    if (source === "signin") log("signin", "Signed in", tokens);
    showSignedIn(tokens);
  });
  renewal.addEventListener("renewal", (e) => {
    const r = e.detail;
    if (r.ok) log("renewed", `Renewed (${r.reason}) by ${describe(r.via)} in ${r.ms} ms`, renewal.tokens, r.via);
    else log("failed", `Renewal failed (${r.reason}): ${r.error}${r.description ? ` – ${r.description}` : ""}`, null, r.via);
  });
  renewal.addEventListener("signedout", (e) => {
    log("signedout", REASONS[e.detail.reason] || `Signed out (${e.detail.reason}).`);
    showSignedOut(e.detail.reason);
  });
  renewal.addEventListener("activity", (e) => {
    const t = new Date(e.detail.idleExpiresAt).toLocaleTimeString();
    $("presence").textContent = `sent; Castellan keeps your session until ${t} unless you use the app again`;
  });
  renewal.addEventListener("session", (e) => {
    $("stream-state").textContent = e.detail.state === "open" ? "listening (this tab)" : "reconnecting";
  });
  return {
    async start() {
      const back = renewal.signedOutReturn();
      const tokens = await renewal.start();
      if (tokens) return;
      showSignedOut(back ? "rp_logout" : null);
    },
    stop: () => renewal.stop(),
    signIn() {
      sessionStorage.setItem("castellan-demo:signing-in", strategy.id);
      return renewal.signIn({ returnTo: "/" });
    },
    signOut: () => renewal.signOut({ postLogoutRedirectUri: location.origin + "/" }),
    renewNow: () => renewal.renew("button", { force: true }),
    fetchApi: (path) => fetch(config.api + path, {
      headers: { Authorization: `Bearer ${renewal.tokens.accessToken}` }, credentials: "omit", cache: "no-store",
    }),
    get active() { return !!renewal.tokens; },
    get expiry() { return renewal.tokens; },
    get tokens() { return renewal.tokens; },
  };
}

/**
 * bffView adapts bff.js to the page: a Backend-for-Frontend on this origin
 * keeps the tokens, and the page sees only who is signed in and what the API
 * answers.
 */
function bffView(config, strategy) {
  const s = bffSession(config, strategy, {
    signedIn(user, how) {
      if (how === "signin") log("signin", "Signed in through the BFF: it holds the tokens, this page holds none");
      else log("restored", "The BFF session outlived a reload");
      showSignedInBff(user);
    },
    signedOut(reason) {
      if (reason) log("signedout", REASONS[reason] || `Signed out (${reason}).`);
      showSignedOut(reason);
    },
    renewed() {
      log("renewed", "The BFF renewed the access token behind the scenes (its refresh token, on its server); the API received the new one", null, "bff");
    },
  });
  window.demo = { strategy, config, bff: s }; // for the browser tests
  return s;
}

function describe(via) {
  return {
    token_endpoint: "refresh token",
    web_message: "silent iframe (prompt=none, web_message)",
    redirect: "silent iframe (prompt=none, callback page)",
  }[via] || via;
}

// -- rendering --------------------------------------------------------------------

function showSignedIn(tokens) {
  const claims = decodeJwt(tokens.accessToken) || {};
  markSignedIn(decodeJwt(tokens.idToken)?.name || claims.sub);
  $("renew-now").hidden = false;
  $("claims-caption").textContent = "Decoded claims (not verified here: the API checks the token)";
  renderClaims(claims, tokens);
}

/** showSignedInBff shows a BFF session: who, but no token. */
function showSignedInBff(user) {
  markSignedIn(user.claims.name || user.claims.sub);
  $("renew-now").hidden = true; // the BFF renews by itself
  $("stream-state").textContent = "not needed: Castellan tells the BFF (back-channel logout)";
  $("presence").textContent = "not sent from this page: the BFF holds the tokens";
  $("expires-in").textContent = "held by the BFF";
  $("claims-caption").textContent = "Who you are, from /bff/user (the BFF checked the ID token; this page has no token)";
  renderBffClaims(user);
}

function markSignedIn(who) {
  const status = $("status");
  status.dataset.state = "signed-in";
  status.textContent = `Signed in as ${who} · ${strategy.title}`;
  $("reason").hidden = true;
  $("error").hidden = true;
  for (const id of ["sign-out", "signed-in-panels", "session-facts", "strategy-note"]) $(id).hidden = false;
  $("sign-in").hidden = true;
  $("strategy-fieldset").disabled = true;
  if (!apiTimer) {
    callApi();
    apiTimer = setInterval(callApi, config.apiPollSeconds * 1000);
  }
}

function showSignedOut(reason) {
  const status = $("status");
  status.dataset.state = "signed-out";
  status.textContent = "Signed out";
  const r = $("reason");
  r.hidden = !reason;
  r.dataset.reason = reason || "";
  r.textContent = reason ? REASONS[reason] || `Signed out (${reason}).` : "";
  for (const id of ["sign-out", "renew-now", "signed-in-panels", "session-facts", "strategy-note"]) $(id).hidden = true;
  $("sign-in").hidden = false;
  $("strategy-fieldset").disabled = false;
  $("stream-state").textContent = "not listening";
  clearInterval(apiTimer);
  apiTimer = 0;
}

function showError(message) {
  const e = $("error");
  e.hidden = false;
  e.textContent = message;
}

const CLAIMS = ["sub", "client_id", "scope", "aud", "iss", "sid", "jti", "iat", "exp"];
const BFF_CLAIMS = ["sub", "name", "email", "sid", "iss", "auth_time"];

function renderClaims(claims, tokens) {
  const rows = claimRows(CLAIMS, claims);
  const extra = row("refresh token", tokens.refreshToken ? "yes, kept in this tab (rotates at every use)" : "none");
  $("claims").replaceChildren(...rows, extra);
}

function renderBffClaims(user) {
  const rows = claimRows(BFF_CLAIMS, user.claims);
  rows.push(row("access token", "kept by the BFF, never in this page"));
  rows.push(row("refresh token", "kept by the BFF, never in this page"));
  if (user.sessionExpiresAt) rows.push(row("BFF session until", new Date(user.sessionExpiresAt).toLocaleTimeString()));
  $("claims").replaceChildren(...rows);
}

function claimRows(keys, claims) {
  return keys.filter((k) => claims[k] !== undefined).map((k) => {
    let v = claims[k];
    if (k === "iat" || k === "exp" || k === "auth_time") v = `${v} (${new Date(v * 1000).toLocaleTimeString()})`;
    const tr = row(k, Array.isArray(v) ? v.join(" ") : String(v));
    if (k === "jti") tr.querySelector("td").id = "jti";
    return tr;
  });
}

function row(name, value) {
  const tr = document.createElement("tr");
  const th = document.createElement("th");
  th.scope = "row";
  th.textContent = name;
  const td = document.createElement("td");
  td.textContent = value;
  tr.append(th, td);
  return tr;
}

function tick() {
  const t = session?.expiry;
  if (!t) return;
  const left = Math.max(0, t.expiresAt - Date.now());
  $("expires-in").textContent = left > 0 ? `expires in ${Math.ceil(left / 1000)} s` : "expired";
  $("lifetime").value = left / (t.expiresAt - t.receivedAt);
}

// -- renewal log -----------------------------------------------------------------

function clearLog() {
  $("renewal-log").replaceChildren();
}

function log(kind, text, tokens, via) {
  const li = document.createElement("li");
  li.dataset.kind = kind;
  if (via) li.dataset.via = via;
  const time = document.createElement("time");
  time.dateTime = new Date().toISOString();
  time.textContent = new Date().toLocaleTimeString();
  li.append(time, " ", text);
  const jti = tokens && decodeJwt(tokens.accessToken)?.jti;
  if (jti) {
    li.dataset.jti = jti;
    const code = document.createElement("code");
    code.textContent = `jti ${jti.slice(0, 8)}…`;
    li.append(" ", code);
  }
  const list = $("renewal-log");
  list.prepend(li);
  while (list.children.length > 50) list.lastChild.remove();
}

// -- API ------------------------------------------------------------------------

async function callApi() {
  if (!session?.active) return;
  const status = $("api-status");
  try {
    const res = await session.fetchApi("/api/profile");
    const text = await res.text();
    let body = text;
    try {
      const parsed = JSON.parse(text);
      body = JSON.stringify(parsed, null, 2);
      // Through a BFF, the API's answer is how the page learns the token's
      // expiry (and so sees the BFF renew it).
      if (res.ok && parsed.expires_at) session.sawToken?.(Date.parse(parsed.expires_at));
    } catch { /* not JSON */ }
    status.dataset.state = res.ok ? "ok" : "error";
    status.dataset.status = String(res.status);
    status.textContent = `${res.status} ${res.statusText || (res.ok ? "OK" : "")} at ${new Date().toLocaleTimeString()}`;
    if (!res.ok) status.textContent += ` – ${res.headers.get("WWW-Authenticate") || ""}`;
    $("api-body").textContent = body;
    const n = Number(status.dataset.okCount || 0) + (res.ok ? 1 : 0);
    status.dataset.okCount = String(n);
  } catch (e) {
    status.dataset.state = "error";
    status.textContent = `The API did not answer: ${e.message}`;
  }
}

// -- start ------------------------------------------------------------------------

try {
  config = await loadConfig();
  strategy = chosenStrategy(config);
  renderStrategies();
  await switchTo(strategy);
  setInterval(tick, 250);
} catch (e) {
  showError(`The demo could not start: ${e.message}`);
}
