// app.js is the demo's user interface. All token handling is in renewal.js;
// this file only shows what happens: the token and its countdown, each
// renewal, the API's answers and the session's end.
import { decodeJwt } from "./renewal.js";
import { chooseStrategy, chosenStrategy, loadConfig, renewalFor, usableStrategy } from "./setup.js";

const $ = (id) => document.getElementById(id);

const REASONS = {
  signed_out: "You signed out.",
  rp_logout: "You signed out, at Castellan too.",
  session_ended: "Castellan reported that your session ended (session-ended push).",
  login_required: "Renewal refused: there is no session at Castellan any more (login_required).",
  interaction_required: "Renewal refused: Castellan needs you to interact (interaction_required).",
  consent_required: "Renewal refused: consent is needed (consent_required).",
  invalid_grant: "Renewal refused: the refresh token is no longer valid (invalid_grant).",
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
    input.disabled = !usableStrategy(s);
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
    if (next.kind !== "token") {
      // Another kind of app (a Backend-for-Frontend) on its own origin.
      location.assign(next.url);
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
  session = tokenSession(config, strategy);
  $("api-url").textContent = config.api + "/api/profile";
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
    get tokens() { return renewal.tokens; },
  };
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
  const who = decodeJwt(tokens.idToken)?.name || claims.sub;
  const status = $("status");
  status.dataset.state = "signed-in";
  status.textContent = `Signed in as ${who} · ${strategy.title}`;
  $("reason").hidden = true;
  $("error").hidden = true;
  for (const id of ["sign-out", "renew-now", "signed-in-panels", "session-facts", "strategy-note"]) $(id).hidden = false;
  $("sign-in").hidden = true;
  $("strategy-fieldset").disabled = true;
  renderClaims(claims, tokens);
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

function renderClaims(claims, tokens) {
  const rows = CLAIMS.filter((k) => claims[k] !== undefined).map((k) => {
    const tr = document.createElement("tr");
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = k;
    const td = document.createElement("td");
    let v = claims[k];
    if (k === "iat" || k === "exp") v = `${v} (${new Date(v * 1000).toLocaleTimeString()})`;
    td.textContent = Array.isArray(v) ? v.join(" ") : String(v);
    if (k === "jti") td.id = "jti";
    tr.append(th, td);
    return tr;
  });
  const extra = document.createElement("tr");
  const th = document.createElement("th");
  th.scope = "row";
  th.textContent = "refresh token";
  const td = document.createElement("td");
  td.textContent = tokens.refreshToken ? "yes, kept in this tab (rotates at every use)" : "none";
  extra.append(th, td);
  $("claims").replaceChildren(...rows, extra);
}

function tick() {
  const t = session?.tokens;
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
  const t = session?.tokens;
  if (!t) return;
  const status = $("api-status");
  try {
    const res = await fetch(config.api + "/api/profile", {
      headers: { Authorization: `Bearer ${t.accessToken}` }, credentials: "omit", cache: "no-store",
    });
    const text = await res.text();
    let body = text;
    try {
      body = JSON.stringify(JSON.parse(text), null, 2);
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
