/**
 * vitest global setup: the CLI tests run the client package's built binary (clients/dist), as the
 * plugin does. Rebuild it when a client source is newer than the build, so `npx vitest run` after
 * an edit never tests stale JavaScript (`npm ci` / `npm install` build it in the first place).
 */
import { execFileSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const CLIENTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../clients");

function newestMtime_ms(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime_ms(p) : statSync(p).mtimeMs);
  }
  return newest;
}

export default function setup(): void {
  let built_ms = 0;
  try {
    built_ms = statSync(path.join(CLIENTS, "dist/cli/main.js")).mtimeMs;
  } catch {
    built_ms = 0;
  }
  const sources_ms = Math.max(
    ...["cli", "sdk", "gen", "scripts"].map((d) => newestMtime_ms(path.join(CLIENTS, d))),
    statSync(path.join(CLIENTS, "package.json")).mtimeMs,
  );
  if (built_ms >= sources_ms) return;
  execFileSync("npm", ["run", "build", "--silent"], { cwd: CLIENTS, stdio: "inherit" });
}
