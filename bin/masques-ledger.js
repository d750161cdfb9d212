#!/usr/bin/env node
// Entry point of the `masques-ledger` CLI and daemon. The project runs TypeScript directly
// (no build step): tsx's ESM loader is registered in-process, then the CLI is loaded.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../src/cli/main.ts");
const code = await main(process.argv.slice(2));
if (code !== undefined) process.exitCode = code;
