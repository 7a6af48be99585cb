// dpop.js drives oauth4webapi (npm, its ES module build) against Castellan
// with DPoP (RFC 9449): a non-extractable ES256 key made with WebCrypto, the
// code flow with PKCE and dpop_jkt, the token endpoint, userinfo, the demo
// API and refreshes, every request with a proof, and the library's own
// handling of use_dpop_nonce. The Go test (dpop_test.go) signs in and calls
// window.dpopInterop from Chromium.
import * as oauth from "/oauth4webapi.js";

const config = await (await fetch("/config.json", { cache: "no-store" })).json();
const status = document.getElementById("status");
// The test provider is http on loopback.
const insecure = { [oauth.allowInsecureRequests]: true };
const issuer = new URL(config.issuer);
const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, insecure));
const client = { client_id: config.clientId, id_token_signed_response_alg: "ES256" };
const keyPair = await oauth.generateKeyPair("ES256");
const DPoP = oauth.DPoP(client, keyPair);
const redirectUri = location.origin + "/callback.html";
let verifier, state, tokens, sub;
let nonceRetries = 0;

// withNonce sends a request and, when the server asks for a DPoP nonce
// (use_dpop_nonce), sends it again: the handle has cached the nonce.
async function withNonce(send, process) {
  try {
    return await process(await send());
  } catch (err) {
    if (!oauth.isDPoPNonceError(err)) throw err;
    nonceRetries++;
    return await process(await send());
  }
}

function cnfJKT(jwt) {
  const b64 = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
  return JSON.parse(atob(b64)).cnf?.jkt || "";
}

function summary() {
  return {
    tokenType: tokens.token_type, accessToken: tokens.access_token, refreshToken: tokens.refresh_token || "",
    jkt: cnfJKT(tokens.access_token), sub, nonceRetries,
  };
}

const errorText = (err) => `${err.name}: ${err.message}${err.cause ? " " + JSON.stringify(err.cause) : ""}`;
const report = (fn) => async (...args) => {
  try {
    return JSON.stringify({ ok: await fn(...args) });
  } catch (err) {
    return JSON.stringify({ error: errorText(err) });
  }
};

window.dpopInterop = {
  start: report(async () => {
    verifier = oauth.generateRandomCodeVerifier();
    state = oauth.generateRandomState();
    const jkt = await DPoP.calculateThumbprint();
    const u = new URL(as.authorization_endpoint);
    for (const [k, v] of Object.entries({
      client_id: client.client_id, redirect_uri: redirectUri, response_type: "code", scope: config.scope,
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256",
      state, dpop_jkt: jkt,
    })) u.searchParams.set(k, v);
    return { url: u.href, jkt };
  }),
  redeem: report(async (callback) => {
    const params = oauth.validateAuthResponse(as, client, new URL(callback), state);
    tokens = await withNonce(
      () => oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, redirectUri, verifier, { DPoP, ...insecure }),
      (r) => oauth.processAuthorizationCodeResponse(as, client, r));
    sub = oauth.getValidatedIdTokenClaims(tokens).sub;
    return summary();
  }),
  userinfo: report(async () => withNonce(
    () => oauth.userInfoRequest(as, client, tokens.access_token, { DPoP, ...insecure }),
    (r) => oauth.processUserInfoResponse(as, client, sub, r))),
  api: report(async () => {
    const r = await oauth.protectedResourceRequest(tokens.access_token, "GET", new URL(config.api + "/api/profile"),
      undefined, undefined, { DPoP, ...insecure });
    return { status: r.status, body: await r.json() };
  }),
  // asBearer is what a thief with the access token alone can do.
  asBearer: report(async () => {
    const r = await fetch(as.userinfo_endpoint, { headers: { Authorization: "Bearer " + tokens.access_token } });
    return { status: r.status, challenge: r.headers.get("WWW-Authenticate") };
  }),
  refresh: report(async () => {
    tokens = await withNonce(
      () => oauth.refreshTokenGrantRequest(as, client, oauth.None(), tokens.refresh_token, { DPoP, ...insecure }),
      (r) => oauth.processRefreshTokenResponse(as, client, r));
    return summary();
  }),
};
status.textContent = "ready";
