/**
 * The dashboard shell: sign-in, navigation between the Author, Agent and Operator pages (hash
 * routes, so every page is a bookmarkable /ui/#/… URL served by the same index.html), and a
 * refresh timer so open sessions and balances stay live.
 */
import "./style.css";
import { createApi } from "./api.js";
import { currentIdentity, devLogin, devLoginOffered, signIn, signOut, type Identity } from "./auth.js";
import { h, type Panel } from "./dom.js";
import { agentPanels } from "./pages/agent.js";
import { authorPanels } from "./pages/author.js";
import { operatorPanels } from "./pages/operator.js";

/** How often a page reloads its panels (open sessions accrue, balances move). */
const REFRESH_MS = 2_000;

type Route = "sign-in" | "author" | "agent" | "operator";

const main = document.getElementById("main")!;
const nav = document.getElementById("nav")!;
const whoEl = document.getElementById("who")!;
let timer: number | undefined;

function homeOf(who: Identity): Route {
  return who.kind === "admin" ? "operator" : who.kind === "author" ? "author" : "agent";
}

function routeOf(hash: string): Route {
  const r = hash.replace(/^#\/?/, "");
  return r === "author" || r === "agent" || r === "operator" ? r : "sign-in";
}

function go(route: Route): void {
  if (window.location.hash !== `#/${route}`) window.location.hash = `#/${route}`;
  else render();
}

function renderChrome(who: Identity | null, route: Route): void {
  const pages: [Route, string][] = who ? [[homeOf(who), { author: "Author", agent: "Agent", operator: "Operator", "sign-in": "" }[homeOf(who)]]] : [];
  nav.replaceChildren(
    ...pages.map(([r, label]) => h("a", { href: `#/${r}`, "aria-current": r === route ? "page" : undefined }, label)),
  );
  whoEl.replaceChildren(
    ...(who
      ? [
          h("span", { "data-testid": "signed-in-as" }, `${who.kind} ${who.id}`),
          h("button", { type: "button", class: "link", onclick: () => (signOut(), go("sign-in")) }, "Sign out"),
        ]
      : []),
  );
}

async function renderSignIn(): Promise<void> {
  const error = h("p", { class: "status error", role: "alert" });
  const token = h("textarea", { id: "token", name: "token", rows: 4, autocomplete: "off", spellcheck: "false", required: true });
  const pasteForm = h(
    "form",
    { "aria-labelledby": "paste-h" },
    h("h2", { id: "paste-h" }, "Sign in with a token"),
    h("p", {}, "Paste a bearer token issued for you (for a local daemon: ", h("code", {}, "masques-ledger token --kind author --id <you>"), ")."),
    h("label", { for: "token" }, "Bearer token"),
    token,
    h("button", { type: "submit" }, "Sign in"),
  );
  pasteForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    try {
      go(homeOf(signIn(token.value)));
    } catch (e) {
      error.textContent = (e as Error).message;
    }
  });
  const page = h("section", { class: "panel sign-in" }, h("h1", {}, "Sign in"), error, pasteForm);
  main.replaceChildren(page);
  if (await devLoginOffered()) {
    const id = h("input", { id: "dev-id", name: "id", autocomplete: "off", required: true, placeholder: "e.g. author-ada" });
    const kind = h("select", { id: "dev-kind", name: "kind" }, h("option", { value: "author" }, "Author"), h("option", { value: "agent" }, "Agent"));
    const devForm = h(
      "form",
      { "aria-labelledby": "dev-h", "data-testid": "dev-login" },
      h("h2", { id: "dev-h" }, "Local development"),
      h("p", {}, "This daemon runs on loopback with its dev keys: sign in as any author or agent in one click. Operators paste an admin token."),
      h("label", { for: "dev-kind" }, "As"),
      kind,
      h("label", { for: "dev-id" }, "Id"),
      id,
      h("button", { type: "submit" }, "Dev sign-in"),
    );
    devForm.addEventListener("submit", (ev) => {
      ev.preventDefault();
      devLogin(kind.value === "agent" ? "agent" : "author", id.value.trim())
        .then((who) => go(homeOf(who)))
        .catch((e: unknown) => (error.textContent = (e as Error).message));
    });
    page.append(devForm);
  }
}

function renderPage(who: Identity, route: Route): void {
  const api = createApi(who.token, () => {
    signOut();
    go("sign-in");
  });
  const titles: Record<Exclude<Route, "sign-in">, string> = { author: "Author", agent: "Agent", operator: "Operator" };
  let panels: Panel[];
  if (route === "author") panels = authorPanels(api, who);
  else if (route === "agent") panels = agentPanels(api, who);
  else panels = operatorPanels(api);
  main.replaceChildren(
    h("h1", {}, `${titles[route as Exclude<Route, "sign-in">]}: ${who.id}`),
    h("div", { class: "panels" }, ...panels.map((p) => p.el)),
  );
  const refreshAll = async () => {
    await Promise.all(panels.map((p) => p.refresh()));
    document.body.dataset.loadedAt = String(Date.now());
  };
  void refreshAll();
  timer = window.setInterval(() => {
    if (document.visibilityState === "visible") void refreshAll();
  }, REFRESH_MS);
}

function render(): void {
  window.clearInterval(timer);
  const who = currentIdentity();
  let route = routeOf(window.location.hash);
  if (!who && route !== "sign-in") route = "sign-in";
  if (who && route === "sign-in") route = homeOf(who);
  if (who && route !== homeOf(who)) route = homeOf(who);
  if (window.location.hash !== `#/${route}`) {
    window.location.replace(`#/${route}`);
    return;
  }
  renderChrome(who, route);
  if (!who) void renderSignIn();
  else renderPage(who, route);
  main.focus({ preventScroll: true });
}

window.addEventListener("hashchange", render);
render();
