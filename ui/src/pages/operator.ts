/**
 * Operator page (admin token): open sessions, holds closest to expiry and streamer lag, the last
 * reconciliation, platform revenue over time, and the queues: revenue rules waiting for approval
 * or cooling down (ADR 0100), webhook deliveries pending or dead-lettered (ADR 0105), and payouts
 * queued / claimed / submitted per rail.
 */
import { RevenueRuleScopeKind, RevenueRuleState } from "../../../clients/gen/masques/ledger/v1/admin_service_pb.js";
import { Rail } from "../../../clients/gen/masques/ledger/v1/common_pb.js";
import { PayoutState, type Payout } from "../../../clients/gen/masques/ledger/v1/settlement_service_pb.js";
import { WebhookDeliveryStatus, type WebhookDelivery } from "../../../clients/gen/masques/ledger/v1/webhook_service_pb.js";
import { TimeBucket } from "../../../clients/gen/masques/ledger/v1/analytics_service_pb.js";
import { SessionStatus } from "../../../clients/gen/masques/ledger/v1/session_service_pb.js";
import { describeError, type Api } from "../api.js";
import { barChart } from "../chart.js";
import { dayOf, h, money, panel, radioGroup, table, timeOf, type Panel } from "../dom.js";

function streamerPanel(api: Api): Panel {
  return panel(
    "operator-streamer",
    "Streamer and holds close to expiry",
    async (body) => {
      const s = await api.analytics.getStreamerStatus({ expiringHoldsLimit: 20 });
      body.append(
        h(
          "dl",
          { class: "figures" },
          h("div", {}, h("dt", {}, "Copy"), h("dd", {}, s.sink)),
          h("div", {}, h("dt", {}, "Caught up"), h("dd", { "data-testid": "streamer-caught-up" }, s.caughtUp ? "yes" : "no")),
          h("div", {}, h("dt", {}, "Lag"), h("dd", {}, `${s.timeBehindMs} ms, ${s.eventsBehind} events`)),
          h("div", {}, h("dt", {}, "Copied up to"), h("dd", {}, timeOf(s.cursorTime))),
          h("div", {}, h("dt", {}, "Open sessions (copy)"), h("dd", {}, String(s.openSessions))),
        ),
        table(
          "Open holds, soonest deadline first",
          ["Hold", "Session / payout", "Held", "Deadline"],
          s.expiringHolds.map((x) => [h("code", {}, x.holdId.slice(0, 12) + "…"), h("code", {}, x.tagId.slice(0, 12) + "…"), money(x.amountMicro), timeOf(x.deadlineTime)]),
          "expiring-holds-table",
        ),
      );
    },
    describeError,
  );
}

function openSessionsPanel(api: Api): Panel {
  return panel(
    "operator-open",
    "Open sessions",
    async (body) => {
      const r = await api.sessions.listSessions({ statuses: [SessionStatus.OPEN], pageSize: 100 });
      body.append(
        table(
          "Open sessions (ledger)",
          ["Session", "Masque", "Author", "Donned", "Deadline", "Held", "Accrued"],
          r.sessions.map((s) => [
            h("code", {}, s.sessionId.slice(0, 12) + "…"),
            s.masqueName,
            s.author,
            timeOf(s.donTime),
            timeOf(s.deadlineTime),
            money(s.holdMicro),
            money(s.priceMicro),
          ]),
          "operator-open-table",
        ),
      );
    },
    describeError,
  );
}

function reconciliationPanel(api: Api): Panel {
  return panel(
    "operator-reconciliation",
    "Last reconciliation",
    async (body) => {
      const r = await api.admin.getReconciliation({});
      const rec = r.reconciliation;
      if (!rec) {
        body.append(h("p", {}, `No reconciliation has finished since the daemon started. Next scheduled: ${timeOf(r.nextRunAt)}.`));
        return;
      }
      body.append(
        h("p", { "data-testid": "reconciliation-result" }, rec.ok ? "No drift." : rec.error ? `Failed: ${rec.error}` : `Drift found (${rec.findings.length} findings).`),
        h("p", {}, `Finished ${timeOf(rec.finishedAt)}; ${rec.ledgerTransfers} ledger transfers, ${rec.accounts} accounts, ${rec.sessions} sessions compared.`),
        table("Checks", ["Check", "Result", "Detail"], rec.checks.map((c) => [c.name, c.ok ? "ok" : "DRIFT", c.detail])),
      );
    },
    describeError,
  );
}

function revenuePanel(api: Api): Panel {
  let bucket: TimeBucket = TimeBucket.DAY;
  const p: Panel = panel(
    "operator-revenue",
    "Platform revenue",
    async (body) => {
      const r = await api.analytics.getPlatformRevenue({ bucket });
      const labels = r.points.map((x) => dayOf(x.bucketStart));
      body.append(
        h("dl", { class: "figures" }, h("div", {}, h("dt", {}, "Platform fees, last 90 days"), h("dd", {}, money(r.totalPlatformMicro, "revenue-total")))),
        barChart("Platform fees and authors' shares per period", labels, [
          { label: "Platform fees", values: r.points.map((x) => x.platformMicro) },
          { label: "Authors' shares", values: r.points.map((x) => x.authorMicro) },
        ]),
        table(
          "Revenue per period",
          ["Period from", "Sessions", "Platform fees", "Authors' shares"],
          r.points.map((x) => [dayOf(x.bucketStart), String(x.sessions), money(x.platformMicro), money(x.authorMicro)]),
        ),
      );
    },
    describeError,
    {
      before: radioGroup("revenue-bucket", "Group by", [[TimeBucket.DAY, "Day"], [TimeBucket.WEEK, "Week"]] as const, bucket, (b) => {
        bucket = b;
        void p.refresh(true);
      }),
    },
  );
  return p;
}

