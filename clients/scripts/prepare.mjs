// Run by the repository root's `prepare` (so `npm install` / `npm ci` build the client package).
// Builds clients/dist with `npm run build` in this workspace. An install without dev dependencies
// (`--omit=dev`: the daemon alone, e.g. in a container) has no TypeScript or esbuild and needs no
// client build: say so and succeed instead of failing the whole install.
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const clients = fileURLToPath(new URL("..", import.meta.url));
const require = createRequire(import.meta.url);
const missing = ["typescript", "esbuild"].filter((m) => {
  try {
    require.resolve(`${m}/package.json`);
    return false;
  } catch {
    return true;
  }
});
if (missing.length > 0) {
  console.warn(`@masques/ledger-client: not building the client CLI (${missing.join(", ")} not installed: dev dependencies omitted). Run \`npm run build\` after a full install.`);
} else {
  execFileSync(process.platform === "win32" ? "npm.cmd" : "npm", ["run", "build"], { cwd: clients, stdio: "inherit" });
}
