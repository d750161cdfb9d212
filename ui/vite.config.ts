// The dashboard's build (issue 19, docs/adr/0121): a static app under /ui/, served by the daemon.
// `npm run build:ui` (run by `npm install` through the root `prepare`) writes ui/dist (git-ignored).
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  base: "/ui/",
  publicDir: false,
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // Every file the page needs comes from the daemon: no CDN, no web fonts from elsewhere.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    target: "es2022",
  },
  server: {
    // `npx vite ui` for UI work: API calls go to a daemon on the default HTTP port.
    proxy: { "/masques.ledger.v1.": "http://127.0.0.1:8080", "/ui/api/": "http://127.0.0.1:8080" },
  },
});
