/**
 * PublishMasque with a malformed price (a sign, more fractional digits than micro-USD allow, more
 * whole digits than an amount may have) is INVALID_ARGUMENT naming the pricing field and its rule,
 * once per field, and nothing is published. Before, the reserve/flat/cap comparison parsed the
 * malformed string anyway and the call failed INTERNAL ("internal error") with a MoneyParseError.
 * The real daemon over native gRPC.
 */
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, expect, test } from "vitest";
import { CatalogService } from "../../clients/gen/masques/ledger/v1/catalog_service_pb.js";
import { BadRequestSchema } from "../../clients/gen/masques/ledger/v1/common_pb.js";
import { startDaemon, type Daemon } from "../support/daemon.js";

let d: Daemon;
let catalog: Client<typeof CatalogService>;
beforeAll(async () => {
  d = await startDaemon({ env: { STREAMER_ENABLED: "false" } });
  const token = await d.token("author", "author-pricey");
  catalog = createClient(
    CatalogService,
    createGrpcTransport({
      baseUrl: `http://${d.grpcAddr}`,
      interceptors: [(next) => (req) => (req.header.set("authorization", `Bearer ${token}`), next(req))],
    }),
  );
});
afterAll(async () => {
  await d?.stop();
});

function yaml(pricing: Record<string, string>): string {
  const lines = Object.entries(pricing).map(([k, v]) => `  ${k}: "${v}"`);
  return `name: pricey\nindex: 4242\nversion: "1.0.0"\nauthor: author-pricey\npricing:\n${lines.join("\n")}\n`;
}

const USD_RULE = 'expected a decimal USD amount with at most 6 fractional digits, e.g. "0.25"';

test.each([
  ["a negative flat price", { flat_per_session: "-0.01", reserve: "1" }, "pricing.flat_per_session"],
  ["a flat price finer than a micro-USD", { flat_per_session: "0.0000001", reserve: "1" }, "pricing.flat_per_session"],
  ["a negative cap", { cap_per_session: "-5", reserve: "1" }, "pricing.cap_per_session"],
  ["a reserve of 20 whole digits", { cap_per_session: "5", reserve: "99999999999999999999" }, "pricing.reserve"],
])("%s is INVALID_ARGUMENT naming the field once; nothing is published", async (_, pricing, field) => {
  let err: ConnectError | undefined;
  try {
    await catalog.publishMasque({ yaml: yaml(pricing) });
  } catch (e) {
    err = ConnectError.from(e);
  }
  expect(err?.code).toBe(Code.InvalidArgument);
  const violations = err!.findDetails(BadRequestSchema)[0]?.fieldViolations ?? [];
  expect(violations.map((v) => [v.field, v.description])).toEqual([[field, USD_RULE]]);
  const listed = await catalog.listMasqueVersions({ masque: "pricey" });
  expect(listed.versions).toEqual([]);
});
