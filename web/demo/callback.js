// callback.js finishes a sign-in at the redirect URI: it checks the
// authorization response, redeems the code (or takes the implicit tokens),
// hands the tokens to the app's other tabs and returns to the app.
import { loadConfig, renewalFor } from "./setup.js";

const status = document.getElementById("callback-status");
try {
  const config = await loadConfig();
  const id = sessionStorage.getItem("castellan-demo:signing-in");
  const strategy = config.strategies.find((s) => s.id === id);
  if (!strategy) throw new Error("no sign-in was started in this tab");
  sessionStorage.removeItem("castellan-demo:signing-in");
  const renewal = renewalFor(config, strategy);
  await renewal.start();
  const { returnTo } = await renewal.completeSignIn();
  renewal.stop();
  sessionStorage.setItem("castellan-demo:signed-in", strategy.id);
  location.replace(returnTo);
} catch (e) {
  status.textContent = `Sign-in failed: ${e.message}`;
  status.dataset.state = "error";
}
