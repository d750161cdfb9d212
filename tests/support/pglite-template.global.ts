/**
 * vitest globalSetup: the empty PGlite cluster test daemons copy (see pglite-template.ts), named to
 * every test process in MASQUES_TEST_PGLITE_TEMPLATE. It is kept between runs under
 * node_modules/.cache, keyed by the installed PGlite version (a new PGlite makes a new one), so
 * even a one-file run pays initdb at most once per install. Made in a temporary directory and
 * renamed into place, so concurrent runs never see a half-made template.
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createPgliteTemplate, TEMPLATE_ENV } from "./pglite-template.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export default async function setup(): Promise<void> {
  if (process.env[TEMPLATE_ENV] === "off") return; // measuring the suite without the template
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "node_modules/@electric-sql/pglite/package.json"), "utf8")) as { version: string };
  const cache = path.join(ROOT, "node_modules/.cache/masques-tests");
  const dir = path.join(cache, `pglite-${pkg.version}`);
  if (!fs.existsSync(path.join(dir, "pgdata", "PG_VERSION"))) {
    fs.mkdirSync(cache, { recursive: true });
    const tmp = fs.mkdtempSync(path.join(cache, "making-"));
    await createPgliteTemplate(tmp);
    try {
      fs.renameSync(tmp, dir);
    } catch {
      fs.rmSync(tmp, { recursive: true, force: true }); // another run made it first
    }
  }
  process.env[TEMPLATE_ENV] = path.join(dir, "pgdata");
}
