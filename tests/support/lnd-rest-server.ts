/**
 * A stand-in for LND's REST API in front of one real LDK node (tests/support/ldk-nodes.ts), so
 * the production client (src/rails/lightning/lnd-rest.ts) is exercised end to end over real HTTP
 * with real Lightning payments. Test support only, never imported by src/.
 *
 * IT IS NOT LND. It speaks only the subset the client uses, with LND's paths, JSON shapes
 * (snake_case, int64 as strings, bytes as base64, enums as names), its macaroon header and its
 * newline-delimited `{"result"|"error"}` streams, as documented in LND's API reference:
 *   GET /v1/getinfo · POST /v1/invoices · GET /v1/invoice/{r_hash_str}
 *   POST /v2/router/send · GET /v2/router/track/{payment_hash (base64url)}
 * LND rules it mirrors: one payment per payment hash (a hash that succeeded or is in flight is
 * refused with gRPC code 6 ALREADY_EXISTS; a failed one may be tried again); an unpaid invoice
 * past its expiry reads CANCELED; unknown hashes are gRPC code 5 NOT_FOUND. Times come from the
 * harness's chain clock (LDK has no other). Listens on 127.0.0.1:0, plain http.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import bolt11 from "bolt11";
import type { LdkNode, LdkPair, OutgoingPayment } from "./ldk-nodes.js";

const BODY_MAX_BYTES = 64 * 1024;

export interface LndStandIn {
  /** http://127.0.0.1:<port> */
  readonly url: string;
  /** Requests served, by "METHOD path-pattern" (to show what the client did, e.g. that no send happened). */
  readonly calls: Map<string, number>;
  close(): Promise<void>;
}

/** LDK failure names → LND's PaymentFailureReason. */
function failureReason(ldkFailure: string | null): string {
  const f = ldkFailure ?? "";
  if (/RouteNotFound|RetriesExhausted/.test(f)) return "FAILURE_REASON_NO_ROUTE";
  if (/RecipientRejected|UnknownRequiredFeatures/.test(f)) return "FAILURE_REASON_INCORRECT_PAYMENT_DETAILS";
  if (/PaymentExpired/.test(f)) return "FAILURE_REASON_TIMEOUT";
  return "FAILURE_REASON_ERROR";
}

function paymentJson(p: OutgoingPayment): Record<string, unknown> {
  return {
    payment_hash: p.payment_hash_hex,
    value: String(p.amount_msat / 1000n),
    value_sat: String(p.amount_msat / 1000n),
    value_msat: String(p.amount_msat),
    payment_preimage: p.preimage_hex ?? "0".repeat(64),
    payment_request: p.payment_request,
    status: p.status,
    fee: String(p.fee_msat / 1000n),
    fee_sat: String(p.fee_msat / 1000n),
    fee_msat: String(p.fee_msat),
    creation_date: String(p.created_at_s),
    creation_time_ns: String(BigInt(p.created_at_s) * 1_000_000_000n),
    htlcs: [],
    payment_index: String(p.payment_index),
    failure_reason: p.status === "FAILED" ? failureReason(p.failure) : "FAILURE_REASON_NONE",
  };
}

function grpcErr(code: number, message: string, http_code: number): Record<string, unknown> {
  return { code, message, details: [], http_code, http_status: "" };
}

