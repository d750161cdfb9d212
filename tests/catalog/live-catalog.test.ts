/**
 * Issue 16, "Live catalog": authors publish their own masques through CatalogService; a price
 * change is invisible to sessions donned before its notice period ends (the daemon's clock is
 * injected and moved, nothing waits); the operator's folder is re-read on change without a
 * restart, an invalid file is reported (file, field, rule) and skipped while the daemon keeps
 * serving, and a masque defined by a file cannot be published over (the file wins).
 */
import { cpSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CatalogService } from "../../clients/gen/masques/ledger/v1/catalog_service_pb.js";
import { ErrorInfoSchema } from "../../clients/gen/masques/ledger/v1/common_pb.js";
import { startClockDaemon, type ClockDaemon } from "../support/clock-daemon.js";
import { newSessionId } from "../sessions/harness.js";

const NOTICE_S = 3600;
const dir = mkdtempSync(path.join(tmpdir(), "masques-live-"));
let d: ClockDaemon;

const BAD_FLOAT = `name: broken
index: 77
version: "1.0.0"
author: author-bob
pricing:
  flat_per_session: 0.05
  reserve: "1"
`;

function masqueYaml(o: { name: string; index: number; author: string; flat: string; lens?: string }): string {
  return `name: ${o.name}
index: ${o.index}
version: "1.0.0"
ring: player
author: ${o.author}
lens: |
  ${o.lens ?? "Be precise."}
pricing:
  flat_per_session: "${o.flat}"
  reserve: "1"
`;
}

