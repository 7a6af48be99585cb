// silent.js runs in the hidden iframe of a silent renewal when the provider
// answers by redirecting to silentRedirectUri (the fallback where
// response_mode=web_message is not offered). It hands the authorization
// response to the app that framed it, on this origin only, in the same shape
// web_message uses, and does nothing else: the app checks state and iss.
const u = new URL(location.href);
const params = new URLSearchParams(u.hash.length > 1 ? u.hash.slice(1) : u.search);
// The response must not stay in the iframe's history or a later Referer.
history.replaceState(null, "", u.pathname);
const target = window.parent !== window ? window.parent : window.opener;
if (target) {
  target.postMessage({ type: "authorization_response", response: Object.fromEntries(params) }, location.origin);
}
