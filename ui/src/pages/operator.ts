/**
 * Operator page (admin token): open sessions, holds closest to expiry and streamer lag, the last
 * reconciliation, platform revenue over time. Governance, webhook and rail queues join here as
 * those services land.
 */
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

/** The operator page's panels, in order. */
export function operatorPanels(api: Api): Panel[] {
  return [openSessionsPanel(api), streamerPanel(api), reconciliationPanel(api), revenuePanel(api)];
}
