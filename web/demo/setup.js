// setup.js reads the demo's configuration (/config.json, written by
// `castellan dev`) and builds the Renewal for a strategy. The app page and the
// sign-in callback page share it.
import { probeBff } from "./bff.js";
import { Renewal } from "./renewal.js";

const STRATEGY_KEY = "castellan-demo:strategy";

/**
 * loadConfig fetches /config.json. Where there is none but a
 * Backend-for-Frontend serves this origin (a BFF with static_dir pointing at
 * these files), the app runs in BFF mode with defaults.
 */
export async function loadConfig() {
  const res = await fetch("/config.json", { cache: "no-store" });
  const type = res.headers.get("Content-Type") || "";
  if (res.ok && type.includes("json")) return res.json();
  // A static server without the file answers 404, or the app's index page
  // where it falls back to it for unknown paths.
  if ((res.status === 404 || (res.ok && type.includes("html"))) && (await probeBff())) return bffDefaults();
  throw new Error(`config.json: HTTP ${res.status}${res.ok ? ` (${type || "no Content-Type"})` : ""}`);
}

/** bffDefaults is the configuration of the app on a BFF without /config.json. */
function bffDefaults() {
  return {
    api: location.origin,
    apiPollSeconds: 5,
    defaultStrategy: "bff",
    strategies: [{
      id: "bff", kind: "bff", title: "Backend-for-Frontend",
      summary: "The BFF keeps every token on its server; this page only has an HttpOnly cookie.",
      url: location.origin + "/",
    }],
  };
}

/**
 * chosenStrategy is the strategy named by ?strategy= (a link from the app on
 * another origin), else the one this browser picked last, else the default;
 * among those that run on this page's origin.
 */
export function chosenStrategy(config) {
  const here = config.strategies.filter((s) => runsHere(config, s));
  const params = new URLSearchParams(location.search);
  const asked = here.find((s) => s.id === params.get("strategy"));
  if (asked) {
    chooseStrategy(asked);
    params.delete("strategy");
    history.replaceState(null, "", location.pathname + (params.size ? `?${params}` : "") + location.hash);
    return asked;
  }
  const id = localStorage.getItem(STRATEGY_KEY);
  return here.find((s) => s.id === id) || here.find((s) => s.id === config.defaultStrategy) || here[0];
}

/** chooseStrategy remembers the person's pick (for every tab). */
export function chooseStrategy(strategy) {
  localStorage.setItem(STRATEGY_KEY, strategy.id);
}

/**
 * runsHere reports whether this page runs a strategy itself. Token strategies
 * run on the app's own origin (the one whose config has no "home"); a
 * strategy of another kind (a Backend-for-Frontend) runs on the origin of its
 * url, where a BFF serves this same app.
 */
export function runsHere(config, s) {
  if (s.kind === "token") return !config.home;
  return !!s.url && originOf(s.url) === location.origin;
}

/**
 * strategyLink is where the app runs a strategy that does not run here (a
 * BFF's origin, or the app's home origin seen from a BFF), or null.
 */
export function strategyLink(config, s) {
  if (runsHere(config, s)) return null;
  if (s.kind === "token") return config.home ? `${config.home.replace(/\/$/, "")}/?strategy=${encodeURIComponent(s.id)}` : null;
  return s.url || null;
}

/** usableStrategy reports whether the person can pick a strategy here. */
export function usableStrategy(config, s) {
  return runsHere(config, s) || strategyLink(config, s) !== null;
}

function originOf(url) {
  try {
    return new URL(url, location.href).origin;
  } catch {
    return "";
  }
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
