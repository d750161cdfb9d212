/**
 * `masques-ledger token`: mint a bearer JWT with the local dev key pair (for loopback daemons
 * started without MASQUES_JWT_PUBLIC_KEYS). Prints only the token on stdout.
 */
import { parseArgs } from "node:util";
import type { CliCommand } from "../command.js";
import { ExitCode } from "../command.js";
import { ConfigError, loadConfig } from "../../config.js";
import { DEFAULT_SCOPES, PRINCIPAL_KINDS, SCOPES, loadOrCreateDevKeys, mintToken } from "../../server/auth.js";
import { RAIL_NAMES } from "../../domain/codes.js";
import type { PrincipalKind, Scope } from "../../server/principal.js";

const help = `Usage: masques-ledger token --kind <agent|author|rail|admin> --id <id> [--scopes a,b] [--ttl-s N]

Mints a bearer JWT signed with the dev key pair in $MASQUES_DATA_DIR/keys (created if missing;
the same key pair a loopback \`serve\` without MASQUES_JWT_PUBLIC_KEYS trusts). Prints the token.

  --kind     principal kind: agent, author, rail or admin
  --id       principal id (agent / author / admin id; for rail: ${RAIL_NAMES.join(", ")})
  --scopes   comma-separated, from: ${SCOPES.join(", ")}
             (default: agent/author ledger:read,ledger:write; rail ledger:read,rail:settle;
              admin ledger:read,ledger:write,admin)
  --ttl-s    lifetime in seconds (default 3600)

Uses MASQUES_DATA_DIR, MASQUES_JWT_ISSUER and MASQUES_JWT_AUDIENCE from the environment.

Example:
  export TOKEN=$(masques-ledger token --kind agent --id alice)
  grpcurl -plaintext -H "authorization: Bearer $TOKEN" 127.0.0.1:50051 list`;

export const tokenCommand: CliCommand = {
  name: "token",
  summary: "Mint a dev bearer token (local dev key pair)",
  help,
  async run(argv) {
    let values;
    try {
      values = parseArgs({
        args: argv,
        options: {
          kind: { type: "string" },
          id: { type: "string" },
          scopes: { type: "string" },
          "ttl-s": { type: "string" },
        },
        strict: true,
        allowPositionals: false,
      }).values;
    } catch (err) {
      process.stderr.write(`token: ${(err as Error).message}\n${help}\n`);
      return ExitCode.usage;
    }
    const kind = PRINCIPAL_KINDS.find((k) => k === values.kind);
    if (!kind) {
      process.stderr.write(`token: --kind must be one of ${PRINCIPAL_KINDS.join(", ")}\n`);
      return ExitCode.usage;
    }
    const id = values.id?.trim();
    if (!id) {
      process.stderr.write("token: --id is required\n");
      return ExitCode.usage;
    }
    if (kind === "rail" && !RAIL_NAMES.some((r) => r === id)) {
      process.stderr.write(`token: a rail id must be one of ${RAIL_NAMES.join(", ")}\n`);
      return ExitCode.usage;
    }
    let scopes: Scope[] = DEFAULT_SCOPES[kind as PrincipalKind];
    if (values.scopes !== undefined) {
      scopes = [];
      for (const s of values.scopes.split(",").map((x) => x.trim()).filter(Boolean)) {
        const scope = SCOPES.find((x) => x === s);
        if (!scope) {
          process.stderr.write(`token: unknown scope "${s}" (known: ${SCOPES.join(", ")})\n`);
          return ExitCode.usage;
        }
        scopes.push(scope);
      }
    }
    const ttlText = values["ttl-s"] ?? "3600";
    if (!/^\d+$/.test(ttlText) || Number(ttlText) < 1) {
      process.stderr.write("token: --ttl-s must be a positive integer (seconds)\n");
      return ExitCode.usage;
    }
    let config;
    try {
      config = loadConfig();
    } catch (err) {
      if (err instanceof ConfigError) {
        process.stderr.write(`token: ${err.message}\n`);
        return ExitCode.usage;
      }
      throw err;
    }
    const keys = await loadOrCreateDevKeys(config.dataDir);
    const token = await mintToken(keys.privateJwk, {
      kind,
      id,
      scopes,
      ttlS: Number(ttlText),
      issuer: config.MASQUES_JWT_ISSUER,
      audience: config.MASQUES_JWT_AUDIENCE,
    });
    process.stdout.write(token + "\n");
    return ExitCode.ok;
  },
};