/** Serve LND's REST subset for `node` of `pair`, requiring `macaroon_hex` in Grpc-Metadata-macaroon. */
export async function startLndStandIn(pair: LdkPair, node: LdkNode, macaroon_hex: string): Promise<LndStandIn> {
  const calls = new Map<string, number>();
  const count = (k: string) => calls.set(k, (calls.get(k) ?? 0) + 1);

  const unary = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  };
  const streamLine = (res: ServerResponse, msg: unknown) => res.write(JSON.stringify(msg) + "\n");

  async function readBody(req: IncomingMessage): Promise<Record<string, unknown>> {
    let size = 0;
    const chunks: Buffer[] = [];
    for await (const c of req as AsyncIterable<Buffer>) {
      size += c.length;
      if (size > BODY_MAX_BYTES) throw new Error("body too large");
      chunks.push(c);
    }
    const text = Buffer.concat(chunks).toString("utf8");
    return text ? (JSON.parse(text) as Record<string, unknown>) : {};
  }

  function invoiceJson(hash_hex: string): Record<string, unknown> | null {
    const inv = node.invoices.get(hash_hex);
    if (!inv) return null;
    const expired = pair.chain_time_s >= inv.created_at_s + inv.expiry_s;
    const state = inv.settled ? "SETTLED" : expired ? "CANCELED" : "OPEN";
    return {
      memo: inv.memo,
      r_preimage: inv.settled ? Buffer.from(inv.settled.preimage_hex, "hex").toString("base64") : "",
      r_hash: Buffer.from(hash_hex, "hex").toString("base64"),
      value: String(inv.amount_msat / 1000n),
      value_msat: String(inv.amount_msat),
      settled: inv.settled !== null,
      creation_date: String(inv.created_at_s),
      settle_date: String(inv.settled?.settled_at_s ?? 0),
      payment_request: inv.payment_request,
      expiry: String(inv.expiry_s),
      add_index: String(inv.add_index),
      amt_paid: String((inv.settled?.amount_msat ?? 0n) / 1000n),
      amt_paid_sat: String((inv.settled?.amount_msat ?? 0n) / 1000n),
      amt_paid_msat: String(inv.settled?.amount_msat ?? 0n),
      state,
      htlcs: [],
    };
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://stand-in");
    const method = req.method ?? "GET";
    if (req.headers["grpc-metadata-macaroon"] !== macaroon_hex) {
      count("unauthenticated");
      return unary(res, 500, grpcErr(2, "verification failed: signature mismatch after caveat verification", 500));
    }
    if (method === "GET" && url.pathname === "/v1/getinfo") {
      count("GET /v1/getinfo");
      return unary(res, 200, {
        identity_pubkey: node.node_id_hex,
        alias: `ldk-${node.name}`,
        block_height: node.chan_man.current_best_block().get_height(),
        synced_to_chain: true,
        chains: [{ chain: "bitcoin", network: "regtest" }],
      });
    }
    if (method === "POST" && url.pathname === "/v1/invoices") {
      count("POST /v1/invoices");
      const body = await readBody(req);
      const value_msat = BigInt(String(body.value_msat ?? "0"));
      const expiry_s = Number(body.expiry ?? 86_400);
      const inv = pair.createInvoice(node, value_msat, String(body.memo ?? ""), expiry_s);
      return unary(res, 200, {
        r_hash: Buffer.from(inv.payment_hash_hex, "hex").toString("base64"),
        payment_request: inv.payment_request,
        add_index: String(inv.add_index),
        payment_addr: "",
      });
    }
    const invMatch = /^\/v1\/invoice\/([0-9a-f]{64})$/.exec(url.pathname);
    if (method === "GET" && invMatch) {
      count("GET /v1/invoice");
      const j = invoiceJson(invMatch[1]!);
      return j ? unary(res, 200, j) : unary(res, 404, grpcErr(5, "unable to locate invoice", 404));
    }
    const trackMatch = /^\/v2\/router\/track\/([A-Za-z0-9_-]+=*)$/.exec(url.pathname);
    if (method === "GET" && trackMatch) {
      count("GET /v2/router/track");
      const hash_hex = Buffer.from(trackMatch[1]!, "base64url").toString("hex");
      const p = node.payments.get(hash_hex);
      res.writeHead(200, { "content-type": "application/json" });
      if (!p) streamLine(res, { error: grpcErr(5, "payment isn't initiated", 404) });
      else streamLine(res, { result: paymentJson(p) });
      return void res.end();
    }
    if (method === "POST" && url.pathname === "/v2/router/send") {
      count("POST /v2/router/send");
      const body = await readBody(req);
      const pr = String(body.payment_request ?? "");
      const fee_limit_msat = BigInt(String(body.fee_limit_msat ?? "0"));
      res.writeHead(200, { "content-type": "application/json" });
      let hash_hex: string;
      try {
        hash_hex = String(bolt11.decode(pr).tagsObject.payment_hash);
      } catch (e) {
        streamLine(res, { error: grpcErr(2, `invalid payment request: ${(e as Error).message}`, 500) });
        return void res.end();
      }
      const prior = node.payments.get(hash_hex);
      if (prior?.status === "SUCCEEDED") {
        streamLine(res, { error: grpcErr(6, "invoice is already paid", 409) });
        return void res.end();
      }
      if (prior?.status === "IN_FLIGHT") {
        streamLine(res, { error: grpcErr(6, "payment is in transition", 409) });
        return void res.end();
      }
      streamLine(res, {
        result: { payment_hash: hash_hex, value_msat: "0", status: "IN_FLIGHT", fee_msat: "0", failure_reason: "FAILURE_REASON_NONE" },
      });
      await new Promise((r) => setImmediate(r));
      const p = pair.pay(node, pr, { fee_limit_msat });
      streamLine(res, { result: paymentJson(p) });
      return void res.end();
    }
    count("unknown");
    return unary(res, 404, grpcErr(12, `unknown path ${method} ${url.pathname}`, 404));
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) unary(res, 500, grpcErr(2, (e as Error).message, 500));
      else res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((e) => (e ? reject(e) : resolve()));
      }),
  };
}
