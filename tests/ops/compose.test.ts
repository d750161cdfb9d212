/**
 * Issue 12: docker-compose.yml and the Dockerfile cannot be run here (no Docker engine), so their
 * invariants are checked by parsing them:
 * - TigerBeetle is the upstream image as published, at the version of tigerbeetle-node, and the
 *   server keeps the image's entrypoint (which runs it under an init process);
 * - one non-zero cluster id everywhere (format, health check, daemon), default and overridden;
 * - the stack creates the daemon's keys itself (a one-shot running `masques-ledger keys init`, a
 *   registered subcommand of the daemon binary, sharing the daemon's volume), and
 *   nothing is mounted from the host, so `docker compose up` needs no Node.js on the host;
 * - the daemon's image leaves out chDB (a Dockerfile target that uninstalls it) since a ClickHouse
 *   server is used;
 * - PostgreSQL with a health check, reached through DATABASE_URL.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { devKeyDir } from "../../src/server/auth.js";
import { commands } from "../../src/cli/commands/index.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const read = (f: string) => readFileSync(path.join(ROOT, f), "utf8");

type Service = {
  image?: string;
  build?: { context?: string; dockerfile?: string; target?: string };
  entrypoint?: string[] | string;
  command?: string[] | string;
  environment?: Record<string, string>;
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  init?: boolean;
  restart?: string;
  ports?: string[];
  secrets?: unknown;
  stop_grace_period?: string;
  env_file?: unknown;
};
type Compose = { services: Record<string, Service>; volumes: Record<string, unknown>; secrets?: unknown };

/** Compose variable interpolation (${VAR}, ${VAR:-default}, ${VAR:?error}, $$) over `env`. */
function interpolate(text: string, env: Record<string, string>): string {
  return text.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:-|:\?)([^}]*))?\}/g, (m, name: string | undefined, op: string | undefined, arg: string | undefined) => {
    if (m === "$$") return "$$";
    const v = env[name!];
    if (v !== undefined && v !== "") return v;
    if (op === ":-") return arg ?? "";
    if (op === ":?") throw new Error(`required variable ${name}: ${arg}`);
    return "";
  });
}

/** Like Compose: parse the YAML (with merge keys), then interpolate every string value. */
function load(env: Record<string, string> = { CLICKHOUSE_PASSWORD: "pw-ch", POSTGRES_PASSWORD: "pw-pg" }): Compose {
  const walk = (v: unknown): unknown =>
    typeof v === "string"
      ? interpolate(v, env)
      : Array.isArray(v)
        ? v.map(walk)
        : v !== null && typeof v === "object"
          ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]))
          : v;
  return walk(parse(read("docker-compose.yml"), { merge: true })) as Compose;
}

const args = (s: Service) => [s.entrypoint, s.command].flat().filter((x): x is string => typeof x === "string").join(" ");
const clusterOf = (text: string) => /--cluster=(\S+)/.exec(text)?.[1];

