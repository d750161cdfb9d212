/**
 * Author page: what my masques earn (ledger balance, charts by day / week per masque from the
 * analytics RPC), the sessions that paid me, the split applied at settlement, my payouts with a
 * request-payout action, my catalog entries with their prices, and the revenue rules that set my
 * split: the active one and changes pending approval or cooling down (ADR 0100; the platform's
 * rules and my author-scoped ones, which ListRevenueRules lets an author read).
 */
import { RevenueRuleScopeKind, RevenueRuleState, type RevenueRule } from "../../../clients/gen/masques/ledger/v1/admin_service_pb.js";
import { TimeBucket, type EarningsPoint } from "../../../clients/gen/masques/ledger/v1/analytics_service_pb.js";
import { Rail } from "../../../clients/gen/masques/ledger/v1/common_pb.js";
import { PayoutState } from "../../../clients/gen/masques/ledger/v1/settlement_service_pb.js";
import { SessionStatus } from "../../../clients/gen/masques/ledger/v1/session_service_pb.js";
import { parseUsdInput } from "../../../clients/sdk/money.js";
import { describeError, type Api } from "../api.js";
import type { Identity } from "../auth.js";
import { barChart } from "../chart.js";
import { dayOf, h, idempotencyKey, money, panel, radioGroup, table, timeOf, usd, type Panel } from "../dom.js";

export const STATUS_NAMES: Record<number, string> = {
  [SessionStatus.OPEN]: "open",
  [SessionStatus.DOFFED]: "doffed",
  [SessionStatus.REAPED]: "reaped",
  [SessionStatus.CANCELLED]: "cancelled",
  [SessionStatus.EXPIRED]: "expired",
};

const RAILS: [Rail, string][] = [
  [Rail.BASE, "Base (USDC)"],
  [Rail.SOLANA, "Solana (USDC)"],
  [Rail.LIGHTNING, "Lightning"],
];

function earningsPanel(api: Api, who: Identity): Panel {
  let bucket: TimeBucket = TimeBucket.DAY;
  const p: Panel = panel(
    "author-earnings",
    "Earnings",
    async (body) => {
      const [account, series] = await Promise.all([
        api.accounts.getAccount({ account: { ref: { case: "authorEarnings", value: who.id } } }).catch(() => null),
        api.analytics.getAuthorEarnings({ bucket }),
      ]);
      const balance = account?.account?.balance;
      const ledger = balance ? BigInt(balance.postedMicro) : null;
      const labels = [...new Set(series.points.map((p) => dayOf(p.bucketStart)))];
      const masques = [...new Set(series.points.map((p) => p.masqueName))].sort();
      const value = (p: EarningsPoint | undefined) => (p ? p.earnedMicro : 0n);
      const chart = barChart(
        `Earnings per ${bucket === TimeBucket.WEEK ? "week" : "day"} and masque`,
        labels,
        masques.map((m) => ({ label: m, values: labels.map((l) => value(series.points.find((p) => p.masqueName === m && dayOf(p.bucketStart) === l))) })),
      );
      body.append(
        h(
          "dl",
          { class: "figures" },
          h("div", {}, h("dt", {}, "Earnings balance (ledger)"), h("dd", {}, ledger === null ? "—" : money(ledger, "earnings-balance"))),
          h("div", {}, h("dt", {}, "Earned in the last 90 days"), h("dd", {}, money(series.totalEarnedMicro, "earnings-total"))),
          h("div", {}, h("dt", {}, "Figures as of"), h("dd", {}, timeOf(series.asOfTime))),
        ),
        chart,
        table(
          `Earnings per ${bucket === TimeBucket.WEEK ? "week (starting Monday)" : "day"} and masque`,
          [bucket === TimeBucket.WEEK ? "Week of" : "Day", "Masque", "Sessions", "Earned"],
          series.points.map((p) => [dayOf(p.bucketStart), p.masqueName, String(p.sessions), money(p.earnedMicro)]),
          "earnings-table",
        ),
      );
    },
    describeError,
    {
      before: radioGroup("earnings-bucket", "Group by", [[TimeBucket.DAY, "Day"], [TimeBucket.WEEK, "Week"]] as const, bucket, (b) => {
        bucket = b;
        void p.refresh(true);
      }),
    },
  );
  return p;
}

