// Builds the dashboard (ui/ -> ui/dist) with Vite. Run by the root `prepare` (so `npm install` and
// `npm ci` produce it) and by `npm run build:ui`. An install without dev dependencies (`--omit=dev`:
// the daemon alone) has no Vite: say so and succeed; the daemon then answers /ui/ with a 503 that
// says how to build it.
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
try {
  require.resolve("vite/package.json");
} catch {
  console.warn("masques-ledger: not building the dashboard (vite not installed: dev dependencies omitted). Run `npm run build:ui` after a full install.");
  process.exit(0);
}
const { build } = await import("vite");
await build({ configFile: fileURLToPath(new URL("./vite.config.ts", import.meta.url)), logLevel: "warn" });
console.log("masques-ledger: dashboard built in ui/dist");
