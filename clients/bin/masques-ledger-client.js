#!/usr/bin/env node
// Entry point of `masques-ledger-client`, the binary the masques plugin calls. Runs the compiled
// JavaScript in ../dist (built by `npm run build` in this package: run by `npm install`/`npm ci`
// in the repository root and by `npm pack`), never TypeScript: start-up time is the plugin's hot
// path (issue 12).
import { main } from "../dist/cli/main.js";

const code = await main(process.argv.slice(2));
if (code !== undefined) process.exitCode = code;