function sessionsPanel(api: Api): Panel {
  return panel(
    "author-sessions",
    "Sessions of my masques",
    async (body) => {
      const r = await api.sessions.listSessions({ pageSize: 50 });
      const settled = r.sessions.find((s) => s.status !== SessionStatus.OPEN && s.priceMicro > 0n);
      if (settled) {
        const bps = settled.platformFeeBps;
        body.append(
          h(
            "p",
            { class: "split", "data-testid": "current-split" },
            `Split at your latest settlement: you ${((10_000 - bps) / 100).toFixed(2)}%, platform ${(bps / 100).toFixed(2)}% (platform fee ${bps} bps).`,
          ),
        );
      }
      body.append(
        table(
          "Latest sessions (newest first)",
          ["Session", "Masque", "Status", "Price", "Your share", "Platform fee", "Ended"],
          r.sessions.map((s) => [
            h("code", {}, s.sessionId.slice(0, 12) + "…"),
            s.masqueName,
            STATUS_NAMES[s.status] ?? "?",
            money(s.priceMicro),
            money(s.authorShareMicro),
            money(s.platformFeeMicro),
            timeOf(s.endTime),
          ]),
          "author-sessions-table",
        ),
      );
    },
    describeError,
  );
}

function payoutsPanel(api: Api): Panel {
  const form = requestPayoutForm(api, () => void p.refresh(true));
  const p: Panel = panel(
    "author-payouts",
    "Payouts",
    async (body) => {
      const r = await api.settlement.listPayouts({ pageSize: 20 });
      body.append(
        table(
          "Payouts (newest first)",
          ["Payout", "Rail", "State", "Amount", "Fee", "Net", "Reference"],
          r.payouts.map((x) => [
            h("code", {}, x.payoutId.slice(0, 12) + "…"),
            RAILS.find(([rail]) => rail === x.rail)?.[1] ?? "?",
            PayoutState[x.state] ?? "?",
            money(x.quote?.amountMicro ?? 0n),
            money(x.quote?.feeMicro ?? 0n),
            money(x.quote?.netMicro ?? 0n),
            x.txRef ? h("code", {}, x.txRef.slice(0, 18)) : "—",
          ]),
          "payouts-table",
        ),
      );
    },
    describeError,
    { after: form },
  );
  return p;
}

/** Request a payout (RequestPayout: a quote), then confirm it (ConfirmPayout). */
function requestPayoutForm(api: Api, done: () => void): HTMLElement {
  const out = h("p", { class: "status", role: "status", "aria-live": "polite" });
  const rail = h("select", { id: "payout-rail", name: "rail" }, ...RAILS.map(([r, label]) => h("option", { value: String(r) }, label)));
  const amount = h("input", { id: "payout-amount", name: "amount", inputmode: "decimal", autocomplete: "off", placeholder: "all available" });
  const form = h(
    "form",
    { class: "payout-form", "aria-label": "Request a payout" },
    h("h3", {}, "Request a payout"),
    h("label", { for: "payout-rail" }, "Rail"),
    rail,
    h("label", { for: "payout-amount" }, "Amount in USD (empty: everything available)"),
    amount,
    h("button", { type: "submit" }, "Get a quote"),
    out,
  );
  let key = idempotencyKey("ui-payout");
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    void (async () => {
      out.textContent = "Asking for a quote…";
      try {
        const text = amount.value.trim();
        const r = await api.settlement.requestPayout({
          rail: Number(rail.value) as Rail,
          amount: text === "" ? { case: "allAvailable", value: true } : { case: "amountMicro", value: parseUsdInput(text) },
          idempotencyKey: key,
        });
        const q = r.payout?.quote;
        const id = r.payout?.payoutId ?? "";
        out.replaceChildren(
          `Quote: ${usd(q?.amountMicro ?? 0n)} leaves your earnings, fee ${usd(q?.feeMicro ?? 0n)}, ${usd(q?.netMicro ?? 0n)} arrives; valid until ${timeOf(q?.expireTime)}. `,
          h(
            "button",
            {
              type: "button",
              onclick: () => {
                void api.settlement
                  .confirmPayout({ payoutId: id })
                  .then(() => {
                    out.textContent = "Payout requested.";
                    key = idempotencyKey("ui-payout");
                    done();
                  })
                  .catch((e: unknown) => (out.textContent = describeError(e)));
              },
            },
            "Confirm payout",
          ),
        );
      } catch (e) {
        out.textContent = e instanceof Error && !("code" in e) ? e.message : describeError(e);
      }
    })();
  });
  return form;
}

