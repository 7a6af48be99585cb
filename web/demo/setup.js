// setup.js reads the demo's configuration (/config.json, written by
// `castellan dev`) and builds the Renewal for a strategy. The app page and the
// sign-in callback page share it.
import { Renewal } from "./renewal.js";

const STRATEGY_KEY = "castellan-demo:strategy";

/** loadConfig fetches /config.json. */
export async function loadConfig() {
  const res = await fetch("/config.json", { cache: "no-store" });
  if (!res.ok) throw new Error(`config.json: HTTP ${res.status}`);
  return res.json();
}

/** chosenStrategy is the strategy this browser picked last, or the default. */
export function chosenStrategy(config) {
  const id = localStorage.getItem(STRATEGY_KEY);
  const usable = config.strategies.filter(usableStrategy);
  return usable.find((s) => s.id === id) || usable.find((s) => s.id === config.defaultStrategy) || usable[0];
}

/** chooseStrategy remembers the person's pick (for every tab). */
export function chooseStrategy(strategy) {
  localStorage.setItem(STRATEGY_KEY, strategy.id);
}

/**
 * usableStrategy reports whether this page can run a strategy: token
 * strategies run here; a strategy of another kind (a Backend-for-Frontend)
 * lives on its own origin, named by its url.
 */
export function usableStrategy(s) {
  return s.kind === "token" || (s.url && s.url !== location.origin + "/");
}

/** renewalFor builds the Renewal of a token strategy. */
export function renewalFor(config, strategy) {
  return new Renewal({
    issuer: config.issuer,
    clientId: strategy.clientId,
    scope: strategy.scope,
    method: strategy.method,
    responseType: strategy.responseType,
    redirectUri: location.origin + "/callback.html",
    silentRedirectUri: location.origin + "/silent.html",
    storage: sessionStorage,
    renewAt: config.renewAt,
    activityInterval: config.activitySeconds * 1000,
    sessionEvents: config.sessionEvents,
    webMessage: config.silentCallbackPage ? false : "auto",
  });
}
