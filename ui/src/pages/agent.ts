/**
 * Agent owner page: the wallet (available vs held), open sessions with their accrued price (live:
 * the page refreshes on a timer), ended sessions with each one's cost breakdown (analytics), and
 * deposits, and the spending caps the ledger enforces with what remains of them today (ADR 0110).
 */
import type { SpendingLimit } from "../../../clients/gen/masques/ledger/v1/account_service_pb.js";
import { DepositState } from "../../../clients/gen/masques/ledger/v1/settlement_service_pb.js";
import { SessionStatus } from "../../../clients/gen/masques/ledger/v1/session_service_pb.js";
import { describeError, type Api } from "../api.js";
import type { Identity } from "../auth.js";
import { h, money, panel, table, timeOf, type Panel } from "../dom.js";

function walletPanel(api: Api, who: Identity): Panel {
  return panel(
    "agent-wallet",
    "Wallet",
    async (body) => {
      const r = await api.accounts.getAccount({ account: { ref: { case: "agentWallet", value: who.id } } });
      const b = r.account?.balance;
      const held = b ? BigInt(b.debitsPendingMicro) : 0n;
      body.append(
        h(
          "dl",
          { class: "figures" },
          h("div", {}, h("dt", {}, "Available"), h("dd", {}, money(b ? BigInt(b.availableMicro) : 0n, "wallet-available"))),
          h("div", {}, h("dt", {}, "Held by open sessions"), h("dd", {}, money(held, "wallet-held"))),
          h("div", {}, h("dt", {}, "Balance (posted)"), h("dd", {}, money(b ? BigInt(b.postedMicro) : 0n, "wallet-posted"))),
        ),
      );
    },
    describeError,
  );
}

function openSessionsPanel(api: Api): Panel {
  return panel(
    "agent-open",
    "Open sessions",
    async (body) => {
      const r = await api.sessions.listSessions({ statuses: [SessionStatus.OPEN], pageSize: 100 });
      body.append(
        table(
          "Open sessions with their price so far",
          ["Session", "Masque", "Donned", "Held", "Accrued price", "Input tokens", "Output tokens", "Tool calls"],
          r.sessions.map((s) => [
            h("code", { "data-session": s.sessionId }, s.sessionId.slice(0, 12) + "…"),
            s.masqueName,
            timeOf(s.donTime),
            money(s.holdMicro),
            money(s.priceMicro),
            String(s.usage?.inputTokens ?? 0n),
            String(s.usage?.outputTokens ?? 0n),
            String(s.usage?.toolCalls ?? 0n),
          ]),
          "open-sessions-table",
        ),
      );
    },
    describeError,
  );
}

function historyPanel(api: Api): Panel {
  return panel(
    "agent-history",
    "Session history",
    async (body) => {
      const r = await api.analytics.getAgentSpend({ limit: 100 });
      body.append(
        h(
          "dl",
          { class: "figures" },
          h("div", {}, h("dt", {}, "Spent in the last 90 days"), h("dd", {}, money(r.totalPriceMicro, "spend-total"))),
          h("div", {}, h("dt", {}, "Figures as of"), h("dd", {}, timeOf(r.asOfTime))),
        ),
        table(
          "Ended sessions and where the money went (newest first)",
          ["Session", "Masque", "Status", "Ended", "Held", "Price", "To author", "Platform fee", "Refunded", "Debt", "Tokens in / out", "Tool calls"],
          r.sessions.map((s) => [
            h("code", { "data-session": s.sessionId }, s.sessionId.slice(0, 12) + "…"),
            s.masqueName,
            s.status,
            timeOf(s.endTime),
            money(s.holdMicro),
            money(s.priceMicro),
            money(s.authorMicro),
            money(s.platformMicro),
            money(s.refundMicro),
            money(s.debtMicro),
            `${s.inputTokens} / ${s.outputTokens}`,
            String(s.toolCalls),
          ]),
          "history-table",
        ),
      );
    },
    describeError,
  );
}

function depositsPanel(api: Api): Panel {
  return panel(
    "agent-deposits",
    "Deposits",
    async (body) => {
      const r = await api.settlement.listDeposits({ pageSize: 20 });
      body.append(
        table(
          "Deposits (newest first)",
          ["Deposit", "Chain", "From", "Amount", "Confirmations", "State"],
          r.deposits.map((d) => [
            h("code", {}, d.depositId.slice(0, 12) + "…"),
            d.chainId,
            h("code", {}, d.fromAddress),
            money(d.amountMicro),
            `${d.confirmations} / ${d.finalityDepth}`,
            DepositState[d.state] ?? "?",
          ]),
          "deposits-table",
        ),
      );
    },
    describeError,
  );
}

/** One cap as a row: its limit, what is used today and what remains (the ledger's own figures). */
function capRow(name: string, l: SpendingLimit | undefined, testId: string): HTMLElement[] {
  if (!l || l.unlimited) return [h("span", {}, name), h("span", { "data-testid": `${testId}-limit` }, "No cap"), h("span", {}, "—"), h("span", {}, "—"), h("span", {}, "—")];
  return [
    h("span", {}, name),
    money(l.limitMicro, `${testId}-limit`),
    l.resetTime ? money(l.usedMicro, `${testId}-used`) : h("span", {}, "—"),
    money(l.remainingMicro, `${testId}-remaining`),
    h("span", {}, l.resetTime ? timeOf(l.resetTime) : "per session"),
  ];
}

function capsPanel(api: Api): Panel {
  return panel(
    "agent-caps",
    "Spending caps",
    async (body) => {
      const r = await api.accounts.getSpendingLimits({});
      body.append(
        table(
          "Spending caps and what remains (UTC day)",
          ["Cap", "Limit", "Used today", "Remaining", "Resets"],
          [capRow("Daily", r.daily, "cap-daily"), capRow("Per session", r.perSession, "cap-session")],
          "caps-table",
        ),
      );
    },
    describeError,
  );
}

/** The agent page's panels, in order. */
export function agentPanels(api: Api, who: Identity): Panel[] {
  return [walletPanel(api, who), capsPanel(api), openSessionsPanel(api), historyPanel(api), depositsPanel(api)];
}
