/** Small DOM helpers: elements, tables, panels and the formats every page uses. */
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { formatUsd } from "../../clients/sdk/money.js";

type Child = Node | string | null | undefined | false;
type Attrs = Record<string, string | number | boolean | undefined | ((ev: Event) => void)>;

/** Create an element: attributes (`on*` keys are listeners) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (typeof v === "function") el.addEventListener(k.slice(2).toLowerCase(), v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

/** micro-USD as "$1.234567" with every significant digit (never rounded: the ledger is exact). */
export function usd(micro: bigint): string {
  return formatUsd(micro);
}

/** A money cell: the exact amount, with the micro-USD figure for screen readers and tooltips. */
export function money(micro: bigint, testId?: string): HTMLElement {
  return h("span", { class: "money", title: `${micro} micro-USD`, "data-micro": String(micro), "data-testid": testId }, usd(micro));
}

export function timeOf(t: Timestamp | undefined): string {
  if (!t) return "—";
  const ms = Number(t.seconds) * 1000 + Math.floor(t.nanos / 1e6);
  return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

export function dayOf(t: Timestamp | undefined): string {
  if (!t) return "—";
  return new Date(Number(t.seconds) * 1000).toISOString().slice(0, 10);
}

/** A data table with a caption (its accessible name) and column headers. */
export function table(caption: string, headers: string[], rows: Child[][], testId?: string): HTMLElement {
  const t = h(
    "table",
    { "data-testid": testId },
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, ...headers.map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, ...rows.map((r) => h("tr", {}, ...r.map((c) => h("td", {}, c))))),
  );
  const wrap = h("div", { class: "table-wrap", tabindex: 0, role: "region", "aria-label": caption }, t);
  if (rows.length === 0) wrap.append(h("p", { class: "empty" }, "Nothing yet."));
  return wrap;
}

/**
 * A page section that loads itself: a heading, a status line read out when it changes, and a
 * body filled by `load` (called again on every refresh). A failed load shows the daemon's reason
 * in this panel only; the rest of the page keeps working (e.g. a feature not on this daemon yet).
 * Controls (`before` / `after` the body: radio groups, forms) are built once and never replaced,
 * so what a user types or has focused survives the refreshes; a timed refresh also skips a body
 * that holds the keyboard focus (a scrolled table), and `refresh(true)` always reloads.
 */
/** Sent to every canvas of a panel body about to be replaced. */
export const DISPOSE_EVENT = "masques:dispose";

export interface Panel {
  el: HTMLElement;
  refresh(force?: boolean): Promise<void>;
}

export interface PanelControls {
  before?: HTMLElement;
  after?: HTMLElement;
}

export function panel(
  id: string,
  title: string,
  load: (body: HTMLElement) => Promise<void>,
  describeError: (e: unknown) => string,
  controls: PanelControls = {},
): Panel {
  const headingId = `${id}-h`;
  const body = h("div", { class: "panel-body" });
  const status = h("p", { class: "status", role: "status", "aria-live": "polite" });
  const el = h(
    "section",
    { class: "panel", id, "aria-labelledby": headingId, "data-testid": id },
    h("h2", { id: headingId }, title),
    status,
    controls.before,
    body,
    controls.after,
  );
  let running: Promise<void> | null = null;
  return {
    el,
    refresh(force = false) {
      if (!force && body.contains(document.activeElement)) return Promise.resolve();
      running ??= (async () => {
        el.setAttribute("aria-busy", "true");
        try {
          const next = h("div", { class: "panel-body" });
          await load(next);
          // let what is replaced release its resources (charts listen for this)
          for (const c of body.querySelectorAll("canvas")) c.dispatchEvent(new Event(DISPOSE_EVENT));
          body.replaceChildren(...next.childNodes);
          status.textContent = "";
          el.classList.remove("failed", "unavailable");
        } catch (err) {
          status.textContent = describeError(err);
          // a feature this daemon does not serve yet is information, not an error
          el.classList.add(ConnectError.from(err).code === Code.Unimplemented ? "unavailable" : "failed");
        } finally {
          el.removeAttribute("aria-busy");
          running = null;
        }
      })();
      return running;
    },
  };
}

/** A radio group ("Group by: Day / Week") that calls `onChange` with the chosen value. */
export function radioGroup<T extends string | number>(name: string, legend: string, options: readonly (readonly [T, string])[], initial: T, onChange: (v: T) => void): HTMLElement {
  return h(
    "fieldset",
    { class: "inline" },
    h("legend", {}, legend),
    ...options.map(([value, label]) =>
      h("label", {}, h("input", { type: "radio", name, value: String(value), checked: value === initial, onchange: () => onChange(value) }), ` ${label}`),
    ),
  );
}

/** A random idempotency key for one user action (a retry of the same action reuses it). */
export function idempotencyKey(prefix: string): string {
  return `${prefix}-${crypto.randomUUID()}`;
}
