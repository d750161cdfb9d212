/**
 * HTTP/1.1 requests that node:http refuses before any handler runs still get an answer: a header
 * block over MASQUES_MAX_METADATA_BYTES is 431 with a Connect RESOURCE_EXHAUSTED error naming the
 * limit (as on HTTP/2), a request node:http cannot parse is 400 INVALID_ARGUMENT; before, the
 * connection was reset with no answer at all. The real daemon over a raw TCP socket.
 */
import net from "node:net";
import { afterAll, beforeAll, expect, test } from "vitest";
import { startDaemon, type Daemon } from "../support/daemon.js";

const BOUND_MS = 30_000;
const MAX_METADATA_BYTES = 8192;

let d: Daemon;
beforeAll(async () => {
  d = await startDaemon({ env: { STREAMER_ENABLED: "false", MASQUES_MAX_METADATA_BYTES: String(MAX_METADATA_BYTES) } });
});
afterAll(async () => {
  await d?.stop();
});

/** Send `raw` on a fresh connection; resolve with everything received once the server closes. */
function exchange(raw: string): Promise<string> {
  const i = d.httpAddr.lastIndexOf(":");
  const socket = net.connect(Number(d.httpAddr.slice(i + 1)), d.httpAddr.slice(0, i));
  let data = "";
  socket.on("data", (c: Buffer) => (data += c.toString("latin1")));
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no close within ${BOUND_MS} ms; received ${JSON.stringify(data)}`));
    }, BOUND_MS);
    socket.on("error", () => {});
    socket.once("close", () => {
      clearTimeout(timer);
      resolve(data);
    });
    socket.once("connect", () => socket.write(raw));
  });
}

function parse(answer: string): { status: number; body: { code?: string; message?: string; details?: { debug?: { reason?: string } }[] } } {
  const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(answer)?.[1]);
  const body = answer.slice(answer.indexOf("\r\n\r\n") + 4);
  return { status, body: body ? (JSON.parse(body) as ReturnType<typeof parse>["body"]) : {} };
}

test("a header block over MASQUES_MAX_METADATA_BYTES is answered 431 RESOURCE_EXHAUSTED naming the limit", async () => {
  const answer = await exchange(
    "POST /masques.ledger.v1.AccountService/GetAccount HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n" +
      `authorization: Bearer ${"a".repeat(4 * MAX_METADATA_BYTES)}\r\ncontent-length: 2\r\n\r\n{}`,
  );
  const { status, body } = parse(answer);
  expect(status).toBe(431);
  expect(body.code).toBe("resource_exhausted");
  expect(body.message).toContain("MASQUES_MAX_METADATA_BYTES");
  expect(body.message).toContain(String(MAX_METADATA_BYTES));
  expect(body.details?.[0]?.debug?.reason).toBe("METADATA_TOO_LARGE");
});

test("a request node:http cannot parse is answered 400 INVALID_ARGUMENT, and the port keeps serving", async () => {
  const { status, body } = parse(await exchange("NOT A REQUEST\r\n\r\n"));
  expect(status).toBe(400);
  expect(body.code).toBe("invalid_argument");
  expect(body.details?.[0]?.debug?.reason).toBe("MALFORMED_REQUEST");
  const health = await fetch(`http://${d.httpAddr}/healthz`);
  expect(health.status).toBe(200);
});
