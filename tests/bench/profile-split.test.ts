/**
 * Issue 20 (ADR 0123): the categorizer behind `npm run bench`'s per-call CPU split attributes
 * each busy sample of a V8 CPU profile honestly — a `node:` internal belongs to its caller, a
 * socket/HTTP/2 internal with no caller is transport, PGlite's asynchronous wasm is the control
 * plane, GC and native time are their own, idle is left out, and what is left ("other") is named.
 * The profile is built here, frame by frame, in the shape V8 writes.
 */
import { describe, expect, test } from "vitest";
import { CATEGORIES, microsPerCall, splitProfile, type CpuProfile, type ProfileNode } from "../../bench/profile-categories.js";

const ROOT = "file:///opt/masques";
const src = (p: string) => `${ROOT}/src/${p}`;
const lib = (p: string) => `${ROOT}/node_modules/${p}`;

/** A profile from stacks (outermost frame first) and how many samples each stack gets. */
function profileOf(stacks: [frames: [fn: string, url: string][], samples: number][]): CpuProfile {
  const nodes: ProfileNode[] = [{ id: 1, callFrame: { functionName: "(root)", url: "" }, children: [] }];
  const samples: number[] = [];
  for (const [frames, k] of stacks) {
    let parent = nodes[0]!;
    for (const [fn, url] of frames) {
      let child = (parent.children ?? []).map((id) => nodes[id - 1]!).find((n) => n.callFrame.functionName === fn && n.callFrame.url === url);
      if (!child) {
        child = { id: nodes.length + 1, callFrame: { functionName: fn, url, lineNumber: 9 }, children: [] };
        nodes.push(child);
        parent.children!.push(child.id);
      }
      parent = child;
    }
    for (let i = 0; i < k; i++) samples.push(parent.id);
  }
  return { nodes, samples, timeDeltas: samples.map(() => 250) };
}

describe("splitProfile", () => {
  test("node: internals and nameless natives belong to the project frame that called them, not to transport", () => {
    const split = splitProfile(
      profileOf([
        // the durability log's write: node:fs under src/ledger
        [[["processTicksAndRejections", "node:internal/process/task_queues"], ["flush", src("ledger/embedded/log.ts")], ["writeSync", "node:fs"], ["writeBuffer", ""]], 30],
        // hashing an id: node:crypto under src/domain
        [[["don", src("services/sessions/don.ts")], ["holdId", src("domain/sessions.ts")], ["hash", "node:internal/crypto/hash"]], 20],
        // a verify under the pipeline is authentication, the innermost category wins
        [[["onCall", src("server/pipeline.ts")], ["verify", src("server/auth.ts")], ["jwtVerify", lib("jose/dist/node/esm/jwt/verify.js")], ["verify", "node:internal/crypto/sig"]], 10],
      ]),
    );
    expect(split.busy_samples).toBe(60);
    expect(split.samples.ledger).toBe(30);
    expect(split.samples.service).toBe(20);
    expect(split.samples.authentication).toBe(10);
    expect(split.samples.transport).toBe(0);
    expect(split.share_pct.ledger).toBe(50);
  });

  test("HTTP/2 and socket internals with no project frame are transport; grpc-js and protobuf-es are transport", () => {
    const split = splitProfile(
      profileOf([
        [[["onStreamRead", "node:internal/stream_base_commons"], ["emit", "node:events"]], 5],
        [[["onSessionHeaders", "node:internal/http2/core"], ["sendStatus", lib("@grpc/grpc-js/build/src/server-interceptors.js")]], 7],
        [[["toBinary", lib("@bufbuild/protobuf/dist/esm/to-binary.js")]], 3],
      ]),
    );
    expect(split.samples.transport).toBe(15);
    expect(split.samples.other).toBe(0);
  });

  test("PGlite's asynchronous wasm work is the control plane without its caller; the streamer is analytics; library paths never count as project code", () => {
    const split = splitProfile(
      profileOf([
        [[["processTicksAndRejections", "node:internal/process/task_queues"], ["execProtocol", lib("@electric-sql/pglite/dist/index.js")], ["wasm-function[3552]", "wasm://wasm/025aee86"]], 12],
        // a dependency's own src/services folder is not ours: the caller (src/server) decides
        [[["handle", src("server/grpc.ts")], ["x", lib("some-lib/src/services/thing.js")]], 4],
        // the streamer's ClickHouse inserts (only with --with-streamer) are analytics, not other
        [[["flush", src("streamer/streamer.ts")], ["insert", lib("chdb/index.js")]], 2],
      ]),
    );
    expect(split.samples.analytics).toBe(2);
    expect(split.samples.control_plane).toBe(12);
    expect(split.samples.transport).toBe(4);
    expect(split.samples.service).toBe(0);
  });

  test("idle is left out; GC and (program) are their own; the rest is other and its frames are named", () => {
    const split = splitProfile(
      profileOf([
        [[["(idle)", ""]], 100],
        [[["(garbage collector)", ""]], 6],
        [[["(program)", ""]], 3],
        [[["processTicksAndRejections", "node:internal/process/task_queues"]], 2],
        [[["listOnTimeout", "node:internal/timers"]], 1],
      ]),
    );
    expect(split.busy_samples).toBe(12);
    expect(split.samples.gc).toBe(6);
    expect(split.samples.native).toBe(3);
    expect(split.samples.other).toBe(3);
    expect(split.other_top).toEqual([
      { frame: "processTicksAndRejections node:internal/process/task_queues:10", pct: 16.7 },
      { frame: "listOnTimeout node:internal/timers:10", pct: 8.3 },
    ]);
    expect(split.interval_us).toBe(250);
  });

  test("µs per call: the main thread's µs split by the shares adds up to it", () => {
    const split = splitProfile(
      profileOf([
        [[["don", src("services/sessions/don.ts")]], 1],
        [[["createTransfers", src("ledger/coalescer.ts")]], 2],
        [[["(garbage collector)", ""]], 1],
      ]),
    );
    const us = microsPerCall(split, 200);
    expect(us.service).toBe(50);
    expect(us.ledger).toBe(100);
    expect(us.gc).toBe(50);
    expect(CATEGORIES.reduce((a, c) => a + us[c], 0)).toBe(200);
  });

  test("a sample naming a node the profile does not contain is refused (truncated or foreign file)", () => {
    const p = profileOf([[[["(program)", ""]], 1]]);
    p.samples.push(999);
    expect(() => splitProfile(p)).toThrow(/sample names node 999/);
  });
});
