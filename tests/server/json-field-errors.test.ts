/**
 * JSON requests whose field values have the wrong JSON type, are out of their integer type's
 * range, or name an unknown enum value are refused with INVALID_ARGUMENT and a BadRequest naming
 * the field's path and the rule, and nothing moves. Before: protobuf-es's own message without a
 * BadRequest (e.g. `cannot decode field ...UsageEvent.seq from JSON` without the event's index),
 * and an unknown enum name was dropped, so the call ran as if the field were unset.
 * The real daemon over Connect JSON (HTTP/1.1).
 */
import { afterAll, beforeAll, expect, test } from "vitest";
import { startDaemon, type Daemon } from "../support/daemon.js";

let d: Daemon;
let agentToken: string;
let adminToken: string;

interface ConnectErrorBody {
  code?: string;
  message?: string;
  details?: { type?: string; debug?: { fieldViolations?: { field: string; description: string }[] } }[];
}

async function call(token: string, method: string, body: string): Promise<{ status: number; json: ConnectErrorBody & Record<string, unknown> }> {
  const res = await fetch(`http://${d.httpAddr}/masques.ledger.v1.${method}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body,
  });
  return { status: res.status, json: (await res.json()) as ConnectErrorBody & Record<string, unknown> };
}

function violations(body: ConnectErrorBody): { field: string; description: string }[] {
  return body.details?.find((x) => x.type === "masques.ledger.v1.BadRequest")?.debug?.fieldViolations ?? [];
}

async function available(agent: string): Promise<string> {
  const r = await call(adminToken, "AccountService/GetAccount", JSON.stringify({ account: { agentWallet: agent } }));
  expect(r.status).toBe(200);
  const account = r.json.account as { balance?: { availableMicro?: string } };
  return account.balance?.availableMicro ?? "0";
}

beforeAll(async () => {
  d = await startDaemon({ env: { STREAMER_ENABLED: "false" } });
  agentToken = await d.token("agent", "json-al");
  adminToken = await d.token("admin", "json-ops");
  for (const agent of ["json-al", "json-bo"]) {
    const t = await d.token("agent", agent);
    expect((await call(t, "AccountService/OpenAgentWallet", '{"mode":"WALLET_MODE_PREPAID"}')).status).toBe(200);
  }
  const dep = await call(adminToken, "AccountService/Deposit", JSON.stringify({ account: { agentWallet: "json-al" }, amountMicro: "1000", idempotencyKey: "json-fund" }));
  expect(dep.status).toBe(200);
});
afterAll(async () => {
  await d?.stop();
});

test.each([
  ["a negative JSON number", "-5"],
  ["a decimal string past 2^64-1", '"18446744073709551616"'],
])("an amount given as %s is INVALID_ARGUMENT naming amount_micro and the uint64 range; nothing moves", async (_, amount) => {
  const { status, json } = await call(
    agentToken,
    "AccountService/TransferFunds",
    `{"fromAgentId":"json-al","toAgentId":"json-bo","amountMicro":${amount},"idempotencyKey":"json-neg"}`,
  );
  expect(status).toBe(400);
  expect(json.code).toBe("invalid_argument");
  expect(violations(json)).toEqual([{ field: "amount_micro", description: "must be between 0 and 18446744073709551615 (uint64)" }]);
  expect(await available("json-al")).toBe("1000");
  expect(await available("json-bo")).toBe("0");
});

test("a bad value inside a repeated message names its index", async () => {
  const { status, json } = await call(
    agentToken,
    "SessionService/RecordUsage",
    '{"events":[{"sessionId":"0123456789abcdef0123456789abcdef","seq":"1"},{"sessionId":"0123456789abcdef0123456789abcdef","seq":-3}]}',
  );
  expect(status).toBe(400);
  expect(violations(json)).toEqual([{ field: "events[1].seq", description: "must be between 0 and 18446744073709551615 (uint64)" }]);
});

test("a number for a string field, an array for a message field and a page size past uint32 each name the field", async () => {
  const memo = await call(agentToken, "AccountService/TransferFunds", '{"fromAgentId":"json-al","toAgentId":"json-bo","amountMicro":"1","memo":7,"idempotencyKey":"json-memo"}');
  expect(memo.status).toBe(400);
  expect(violations(memo.json)).toEqual([{ field: "memo", description: "must be a JSON string" }]);
  const account = await call(agentToken, "AccountService/GetAccount", '{"account":[]}');
  expect(account.status).toBe(400);
  expect(violations(account.json)).toEqual([{ field: "account", description: "must be a JSON object" }]);
  const page = await call(agentToken, "AccountService/ListPeerTransfers", '{"agentId":"json-al","pageSize":4294967296}');
  expect(page.status).toBe(400);
  expect(violations(page.json)).toEqual([{ field: "page_size", description: "must be between 0 and 4294967295 (uint32)" }]);
  expect(await available("json-al")).toBe("1000");
});

test("an unknown enum name is INVALID_ARGUMENT naming the field, not read as unset", async () => {
  const { status, json } = await call(agentToken, "AccountService/ListPeerTransfers", '{"agentId":"json-al","direction":"PEER_TRANSFER_DIRECTION_BOGUS"}');
  expect(status).toBe(400);
  const v = violations(json);
  expect(v.map((x) => x.field)).toEqual(["direction"]);
  expect(v[0]?.description).toContain("PEER_TRANSFER_DIRECTION_SENT");
  // A known name still works.
  const ok = await call(agentToken, "AccountService/ListPeerTransfers", '{"agentId":"json-al","direction":"PEER_TRANSFER_DIRECTION_SENT"}');
  expect(ok.status).toBe(200);
});
