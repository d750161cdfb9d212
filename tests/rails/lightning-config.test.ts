/**
 * Lightning rail configuration: parsed from the environment with zod, every error names the
 * variable, the macaroon and certificate are read from files and never echoed, plain http only on
 * loopback, and every variable is documented in .env.example.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  LightningRailConfigError,
  lightningRailConfigDocs,
  loadLightningRailConfig,
  loadLndCredentials,
} from "../../src/rails/lightning/config.js";
import { feeLimitMsat } from "../../src/rails/lightning/lnd-rest.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "ln-config-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const env = (over: Record<string, string | undefined> = {}): NodeJS.ProcessEnv => ({
  LND_REST_URL: "https://lnd.invalid:8080",
  LND_MACAROON_FILE: "/run/secrets/lnd.macaroon",
  LND_TLS_CERT_FILE: "/run/secrets/lnd-tls.cert",
  LND_NETWORK: "mainnet",
  ...over,
});

function issuesOf(fn: () => unknown): { variable: string; message: string }[] {
  try {
    fn();
  } catch (e) {
    if (e instanceof LightningRailConfigError) return e.issues;
    throw e;
  }
  throw new Error("expected LightningRailConfigError");
}

describe("loadLightningRailConfig", () => {
  test("defaults apply and the URL is reduced to its origin", () => {
    const c = loadLightningRailConfig(env({ LND_REST_URL: "https://lnd.invalid:8080/" }));
    expect(c).toMatchObject({
      rest_url: "https://lnd.invalid:8080",
      network: "mainnet",
      max_routing_fee_ppm: 5_000,
      max_routing_fee_msat: 10_000_000n,
      invoice_expiry_s: 900,
      min_invoice_remaining_s: 60,
      payment_timeout_s: 60,
      poll_interval_ms: 2_000,
    });
  });

  test("missing required variables are each named", () => {
    const issues = issuesOf(() => loadLightningRailConfig({}));
    expect(issues.map((i) => i.variable).sort()).toEqual(["LND_MACAROON_FILE", "LND_NETWORK", "LND_REST_URL"]);
    expect(issues.every((i) => i.message === "required")).toBe(true);
  });

  test("plain http is refused except on loopback", () => {
    expect(issuesOf(() => loadLightningRailConfig(env({ LND_REST_URL: "http://lnd.invalid:8080" })))[0]).toMatchObject({
      variable: "LND_REST_URL",
      message: expect.stringMatching(/plain http is allowed only for 127\.0\.0\.1/),
    });
    expect(loadLightningRailConfig(env({ LND_REST_URL: "http://127.0.0.1:8080", LND_TLS_CERT_FILE: undefined })).rest_url).toBe("http://127.0.0.1:8080");
  });

  test("https needs the TLS certificate file", () => {
    expect(issuesOf(() => loadLightningRailConfig(env({ LND_TLS_CERT_FILE: "" })))).toEqual([
      { variable: "LND_TLS_CERT_FILE", message: "required with an https LND_REST_URL" },
    ]);
  });

  test("bad values name the variable and the rule", () => {
    const issues = issuesOf(() =>
      loadLightningRailConfig(env({ LND_NETWORK: "bitcoin", LND_MAX_ROUTING_FEE_PPM: "0", LND_MAX_ROUTING_FEE_MSAT: "-1", LND_INVOICE_EXPIRY_S: "1.5" })),
    );
    const by = Object.fromEntries(issues.map((i) => [i.variable, i.message]));
    expect(by.LND_NETWORK).toMatch(/expected one of mainnet, testnet/);
    expect(by.LND_MAX_ROUTING_FEE_PPM).toMatch(/must be >= 1/);
    expect(by.LND_MAX_ROUTING_FEE_MSAT).toMatch(/non-negative integer/);
    expect(by.LND_INVOICE_EXPIRY_S).toMatch(/positive integer/);
  });

  test("every variable is documented in .env.example", async () => {
    const example = await readFile(path.join(import.meta.dirname, "../../.env.example"), "utf8");
    for (const [name, doc] of Object.entries(lightningRailConfigDocs)) {
      expect(example).toContain(`# ${name}=${doc.default}`);
      expect(example).toContain(doc.doc);
    }
  });
});

describe("loadLndCredentials", () => {
  test("the macaroon comes out hex; the certificate must be PEM; contents are never echoed", async () => {
    const mac = path.join(dir, "admin.macaroon");
    const cert = path.join(dir, "tls.cert");
    await writeFile(mac, Buffer.from([0x02, 0x01, 0xff, 0x10]));
    await writeFile(cert, "not a certificate SECRET-LOOKING");
    const c = loadLightningRailConfig(env({ LND_MACAROON_FILE: mac, LND_TLS_CERT_FILE: cert }));
    const err = (() => {
      try {
        loadLndCredentials(c);
      } catch (e) {
        return e as LightningRailConfigError;
      }
      throw new Error("expected a refusal");
    })();
    expect(err.issues[0]).toMatchObject({ variable: "LND_TLS_CERT_FILE", message: `${cert} is not a PEM certificate` });
    expect(err.message).not.toContain("SECRET-LOOKING");
    await writeFile(cert, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
    expect(loadLndCredentials(c).macaroon_hex).toBe("0201ff10");
  });

  test("an unreadable macaroon file is named with its error code", () => {
    const c = loadLightningRailConfig(env({ LND_MACAROON_FILE: path.join(dir, "missing"), LND_TLS_CERT_FILE: undefined, LND_REST_URL: "http://localhost:8080" }));
    expect(issuesOf(() => loadLndCredentials(c))).toEqual([{ variable: "LND_MACAROON_FILE", message: `cannot read ${path.join(dir, "missing")} (ENOENT)` }]);
  });
});

test("the fee limit is the lower of ppm × amount and the absolute cap", () => {
  const config = { max_routing_fee_ppm: 5_000, max_routing_fee_msat: 10_000_000n };
  expect(feeLimitMsat(config, 1_000_000n)).toBe(5_000n);
  expect(feeLimitMsat(config, 10_000_000_000n)).toBe(10_000_000n);
  expect(feeLimitMsat(config, 199n)).toBe(0n); // floor: a tiny payout gets no routing budget
});