function catalogPanel(api: Api, who: Identity): Panel {
  return panel(
    "author-catalog",
    "My masques and their prices",
    async (body) => {
      const r = await api.sessions.listMasques({ pageSize: 1000 });
      const mine = r.masques.filter((m) => m.author === who.id);
      body.append(
        table(
          "Catalog entries",
          ["Masque", "Version", "Flat", "Per minute", "Per 1k input", "Per 1k output", "Per tool call", "Cap", "Reserve"],
          mine.map((m) => {
            const p = m.pricing;
            return [
              m.name,
              m.version,
              money(p?.flatPerSessionMicro ?? 0n),
              `$${p?.perMinuteUsd ?? "0"}`,
              `$${p?.per1kInputTokensUsd ?? "0"}`,
              `$${p?.per1kOutputTokensUsd ?? "0"}`,
              `$${p?.perToolCallUsd ?? "0"}`,
              p?.hasCap ? money(p.capPerSessionMicro) : "none",
              money(p?.reserveMicro ?? 0n),
            ];
          }),
          "catalog-table",
        ),
      );
    },
    describeError,
  );
}

/** The author page's panels, in order. */
const RULE_STATE_NAMES: Partial<Record<RevenueRuleState, string>> = {
  [RevenueRuleState.PENDING_APPROVAL]: "pending approval",
  [RevenueRuleState.COOLING_DOWN]: "cooling down",
  [RevenueRuleState.ACTIVE]: "active",
};

function rulesPanel(api: Api, who: Identity): Panel {
  return panel(
    "author-rules",
    "Split rules and pending changes",
    async (body) => {
      const [platform, mine] = await Promise.all([
        api.admin.listRevenueRules({ scopeKind: RevenueRuleScopeKind.PLATFORM, pageSize: 500 }),
        api.admin.listRevenueRules({ scopeKind: RevenueRuleScopeKind.AUTHOR, scopeValue: who.id, pageSize: 500 }),
      ]);
      const shown = (rs: RevenueRule[]) => rs.filter((r) => RULE_STATE_NAMES[r.state] !== undefined);
      const rules = [...shown(mine.rules), ...shown(platform.rules)];
      const row = (r: RevenueRule) => [
        h("code", { "data-rule": r.ruleId }, r.ruleId.slice(0, 8) + "…"),
        r.scopeKind === RevenueRuleScopeKind.AUTHOR ? "you" : "every author",
        RULE_STATE_NAMES[r.state] ?? "?",
        `${(r.authorBps / 100).toFixed(2)}% / ${(r.platformFeeBps / 100).toFixed(2)}%`,
        r.state === RevenueRuleState.COOLING_DOWN ? timeOf(r.coolingEndTime) : r.state === RevenueRuleState.ACTIVE ? timeOf(r.activateTime) : "after approval and cooling",
        r.description,
      ];
      body.append(
        table(
          "Rules that set your split (a rule for you wins over the platform's; masque rules are not listed)",
          ["Rule", "Applies to", "State", "You / platform", "Active from", "Why"],
          rules.map(row),
          "author-rules-table",
        ),
      );
    },
    describeError,
  );
}

export function authorPanels(api: Api, who: Identity): Panel[] {
  return [earningsPanel(api, who), sessionsPanel(api), rulesPanel(api, who), payoutsPanel(api), catalogPanel(api, who)];
}
