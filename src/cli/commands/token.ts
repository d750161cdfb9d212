/**
 * `masques-ledger token`: mint a bearer JWT with the local dev key pair, for local development
 * against a loopback daemon started without MASQUES_JWT_PUBLIC_KEYS. Prints only the token.
 *
 * It finds the key pair exactly where the daemon does ($MASQUES_DATA_DIR/keys, default ./data, or
 * --data-dir) and never creates one: a token signed with keys the daemon does not use is refused
 * before it is printed (issue 12: `token` run in another directory used to create a new key pair
 * there, and the daemon then rejected its tokens as "signed by an unknown key").
 */
import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import type { CliCommand } from "../command.js";
import { ExitCode } from "../command.js";
import { ConfigError, loadConfig } from "../../config.js";
import { createVerifier, DEFAULT_SCOPES, PRINCIPAL_KINDS, SCOPES, mintToken, parsePublicKeys, readDevKeys } from "../../server/auth.js";
import { RAIL_NAMES } from "../../domain/codes.js";
import type { PrincipalKind, Scope } from "../../server/principal.js";

/**
 * One help line per principal kind with the scopes `token` gives it without --scopes, built from
 * DEFAULT_SCOPES so the help cannot drift from what is minted (issue 18: the collector kind was
 * missing). A kind with no default scope says what it may still do.
 */
function defaultScopesHelp(): string {
  const width = Math.max(...PRINCIPAL_KINDS.map((k) => k.length));
  return PRINCIPAL_KINDS.map((kind) => {
    const scopes = DEFAULT_SCOPES[kind];
    const text = scopes.length > 0 ? scopes.join(",") : kind === "collector" ? "(none: exports OTLP to /v1/logs and /v1/metrics, stored, never billed)" : "(none)";
    return `                ${kind.padEnd(width)}  ${text}`;
  }).join("\n");
}

const help = `Usage: masques-ledger token --kind <agent|author|rail|admin|collector> --id <id> [--scopes a,b] [--ttl-s N] [--data-dir DIR]

Mints a bearer JWT signed with the daemon's dev key pair and prints it. The key pair is the one a
loopback \`serve\` without MASQUES_JWT_PUBLIC_KEYS creates on its first start in
$MASQUES_DATA_DIR/keys; \`token\` looks for it in the same place (MASQUES_DATA_DIR, default ./data
relative to the current directory) or in --data-dir, and never creates one. It refuses (exit 1)
when there is no key pair there, or when the daemon's configuration (MASQUES_JWT_PUBLIC_KEYS or
MASQUES_JWT_PUBLIC_KEYS_FILE) would not accept the token.

  --kind      principal kind: agent, author, rail, admin or collector (OTLP forwarder: stores, never bills)
  --id        principal id (agent / author / admin id; for rail: ${RAIL_NAMES.join(", ")})
  --scopes    comma-separated, from: ${SCOPES.join(", ")}
              default scopes by kind (when --scopes is not given):
${defaultScopesHelp()}
  --ttl-s     lifetime in seconds (default 3600)
  --data-dir  the daemon's data directory (default: $MASQUES_DATA_DIR, else ./data)

Uses MASQUES_DATA_DIR, MASQUES_JWT_ISSUER, MASQUES_JWT_AUDIENCE and MASQUES_JWT_PUBLIC_KEYS(_FILE)
from the environment, like the daemon.

Example (in the directory where you ran \`npm start\`):
  export MASQUES_TOKEN=$(masques-ledger token --kind agent --id alice)
  masques-ledger-client balance`;

export const tokenCommand: CliCommand = {
  name: "token",
  summary: "Mint a dev bearer token with the daemon's local dev key pair",
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
          "data-dir": { type: "string" },
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
    const dataDirFlag = values["data-dir"]?.trim();
    if (values["data-dir"] !== undefined && !dataDirFlag) {
      process.stderr.write("token: --data-dir must name a directory\n");
      return ExitCode.usage;
    }
    let config;
    try {
      config = loadConfig(dataDirFlag ? { ...process.env, MASQUES_DATA_DIR: dataDirFlag } : process.env);
    } catch (err) {
      if (err instanceof ConfigError) {
        process.stderr.write(`token: ${err.message}\n`);
        return ExitCode.usage;
      }
      throw err;
    }
    const from = dataDirFlag ? "--data-dir" : process.env["MASQUES_DATA_DIR"] ? "MASQUES_DATA_DIR" : "the default ./data";
    const keys = await readDevKeys(config.dataDir);
    if (!keys) {
      return refuse(
        `no dev key pair in ${config.dataDir}/keys (from ${from}): this is not where the daemon keeps its keys, or it has never started there.`,
        `The daemon creates the key pair in $MASQUES_DATA_DIR/keys on its first loopback start (\`npm start\`; MASQUES_DATA_DIR defaults to ./data where it was started). Run \`masques-ledger token\` with the same MASQUES_DATA_DIR (or from the same directory), or pass --data-dir <the daemon's data directory>. Nothing was created.`,
      );
    }
    const token = await mintToken(keys.privateJwk, {
      kind,
      id,
      scopes,
      ttlS: Number(ttlText),
      issuer: config.MASQUES_JWT_ISSUER,
      audience: config.MASQUES_JWT_AUDIENCE,
    });
    // The daemon trusts MASQUES_JWT_PUBLIC_KEYS(_FILE) when set, else this dev key pair: verify the
    // token exactly as it would before printing it.
    let trusted: { text: string; source: string };
    if (config.MASQUES_JWT_PUBLIC_KEYS) {
      trusted = { text: config.MASQUES_JWT_PUBLIC_KEYS, source: "MASQUES_JWT_PUBLIC_KEYS" };
    } else if (config.MASQUES_JWT_PUBLIC_KEYS_FILE) {
      try {
        trusted = { text: await readFile(config.MASQUES_JWT_PUBLIC_KEYS_FILE, "utf8"), source: `MASQUES_JWT_PUBLIC_KEYS_FILE (${config.MASQUES_JWT_PUBLIC_KEYS_FILE})` };
      } catch (err) {
        process.stderr.write(`token: MASQUES_JWT_PUBLIC_KEYS_FILE: cannot read ${config.MASQUES_JWT_PUBLIC_KEYS_FILE}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}\n`);
        return ExitCode.usage;
      }
    } else {
      trusted = { text: JSON.stringify(keys.publicJwks), source: `the dev key pair in ${keys.dir}` };
    }
    try {
      const verifier = createVerifier(parsePublicKeys(trusted.text), trusted.source, { issuer: config.MASQUES_JWT_ISSUER, audience: config.MASQUES_JWT_AUDIENCE });
      await verifier.authenticate(`Bearer ${token}`);
    } catch (err) {
      return refuse(
        `the daemon would reject this token: it verifies tokens with ${trusted.source}, which does not accept the dev key pair in ${keys.dir} (${(err as Error).message.split(":")[0]}).`,
        trusted.source.startsWith("MASQUES_JWT_PUBLIC_KEYS")
          ? "A daemon configured with MASQUES_JWT_PUBLIC_KEYS takes tokens from the issuer holding the matching private key, not from `masques-ledger token`; unset it for a local dev daemon."
          : "The key files look damaged: stop the daemon, remove the keys directory, and start it again to create a new pair.",
      );
    }
    process.stdout.write(token + "\n");
    return ExitCode.ok;
  },
};

function refuse(message: string, hint: string): number {
  process.stderr.write(`✗ token: ${message}\n  ${hint}\n`);
  return ExitCode.user_error;
}