describe("docker-compose.yml", () => {
  const c = load();
  const daemon = c.services["daemon"]!;
  const env = daemon.environment!;

  it("runs the upstream TigerBeetle image as published, at the client's version", () => {
    const lock = JSON.parse(read("package-lock.json")) as { packages: Record<string, { version: string }> };
    const tbNode = lock.packages["node_modules/tigerbeetle-node"]!.version;
    for (const name of ["tigerbeetle", "tigerbeetle-format"]) {
      const s = c.services[name]!;
      expect(s.image, name).toBe(`ghcr.io/tigerbeetle/tigerbeetle:${tbNode}`);
      expect(s.build, `${name} must not rebuild the image`).toBeUndefined();
    }
    const server = c.services["tigerbeetle"]!;
    // the image's entrypoint (init process + /tigerbeetle) stays: only arguments are given
    expect(server.entrypoint).toBeUndefined();
    expect(server.init, "the image brings its own init").toBeUndefined();
    expect(server.command?.[0]).toBe("start");
    expect(c.services["tigerbeetle-format"]!.restart).toBe("no");
    expect(server.depends_on).toEqual({ "tigerbeetle-format": { condition: "service_completed_successfully" } });
  });

  it("uses one non-zero cluster id for format, health check and daemon (default and overridden)", () => {
    for (const [over, expected] of [[undefined, undefined], ["77", "77"]] as const) {
      const cc = load({ CLICKHOUSE_PASSWORD: "x", POSTGRES_PASSWORD: "y", ...(over ? { TB_CLUSTER_ID: over } : {}) });
      const format = clusterOf(args(cc.services["tigerbeetle-format"]!));
      const health = clusterOf(cc.services["tigerbeetle"]!.healthcheck!.test.join(" "));
      const daemonId = cc.services["daemon"]!.environment!["TB_CLUSTER_ID"];
      expect(format).toMatch(/^\d+$/);
      expect(BigInt(format!)).not.toBe(0n);
      expect([health, daemonId]).toEqual([format, format]);
      if (expected) expect(format).toBe(expected);
    }
  });

  it("creates the daemon's keys itself and mounts nothing from the host (no Node.js needed there)", () => {
    const keys = c.services["keys"]!;
    expect(keys.restart).toBe("no");
    expect(keys.ports).toBeUndefined();
    // `token` never creates keys (issue 12): the one-shot runs the daemon binary's `keys init`
    expect(args(keys)).toBe("node bin/masques-ledger.js keys init");
    expect(commands.map((cmd) => cmd.name)).toContain("keys");
    expect(keys.environment!["MASQUES_DATA_DIR"]).toBe(env["MASQUES_DATA_DIR"]);
    const volumeAt = (s: Service, dir: string) => s.volumes?.find((v) => v.endsWith(`:${dir}`))?.split(":")[0];
    expect(volumeAt(keys, env["MASQUES_DATA_DIR"]!)).toBeDefined();
    expect(volumeAt(keys, env["MASQUES_DATA_DIR"]!)).toBe(volumeAt(daemon, env["MASQUES_DATA_DIR"]!));
    // the daemon trusts exactly the public key the one-shot created (src/server/auth.ts layout)
    expect(env["MASQUES_JWT_PUBLIC_KEYS_FILE"]).toBe(path.posix.join(devKeyDir(env["MASQUES_DATA_DIR"]!), "dev-public.jwks.json"));
    expect(daemon.depends_on!["keys"]).toEqual({ condition: "service_completed_successfully" });
    for (const [name, s] of Object.entries(c.services)) {
      for (const v of s.volumes ?? []) expect(v, `${name} bind-mounts a host path`).not.toMatch(/^[.~/]/);
      expect(s.secrets, name).toBeUndefined();
    }
    expect(c.secrets).toBeUndefined();
    // .env is optional: `docker compose up` works once the two passwords are exported or in .env
    expect(daemon.env_file).toEqual([{ path: ".env", required: false }]);
  });

  it("builds the daemon without the embedded analytics engine, since a ClickHouse server is used", () => {
    expect(env["CLICKHOUSE_URL"]).toMatch(/^http:\/\/clickhouse:8123$/);
    expect(c.services["clickhouse"]).toBeDefined();
    for (const name of ["daemon", "keys"]) expect(c.services[name]!.build?.target, name).toBe("daemon-server");
    expect(daemon.init).toBe(true);
    // drains in-flight calls (MASQUES_SHUTDOWN_GRACE_S, default 10 s) before Docker kills it
    expect(Number.parseInt(daemon.stop_grace_period!, 10)).toBeGreaterThan(10);
  });

  it("runs PostgreSQL for the control plane and hands the daemon DATABASE_URL", () => {
    const pg = c.services["postgres"]!;
    expect(pg.image).toMatch(/^postgres:\d+/);
    expect(pg.healthcheck!.test.join(" ")).toMatch(/pg_isready/);
    const url = new URL(env["DATABASE_URL"]!);
    expect(url.protocol).toBe("postgres:");
    expect(url.hostname).toBe("postgres");
    expect(url.password).toBe("pw-pg");
    expect(`${url.username}/${url.pathname.slice(1)}`).toBe(`${pg.environment!["POSTGRES_USER"]}/${pg.environment!["POSTGRES_DB"]}`);
    expect(daemon.depends_on!["postgres"]).toEqual({ condition: "service_healthy" });
  });

  it("holds no credentials: passwords are required from the environment", () => {
    expect(() => load({})).toThrow(/required variable (CLICKHOUSE|POSTGRES)_PASSWORD/);
    const raw = read("docker-compose.yml");
    expect(raw).toMatch(/POSTGRES_PASSWORD: \$\{POSTGRES_PASSWORD:\?/);
    expect(raw).toMatch(/CLICKHOUSE_PASSWORD: \$\{CLICKHOUSE_PASSWORD:\?/);
    for (const [name, s] of Object.entries(c.services)) {
      for (const dep of Object.keys(s.depends_on ?? {})) expect(c.services[dep], `${name} depends on ${dep}`).toBeDefined();
      for (const v of s.volumes ?? []) expect(c.volumes, `${name}: volume ${v}`).toHaveProperty(v.split(":")[0]!);
    }
    const example = read(".env.example");
    for (const v of ["TB_CLUSTER_ID", "POSTGRES_PASSWORD", "CLICKHOUSE_PASSWORD"]) expect(example).toMatch(new RegExp(`^# ${v}=`, "m"));
  });
});

describe("Dockerfile", () => {
  const text = read("Dockerfile");
  const stages = [...text.matchAll(/^FROM (\S+) AS (\S+)$/gm)].map((m) => ({ from: m[1]!, name: m[2]! }));
  const body = (name: string) => {
    const start = text.indexOf(`AS ${name}\n`);
    const next = text.indexOf("\nFROM ", start);
    return text.slice(start, next < 0 ? undefined : next);
  };

  it("has a daemon-server target whose node_modules have chdb uninstalled", () => {
    expect(stages.map((s) => s.name)).toEqual(expect.arrayContaining(["deps", "deps-server", "runtime", "daemon-server", "daemon"]));
    expect(stages.find((s) => s.name === "deps-server")!.from).toBe("deps");
    expect(body("deps")).toMatch(/RUN npm ci --omit=dev\b/);
    expect(body("deps-server")).toMatch(/npm uninstall --no-save --omit=dev [^\n]*\bchdb\b/);
    expect(body("deps-server")).toMatch(/test ! -e node_modules\/chdb/);
    expect(body("daemon-server")).toMatch(/COPY --from=deps-server \/app\/node_modules \.\/node_modules/);
    expect(body("daemon")).toMatch(/COPY --from=deps \/app\/node_modules \.\/node_modules/);
    // `npm ci --omit=optional` would keep chdb (a regular dependency) and drop esbuild's binary
    expect(text).not.toMatch(/^RUN [^\n]*--omit=optional/m);
    expect(JSON.parse(read("package.json")).dependencies.chdb).toBeDefined();
  });

  it("the default (last) target is the embedded daemon; both run unprivileged with the CLI entrypoint", () => {
    expect(stages.at(-1)!.name).toBe("daemon");
    for (const name of ["daemon", "daemon-server"]) expect(body(name)).toMatch(/^USER node$/m);
    expect(body("runtime")).toMatch(/ENTRYPOINT \["node", "bin\/masques-ledger\.js"\]/);
    expect(text).not.toMatch(/npm install(?! --)/);
  });
});
