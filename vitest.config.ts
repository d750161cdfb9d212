import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["tests/**/*.test.ts"],
    // Builds the client package's CLI if its sources changed since the last build.
    // pglite-template.global.ts: the empty PGlite cluster test daemons copy instead of running initdb.
    globalSetup: ["tests/clients/global-setup.ts", "tests/support/pglite-template.global.ts"],
    pool: "forks",
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
