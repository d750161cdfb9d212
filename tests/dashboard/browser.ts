/**
 * Test support for the dashboard's browser tests: Debian's Chromium (never a downloaded browser)
 * driven by playwright-core, and a fresh dashboard build when its sources changed.
 *
 * CHROMIUM_PATH names the executable (default /usr/bin/chromium; `.ci/run` installs Debian's
 * `chromium` package). The flags keep Chromium off the network it would otherwise try to reach
 * (without them it hangs on a closed network) and map the test host name `rebind.test` to
 * 127.0.0.1, which is what a DNS-rebinding attacker's name would resolve to.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type BrowserContext } from "playwright-core";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const ARTIFACTS = path.join(ROOT, "tests/dashboard/artifacts");
/** A name that resolves to 127.0.0.1 inside the test browser only (DNS rebinding stand-in). */
export const REBIND_HOST = "rebind.test";

function newestMtime(p: string): number {
  const st = statSync(p);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs;
  for (const e of readdirSync(p)) newest = Math.max(newest, newestMtime(path.join(p, e)));
  return newest;
}

/** Build ui/dist (`npm run build:ui`) unless it is newer than every source it is built from. */
export function ensureDashboardBuilt(): void {
  const index = path.join(ROOT, "ui/dist/index.html");
  const sources = ["ui/src", "ui/index.html", "ui/vite.config.ts", "clients/gen", "clients/sdk/money.ts"].map((s) => path.join(ROOT, s));
  if (existsSync(index) && statSync(index).mtimeMs >= Math.max(...sources.map(newestMtime))) return;
  execFileSync(process.execPath, [path.join(ROOT, "ui/build.mjs")], { cwd: ROOT, stdio: "inherit" });
}

export interface TestBrowser {
  /** The browser's one context; each page (tab) has its own sessionStorage, so its own sign-in. */
  context: BrowserContext;
  close(): Promise<void>;
}

/** Launch one headless Chromium for a test file (a fresh --user-data-dir, removed on close). */
export async function launchChromium(): Promise<TestBrowser> {
  const executablePath = process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium";
  if (!existsSync(executablePath)) {
    throw new Error(`no Chromium at ${executablePath}: install Debian's chromium package (apt-get install -y chromium) or set CHROMIUM_PATH`);
  }
  const profile = mkdtempSync(path.join(tmpdir(), "masques-chromium-"));
  // playwright passes the profile as --user-data-dir (it refuses the flag in `args`).
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    timeout: 60_000,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      `--host-resolver-rules=MAP ${REBIND_HOST} 127.0.0.1`,
    ],
    viewport: { width: 1280, height: 900 },
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
