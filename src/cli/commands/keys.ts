/**
 * `masques-ledger keys init`: create the daemon's JWT key pair in `<data>/keys` when there is none
 * (idempotent), for deployments where the daemon does not listen on loopback and so never creates
 * dev keys itself (docker-compose's `keys` one-shot). It uses the same code as a loopback `serve`
 * (`loadOrCreateDevKeys` in src/server/auth.ts) and never overwrites or replaces existing keys:
 * tokens already minted stay valid.
 */
import { access, chmod } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import type { CliCommand } from "../command.js";
import { ExitCode } from "../command.js";
import { ConfigError, loadConfig } from "../../config.js";
import { devKeyDir, loadOrCreateDevKeys, readDevKeys } from "../../server/auth.js";

/** File names inside `<data>/keys` (as written by loadOrCreateDevKeys). */
const PUBLIC_JWKS_FILE = "dev-public.jwks.json";
const PRIVATE_JWK_FILE = "dev-private.jwk.json";

const help = `Usage: masques-ledger keys init [--data-dir DIR]

Creates the daemon's JWT key pair (Ed25519) in <data>/keys when it is missing: directory mode 0700,
private key (dev-private.jwk.json) mode 0600, public JWKS (${PUBLIC_JWKS_FILE}). Prints the path of
the public JWKS, which the daemon trusts through MASQUES_JWT_PUBLIC_KEYS_FILE. When a key pair is
already there it changes nothing and exits 0; it never overwrites keys. Mint tokens from the pair
with \`masques-ledger token\` (same data directory).

  --data-dir  the daemon's data directory (default: $MASQUES_DATA_DIR, else ./data)

Exit codes: 0 created or already present, 1 a half key pair is there (not touched), 2 usage.`;

export const keysCommand: CliCommand = {
  name: "keys",
  summary: "Create the daemon's JWT key pair in <data>/keys if missing (keys init)",
  help,
  async run(argv) {
    let parsed;
    try {
      parsed = parseArgs({ args: argv, options: { "data-dir": { type: "string" } }, strict: true, allowPositionals: true });
    } catch (err) {
      process.stderr.write(`keys: ${(err as Error).message}\n${help}\n`);
      return ExitCode.usage;
    }
    if (parsed.positionals.length !== 1 || parsed.positionals[0] !== "init") {
      process.stderr.write(`keys: expected the subcommand \`init\`\n${help}\n`);
      return ExitCode.usage;
    }
    const dataDirFlag = parsed.values["data-dir"]?.trim();
    if (parsed.values["data-dir"] !== undefined && !dataDirFlag) {
      process.stderr.write("keys: --data-dir must name a directory\n");
      return ExitCode.usage;
    }
    let dataDir: string;
    try {
      dataDir = loadConfig(dataDirFlag ? { ...process.env, MASQUES_DATA_DIR: dataDirFlag } : process.env).dataDir;
    } catch (err) {
      if (err instanceof ConfigError) {
        process.stderr.write(`keys: ${err.message}\n`);
        return ExitCode.usage;
      }
      throw err;
    }
    const dir = devKeyDir(dataDir);
    const publicPath = path.join(dir, PUBLIC_JWKS_FILE);
    let existing;
    try {
      existing = await readDevKeys(dataDir);
    } catch (err) {
      return refuse(`cannot read the key pair in ${dir}: ${(err as Error).message}`);
    }
    if (existing) {
      process.stdout.write(`key pair already present in ${dir}; nothing changed\npublic JWKS: ${publicPath}\n`);
      return ExitCode.ok;
    }
    // A half pair (one file without the other) is never completed or replaced: a new public half
    // would not match the private key tokens were minted with.
    for (const file of [PUBLIC_JWKS_FILE, PRIVATE_JWK_FILE]) {
      const present = await access(path.join(dir, file)).then(() => true, () => false);
      if (present) {
        return refuse(`${dir} holds only part of a key pair (${file} without its other half); nothing was changed. Remove the keys directory to create a new pair (tokens minted with the old one stop working).`);
      }
    }
    await loadOrCreateDevKeys(dataDir);
    // mkdir's mode applies only to a directory it creates (and is masked by the umask): make sure.
    await chmod(dir, 0o700);
    process.stdout.write(`created a key pair in ${dir}\npublic JWKS: ${publicPath}\n`);
    return ExitCode.ok;
  },
};

function refuse(message: string): number {
  process.stderr.write(`✗ keys init: ${message}\n`);
  return ExitCode.user_error;
}
