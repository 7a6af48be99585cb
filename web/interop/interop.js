// interop.js drives oidc-client-ts (its browser bundle, global `oidc`)
// against Castellan on the three pages of the interop test: the app
// (index.html), the redirect callback and the silent-renewal iframe. The Go
// test (interop_test.go) calls window.interop from Chromium.
const config = await (await fetch("/config.json", { cache: "no-store" })).json();
const status = document.getElementById("status");

const settings = {
  authority: config.issuer,
  client_id: config.clientId,
  scope: config.scope,
  response_type: "code",
  redirect_uri: location.origin + "/callback.html",
  silent_redirect_uri: location.origin + "/silent.html",
  post_logout_redirect_uri: location.origin + "/",
  automaticSilentRenew: false,
  userStore: new oidc.WebStorageStateStore({ store: window.sessionStorage }),
};
const mgr = new oidc.UserManager(settings);

// summary is what the test looks at: never the whole user object.
function summary(user) {
  if (!user) return null;
  return {
    accessToken: user.access_token,
    refreshToken: user.refresh_token || "",
    idToken: user.id_token || "",
    sub: user.profile?.sub || "",
    scope: user.scope || "",
    expired: user.expired,
  };
}

async function attempt(fn) {
  try {
    return { user: summary(await fn()) };
  } catch (e) {
    return { error: e.error || e.message || String(e) };
  }
}

window.interop = {
  signinRedirect: () => mgr.signinRedirect(),
  user: async () => summary(await mgr.getUser()),
  // signinSilent renews with the refresh token when the user has one, else
  // with prompt=none in a hidden iframe: forget the user to force the iframe.
  silentIframe: () => attempt(async () => { await mgr.removeUser(); return mgr.signinSilent(); }),
  silentRefresh: () => attempt(() => mgr.signinSilent()),
};

switch (location.pathname) {
  case "/callback.html":
    try {
      await mgr.signinCallback();
      location.replace("/");
    } catch (e) {
      status.textContent = "callback failed: " + (e.error || e.message);
    }
    break;
  case "/silent.html":
    await mgr.signinSilentCallback();
    break;
  default:
    status.textContent = "ready";
}
