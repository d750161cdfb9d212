// Bundles the CLI (cli/main.ts and the commands it loads on demand) into dist/cli/ with esbuild:
// one ES module per command plus shared chunks, dependencies included. Start-up time is the
// plugin's hot path (a hook runs `heartbeat --quiet` on every prompt): resolving and loading a few
// bundled files is about twice as fast as a few hundred separate modules (bench/cli.ts, ADR 0063).
// The SDK itself is compiled by tsc (dist/sdk, dist/gen, with type declarations).
import { build } from "esbuild";
import { rm } from "node:fs/promises";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const outdir = `${root}dist/cli`;
await rm(outdir, { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints: ["cli/main.ts"],
  outdir,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: "linked",
  // Bundled CommonJS dependencies call require() for Node built-ins; give ES modules one.
  banner: { js: 'import { createRequire as __masquesCreateRequire } from "node:module"; const require = __masquesCreateRequire(import.meta.url);' },
  logLevel: "warning",
});
