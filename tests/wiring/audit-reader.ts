/**
 * Test support (ADR 0109): the audit entries about one subject, read through AdminService
 * ListAuditEntries as the admin `ops` of a clock daemon.
 */
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AdminService, type AuditEntry } from "../../clients/gen/masques/ledger/v1/admin_service_pb.js";
import type { ClockDaemon } from "../support/clock-daemon.js";

/** Entries by `actor_id` whose subject is `subject`, oldest first (first page of 499). */
export async function auditEntriesAbout(d: ClockDaemon, actor_id: string, subject: string): Promise<AuditEntry[]> {
  const token = await d.token("admin", "ops");
  const admin = createClient(
    AdminService,
    createGrpcTransport({
      baseUrl: `http://${d.daemon.grpcAddr}`,
      interceptors: [(next) => (req) => (req.header.set("authorization", `Bearer ${token}`), next(req))],
    }),
  );
  return (await admin.listAuditEntries({ actorId: actor_id, pageSize: 499 })).entries.filter((e) => e.subject === subject);
}
