import { describe, expect, it } from "vitest";
import { ConfigError, resolveClientConfig } from "../../clients/sdk/config.js";

describe("client configuration", () => {
  it("defaults to the local daemon's gRPC port, or its HTTP port for the Connect transport", () => {
    expect(resolveClientConfig({ env: {} })).toMatchObject({ endpoint: "http://127.0.0.1:50051", transport: "grpc", token: undefined, timeout_ms: 15_000 });
    expect(resolveClientConfig({ env: { MASQUES_TRANSPORT: "connect" } }).endpoint).toBe("http://127.0.0.1:8080");
  });

  it("options win over the environment, which wins over defaults", () => {
    const env = { MASQUES_ENDPOINT: "http://ledger.internal:50051/", MASQUES_TOKEN: "env-token", MASQUES_TIMEOUT_MS: "2500" };
    expect(resolveClientConfig({ env })).toMatchObject({ endpoint: "http://ledger.internal:50051", token: "env-token", timeout_ms: 2500, attempt_timeout_ms: 2500 });
    expect(resolveClientConfig({ env, token: "opt", endpoint: "https://x:1", timeout_ms: 60_000 })).toMatchObject({
      endpoint: "https://x:1",
      token: "opt",
      timeout_ms: 60_000,
      attempt_timeout_ms: 30_000,
    });
  });

  it("refuses bad values naming the variable", () => {
    expect(() => resolveClientConfig({ env: { MASQUES_ENDPOINT: "127.0.0.1:50051" } })).toThrow(ConfigError);
    expect(() => resolveClientConfig({ env: { MASQUES_ENDPOINT: "127.0.0.1:50051" } })).toThrow(/^MASQUES_ENDPOINT: must be an http/);
    expect(() => resolveClientConfig({ env: { MASQUES_TRANSPORT: "carrier-pigeon" } })).toThrow(/^MASQUES_TRANSPORT/);
    expect(() => resolveClientConfig({ env: { MASQUES_TIMEOUT_MS: "soon" } })).toThrow(/^MASQUES_TIMEOUT_MS/);
  });
});