async function catalogAs(kind: "author" | "admin" | "agent", id: string, transport: "grpc" | "connect" = "grpc"): Promise<Client<typeof CatalogService>> {
  const token = await d.token(kind, id);
  const auth: Interceptor = (next) => (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
  const t =
    transport === "grpc"
      ? createGrpcTransport({ baseUrl: `http://${d.daemon.grpcAddr}`, interceptors: [auth] })
      : createConnectTransport({ baseUrl: `http://${d.daemon.httpAddr}`, httpVersion: "1.1", interceptors: [auth] });
  return createClient(CatalogService, t);
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function listedMasques(): Promise<Map<string, bigint>> {
  const admin = await d.as("admin", "ops");
  const r = await admin.sessions.listMasques({ pageSize: 1000 });
  return new Map(r.masques.map((m) => [m.name, m.pricing!.flatPerSessionMicro]));
}

/** Don now and return the session id (doffed later). */
async function don(agent: string, masque: string): Promise<string> {
  const c = await d.as("agent", agent);
  const sid = newSessionId();
  await c.sessions.don({ masque, sessionId: sid });
  return sid;
}

async function doffCharge(agent: string, sid: string): Promise<bigint> {
  const c = await d.as("agent", agent);
  const r = await c.sessions.doff({ sessionId: sid });
  return r.session!.chargedMicro;
}

function reasonOf(err: unknown): string | undefined {
  return err instanceof ConnectError ? err.findDetails(ErrorInfoSchema)[0]?.reason : undefined;
}

beforeAll(async () => {
  cpSync(path.resolve("masques"), dir, { recursive: true });
  // An invalid file present at start-up is skipped, not fatal (ADR 0031 as amended by 0107).
  writeFileSync(path.join(dir, "broken.yaml"), BAD_FLOAT);
  d = await startClockDaemon({
    MASQUES_DIR: dir,
    CATALOG_PRICE_NOTICE_S: String(NOTICE_S),
    CATALOG_RESCAN_MS: "200",
    PLATFORM_FEE_BPS: "1500",
    BILLING_MODE: "live",
  });
  for (const a of ["cat-agent-a", "cat-agent-b", "cat-agent-c", "cat-agent-f"]) await d.fundedAgent(a, 10_000_000n);
}, 180_000);
afterAll(async () => {
  await d?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("live catalog: publish (issue 16)", () => {
  it("a price change is invisible to sessions donned before its notice period ends", async () => {
    const zed = await catalogAs("author", "author-zed");
    const v1 = await zed.publishMasque({ yaml: masqueYaml({ name: "stylist", index: 901, author: "author-zed", flat: "0.10" }) });
    expect(v1.version?.seq).toBe(1);
    // The first version is offered at once.
    expect(v1.version?.effectiveTime).toEqual(v1.version?.publishTime);
    const a = await don("cat-agent-a", "stylist");

    // Over the Connect protocol this time: the same handler on the other transport.
    const zedConnect = await catalogAs("author", "author-zed", "connect");
    const v2 = await zedConnect.publishMasque({ yaml: masqueYaml({ name: "stylist", index: 901, author: "author-zed", flat: "0.30" }) });
    expect(v2.version?.seq).toBe(2);
    expect(v2.version?.priceChanged).toBe(true);
    expect(Number(v2.version!.effectiveTime!.seconds - v2.version!.publishTime!.seconds)).toBe(NOTICE_S);

    // During the notice period new sessions still get the old price, and the catalog shows it.
    expect((await listedMasques()).get("stylist")).toBe(100_000n);
    d.advance(NOTICE_S - 60);
    const b = await don("cat-agent-b", "stylist");
    expect(await doffCharge("cat-agent-b", b)).toBe(100_000n);

    // After it, new sessions get the new price; a session donned before keeps its own.
    d.advance(61);
    expect((await listedMasques()).get("stylist")).toBe(300_000n);
    const c = await don("cat-agent-c", "stylist");
    expect(await doffCharge("cat-agent-c", c)).toBe(300_000n);
    expect(await doffCharge("cat-agent-a", a)).toBe(100_000n);

    // Every version is kept; a lens-only edit applies at once (no price change, no notice).
    const v3 = await zed.publishMasque({ yaml: masqueYaml({ name: "stylist", index: 901, author: "author-zed", flat: "0.30", lens: "Be brief." }) });
    expect(v3.version?.priceChanged).toBe(false);
    expect(v3.version?.effectiveTime).toEqual(v3.version?.publishTime);
    const versions = await zed.listMasqueVersions({ masque: "stylist" });
    expect(versions.versions.map((v) => [v.seq, v.priceChanged])).toEqual([
      [1, false],
      [2, true],
      [3, false],
    ]);
  }, 120_000);

  it("authors publish only their own masques; bad YAML names the field and the rule; the file wins over a published entry", async () => {
    const zed = await catalogAs("author", "author-zed");
    await expect(zed.publishMasque({ yaml: masqueYaml({ name: "other", index: 902, author: "author-kim", flat: "0.10" }) })).rejects.toMatchObject({
      code: Code.PermissionDenied,
    });
    const agent = await catalogAs("agent", "cat-agent-a");
    await expect(agent.publishMasque({ yaml: masqueYaml({ name: "other", index: 902, author: "cat-agent-a", flat: "0.10" }) })).rejects.toMatchObject({
      code: Code.PermissionDenied,
    });
    // Another author cannot take over a published name, nor reuse its index.
    const kim = await catalogAs("author", "author-kim");
    await expect(kim.publishMasque({ yaml: masqueYaml({ name: "stylist", index: 901, author: "author-kim", flat: "0.10" }) })).rejects.toMatchObject({
      code: Code.PermissionDenied,
    });
    const taken = await kim.publishMasque({ yaml: masqueYaml({ name: "kim-one", index: 901, author: "author-kim", flat: "0.10" }) }).catch((e: unknown) => e);
    expect(reasonOf(taken)).toBe("MASQUE_INDEX_TAKEN");

    const bad = (await zed.publishMasque({ yaml: BAD_FLOAT.replace("author-bob", "author-zed") }).catch((e: unknown) => e)) as ConnectError;
    expect(bad.code).toBe(Code.InvalidArgument);
    expect(bad.rawMessage).toContain("pricing.flat_per_session: write decimal prices as quoted strings");

    // "researcher" is a file in MASQUES_DIR: the file wins, and the error says so.
    const grace = await catalogAs("author", "author-grace");
    const shadowed = (await grace.publishMasque({ yaml: masqueYaml({ name: "researcher", index: 2, author: "author-grace", flat: "0.10" }) }).catch((e: unknown) => e)) as ConnectError;
    expect(shadowed.code).toBe(Code.FailedPrecondition);
    expect(reasonOf(shadowed)).toBe("MASQUE_DEFINED_BY_FILE");
    expect(shadowed.rawMessage).toMatch(/researcher\.yaml in MASQUES_DIR.*the file wins/);
  }, 60_000);
});

describe("live catalog: the operator's folder (issue 16)", () => {
  it("an invalid file is reported with file, field and rule and skipped; the daemon keeps serving", async () => {
    const line = d.logs().find((l) => String(l.msg).startsWith("masque file skipped") && String(l.file).endsWith("broken.yaml"));
    expect(line, "the skipped file is logged").toBeDefined();
    expect(String(line!.problem)).toBe('pricing.flat_per_session: write decimal prices as quoted strings, e.g. "0.01" (a YAML number is not exact)');
    const listed = await listedMasques();
    expect(listed.has("broken")).toBe(false);
    expect(listed.has("researcher")).toBe(true);
    const sid = await don("cat-agent-f", "code-reviewer");
    expect(await doffCharge("cat-agent-f", sid)).toBeGreaterThan(0n);
  }, 60_000);

  it("a new, changed or removed file is picked up without a restart", async () => {
    writeFileSync(path.join(dir, "hot.yaml"), masqueYaml({ name: "hot", index: 950, author: "author-ops", flat: "0.20" }));
    await until("the new file", async () => ((await listedMasques()).get("hot") === 200_000n ? true : undefined));
    const sid = await don("cat-agent-f", "hot");
    expect(await doffCharge("cat-agent-f", sid)).toBe(200_000n);

    writeFileSync(path.join(dir, "hot.yaml"), masqueYaml({ name: "hot", index: 950, author: "author-ops", flat: "0.40" }));
    await until("the changed price", async () => ((await listedMasques()).get("hot") === 400_000n ? true : undefined));

    // Breaking a valid file skips it (reported) and keeps serving the rest.
    writeFileSync(path.join(dir, "hot.yaml"), "name: hot\nindex: [unclosed\n");
    await until("the broken file skipped", async () => ((await listedMasques()).has("hot") ? undefined : true));
    await until("the report", async () => d.logs().find((l) => String(l.msg).startsWith("masque file skipped") && String(l.file).endsWith("hot.yaml")));

    // Fixing the bad file brings it in; removing it takes it out.
    writeFileSync(path.join(dir, "broken.yaml"), BAD_FLOAT.replace("0.05", '"0.05"'));
    await until("the fixed file", async () => ((await listedMasques()).get("broken") === 50_000n ? true : undefined));
    unlinkSync(path.join(dir, "broken.yaml"));
    await until("the removed file", async () => ((await listedMasques()).has("broken") ? undefined : true));
  }, 120_000);
});