/** "MASQUE code-reviewer", "AUTHOR author-ada", "PLATFORM". */
export function ruleScopeLabel(kind: RevenueRuleScopeKind, value: string): string {
  const name = RevenueRuleScopeKind[kind] ?? "?";
  return value === "" ? name : `${name} ${value}`;
}

function governancePanel(api: Api): Panel {
  return panel(
    "operator-governance",
    "Governance queue",
    async (body) => {
      const [pending, cooling] = await Promise.all([
        api.admin.listRevenueRules({ state: RevenueRuleState.PENDING_APPROVAL, pageSize: 100 }),
        api.admin.listRevenueRules({ state: RevenueRuleState.COOLING_DOWN, pageSize: 100 }),
      ]);
      const rules = [...pending.rules, ...cooling.rules];
      body.append(
        table(
          "Revenue rules waiting for a second admin or cooling down",
          ["Rule", "State", "Applies to", "Author / platform (bps)", "Created by", "Approved by", "Activates", "Why"],
          rules.map((r) => [
            h("code", { "data-rule": r.ruleId }, r.ruleId),
            r.state === RevenueRuleState.PENDING_APPROVAL ? "pending approval" : "cooling down",
            ruleScopeLabel(r.scopeKind, r.scopeValue),
            `${r.authorBps} / ${r.platformFeeBps}`,
            r.createdBy,
            r.approvedBy || "—",
            r.coolingEndTime ? timeOf(r.coolingEndTime) : "after approval and cooling",
            r.description,
          ]),
          "governance-table",
        ),
      );
    },
    describeError,
  );
}

function webhookPanel(api: Api): Panel {
  return panel(
    "operator-webhooks",
    "Webhook queue",
    async (body) => {
      const { endpoints } = await api.webhooks.listWebhookEndpoints({});
      const queued: [string, WebhookDelivery][] = [];
      for (const e of endpoints.slice(0, 50)) {
        for (const status of [WebhookDeliveryStatus.PENDING, WebhookDeliveryStatus.DEAD]) {
          const r = await api.webhooks.listWebhookDeliveries({ endpointId: e.endpointId, status, pageSize: 20 });
          for (const d of r.deliveries) queued.push([e.url, d]);
        }
      }
      const count = (s: WebhookDeliveryStatus) => queued.filter(([, d]) => d.status === s).length;
      body.append(
        h(
          "dl",
          { class: "figures" },
          h("div", {}, h("dt", {}, "Endpoints"), h("dd", {}, String(endpoints.length))),
          h("div", {}, h("dt", {}, "Pending"), h("dd", { "data-testid": "webhooks-pending" }, String(count(WebhookDeliveryStatus.PENDING)))),
          h("div", {}, h("dt", {}, "Dead-lettered"), h("dd", { "data-testid": "webhooks-dead" }, String(count(WebhookDeliveryStatus.DEAD)))),
        ),
        table(
          "Deliveries pending or dead-lettered (up to 20 of each per endpoint)",
          ["Delivery", "Endpoint", "Event", "State", "Attempts", "Next attempt", "Last error"],
          queued.map(([url, d]) => [
            h("code", {}, d.deliveryId),
            url,
            d.eventType,
            d.status === WebhookDeliveryStatus.DEAD ? "dead-lettered" : "pending",
            String(d.attempts),
            d.nextAttemptTime ? timeOf(d.nextAttemptTime) : "—",
            d.history.at(-1)?.error ?? "",
          ]),
          "webhooks-table",
        ),
      );
    },
    describeError,
  );
}

const IN_FLIGHT = [PayoutState.REQUESTED, PayoutState.CLAIMED, PayoutState.SUBMITTED] as const;

function railQueuesPanel(api: Api): Panel {
  return panel(
    "operator-rails",
    "Rail queues",
    async (body) => {
      const r = await api.settlement.listPayouts({ states: [...IN_FLIGHT], pageSize: 1000 });
      const byRail = new Map<Rail, Payout[]>();
      for (const p of r.payouts) byRail.set(p.rail, [...(byRail.get(p.rail) ?? []), p]);
      const rows = [...byRail.entries()].map(([rail, ps]) => {
        const of = (s: PayoutState) => ps.filter((p) => p.state === s);
        const total = ps.reduce((a, p) => a + (p.quote?.amountMicro ?? 0n), 0n);
        return [Rail[rail] ?? "?", String(of(PayoutState.REQUESTED).length), String(of(PayoutState.CLAIMED).length), String(of(PayoutState.SUBMITTED).length), money(total)];
      });
      body.append(
        table("Payouts in flight per rail", ["Rail", "Queued", "Claimed", "Submitted", "Amount held"], rows, "rail-queues-table"),
        r.nextPageToken !== "" ? h("p", {}, "More than 1000 payouts in flight: the figures above are the newest 1000.") : h("span", {}),
      );
    },
    describeError,
  );
}

/** The operator page's panels, in order. */
export function operatorPanels(api: Api): Panel[] {
  return [openSessionsPanel(api), streamerPanel(api), governancePanel(api), railQueuesPanel(api), webhookPanel(api), reconciliationPanel(api), revenuePanel(api)];
}
