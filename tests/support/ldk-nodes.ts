/**
 * Two real Lightning nodes in this process, for the Lightning rail tests (test support only,
 * never imported by src/). Each node is LDK 0.1 compiled to WebAssembly (npm `lightningdevkit`):
 * a real ChannelManager, ChainMonitor and PeerManager. The nodes talk BOLT8 (noise) over an
 * in-memory byte queue, open a real channel, and move real HTLCs with real preimages.
 *
 * What is simulated: the bitcoin chain. `mineBlock` builds an 80-byte header linked to the
 * previous one and hands it (and the funding transaction, whose input is fake) to every node's
 * Confirm interfaces. LDK-wasm has no wall clock: a node's notion of "now" is the highest block
 * header time it has seen, so the harness owns a chain clock (`chain_time_s`) that only moves when
 * a test mines a block with `advance_s`; nothing here reads Date.now() after start-up.
 *
 * Everything is synchronous: bytes between the nodes are queued and delivered by `pump()`, which
 * runs until no bytes, events or deferred actions are left (bounded: PUMP_ROUNDS_MAX).
 *
 * Written for this project after reading the scouting recipe in shared/rails/ln/spike-ldk.mjs.
 */
import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import * as ldk from "lightningdevkit";

const PUMP_ROUNDS_MAX = 500;
/** LDK accepts block header times up to two hours ahead; its expiry checks allow that much slop. */
export const LDK_HEADER_TIME_SLOP_S = 7_200;

const sha256 = (b: Uint8Array): Buffer => createHash("sha256").update(b).digest();
const sha256d = (b: Uint8Array): Buffer => sha256(sha256(b));
const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

let wasmReady: Promise<void> | null = null;
/** Load the LDK WebAssembly module once per process. */
export function initLdk(): Promise<void> {
  if (!wasmReady) {
    const require = createRequire(import.meta.url);
    const wasm = readFileSync(require.resolve("lightningdevkit/liblightningjs.wasm"));
    wasmReady = ldk.initializeWasmFromBinary(wasm);
  }
  return wasmReady;
}

/** An invoice this node issued, and what became of it. */
export interface IssuedInvoice {
  readonly payment_hash_hex: string;
  readonly payment_request: string;
  readonly amount_msat: bigint;
  readonly memo: string;
  /** Invoice timestamp (chain clock, s) and its expiry (s). */
  readonly created_at_s: number;
  readonly expiry_s: number;
  readonly add_index: number;
  /** Set once the node claimed the HTLC(s) for this invoice (PaymentClaimed). */
  settled: { amount_msat: bigint; preimage_hex: string; settled_at_s: number } | null;
}

/** An outgoing payment this node made, keyed by payment hash (one payment per hash, like LND). */
export interface OutgoingPayment {
  readonly payment_hash_hex: string;
  readonly payment_request: string;
  readonly amount_msat: bigint;
  readonly created_at_s: number;
  readonly payment_index: number;
  status: "IN_FLIGHT" | "SUCCEEDED" | "FAILED";
  preimage_hex: string | null;
  fee_msat: bigint;
  /** LDK's PaymentFailureReason or RetryableSendFailure name, when FAILED. */
  failure: string | null;
}

/** One LDK node and the bookkeeping the LND stand-in needs. */
export interface LdkNode {
  readonly name: string;
  readonly node_id_hex: string;
  readonly chan_man: ldk.ChannelManager;
  readonly chain_monitor: ldk.ChainMonitor;
  readonly pm: ldk.PeerManager;
  readonly invoices: Map<string, IssuedInvoice>;
  readonly payments: Map<string, OutgoingPayment>;
  /** Raw LDK events not yet taken by the harness. */
  events: ldk.Event[];
  /** While true, incoming payments are held (HTLC locked, neither claimed nor failed): "in flight". */
  holding: boolean;
  /** Preimages (or, when unknown, hashes) of payments held while `holding`. */
  readonly held: { payment_hash: Uint8Array; preimage: Uint8Array | null }[];
}

interface Wire {
  a: LdkNode;
  b: LdkNode;
  toA: Uint8Array[];
  toB: Uint8Array[];
  sa: ldk.SocketDescriptor;
  sb: ldk.SocketDescriptor;
}

/**
 * Two connected nodes with one funded, confirmed channel from `a` to `b`. `a` is the daemon's
 * node (payouts go out from it, deposits come in to it); `b` is everyone else.
 */
export class LdkPair {
  readonly network = ldk.Network.LDKNetwork_Regtest;
  readonly a: LdkNode;
  readonly b: LdkNode;
  /** Header time of the chain tip (s). LDK's only clock. */
  chain_time_s: number;
  private tip: Uint8Array;
  private height = 0;
  private readonly nodes: LdkNode[] = [];
  private readonly mempool: Uint8Array[] = [];
  private readonly wires: Wire[] = [];
  private readonly deferred: (() => void)[] = [];
  private seed = 1;
  private nextIndex = 1;

  private constructor(start_time_s: number) {
    this.chain_time_s = start_time_s;
    this.tip = ldk.BestBlock.constructor_from_network(this.network).get_block_hash();
    this.a = this.makeNode("a");
    this.b = this.makeNode("b");
  }

  /**
   * Start both nodes, connect them, open a channel of `capacity_sat` from a to b (pushing
   * `push_msat` to b so b can pay a too), and confirm it to LDK's default depth (6).
   */
  static async open(opts: { capacity_sat: bigint; push_msat: bigint; start_time_s?: number }): Promise<LdkPair> {
    await initLdk();
    const pair = new LdkPair(opts.start_time_s ?? Math.floor(Date.now() / 1000));
    pair.connect(pair.a, pair.b);
    pair.pump();
    const open = pair.a.chan_man.create_channel(pair.b.chan_man.get_our_node_id(), opts.capacity_sat, opts.push_msat, 42n, null, null);
    if (!open.is_ok()) throw new Error("create_channel failed");
    pair.pump();
    const funding = pair.mempool.shift();
    if (!funding) throw new Error("no funding transaction was broadcast");
    pair.mineBlock({ txs: [funding] });
    for (let i = 1; i < 6; i++) pair.mineBlock();
    if (!pair.channel(pair.a).get_is_usable()) throw new Error("channel not usable after 6 confirmations");
    return pair;
  }

  /** The one channel of `n`. */
  channel(n: LdkNode): ldk.ChannelDetails {
    const chans = n.chan_man.list_channels();
    if (chans.length !== 1) throw new Error(`${n.name}: expected 1 channel, found ${chans.length}`);
    return chans[0]!;
  }

  /** What `n` could send now (msat), per LDK. */
  outboundMsat(n: LdkNode): bigint {
    return this.channel(n).get_outbound_capacity_msat();
  }

  /** Mine one block on top of the tip, advancing the chain clock by `advance_s` (default 1). */
  mineBlock(opts: { txs?: Uint8Array[]; advance_s?: number } = {}): void {
    const txs = opts.txs ?? [];
    this.chain_time_s += opts.advance_s ?? 1;
    const h = new Uint8Array(80);
    const dv = new DataView(h.buffer);
    dv.setUint32(0, 0x20000000, true);
    h.set(this.tip, 4);
    h.set(txs.length ? sha256d(txs[0]!) : new Uint8Array(32), 36);
    dv.setUint32(68, this.chain_time_s, true);
    dv.setUint32(72, 0x207fffff, true);
    dv.setUint32(76, this.height, true);
    this.height += 1;
    this.tip = sha256d(h);
    for (const n of this.nodes) {
      for (const c of [n.chan_man.as_Confirm(), n.chain_monitor.as_Confirm()]) {
        if (txs.length) {
          c.transactions_confirmed(h, txs.map((tx, i) => ldk.TwoTuple_usizeTransactionZ.constructor_new(i + 1, tx)), this.height);
        }
        c.best_block_updated(h, this.height);
      }
    }
    this.pump();
  }

  /**
   * Issue a BOLT11 invoice on `n` for `amount_msat`, valid `expiry_s` seconds from the chain
   * clock. With `payment_hash` the node does not know the preimage (it will reject payments).
   */
  createInvoice(n: LdkNode, amount_msat: bigint, memo: string, expiry_s: number, payment_hash?: Uint8Array): IssuedInvoice {
    const amt = ldk.Option_u64Z.constructor_some(amount_msat);
    const cltv = ldk.Option_u16Z.constructor_none();
    const r = payment_hash
      ? ldk.UtilMethods.constructor_create_invoice_from_channelmanager_with_payment_hash(n.chan_man, amt, memo, expiry_s, payment_hash, cltv)
      : ldk.UtilMethods.constructor_create_invoice_from_channelmanager(n.chan_man, amt, memo, expiry_s, cltv);
    if (!(r instanceof ldk.Result_Bolt11InvoiceSignOrCreationErrorZ_OK)) throw new Error(`${n.name}: invoice creation failed`);
    const inv = r.res;
    const issued: IssuedInvoice = {
      payment_hash_hex: hex(inv.payment_hash()),
      payment_request: inv.to_str(),
      amount_msat,
      memo,
      created_at_s: Number(inv.duration_since_epoch()),
      expiry_s,
      add_index: this.nextIndex++,
      settled: null,
    };
    n.invoices.set(issued.payment_hash_hex, issued);
    return issued;
  }

  /**
   * Pay `payment_request` from `n` with payment id = payment hash (one payment per hash), at most
   * `fee_limit_msat` routing fees, no retries. Records the payment in `n.payments` and runs the
   * network until it settles. With `ignore_expiry` the payer does not check the invoice's expiry
   * itself (so a test can show the RECIPIENT refusing an expired invoice).
   */
  pay(n: LdkNode, payment_request: string, opts: { fee_limit_msat: bigint; ignore_expiry?: boolean }): OutgoingPayment {
    const parsed = ldk.Bolt11Invoice.constructor_from_str(payment_request);
    if (!(parsed instanceof ldk.Result_Bolt11InvoiceParseOrSemanticErrorZ_OK)) throw new Error("unparseable invoice");
    const inv = parsed.res;
    const hash = inv.payment_hash();
    const amountOpt = inv.amount_milli_satoshis();
    const payment: OutgoingPayment = {
      payment_hash_hex: hex(hash),
      payment_request,
      amount_msat: amountOpt instanceof ldk.Option_u64Z_Some ? amountOpt.some : 0n,
      created_at_s: this.chain_time_s,
      payment_index: this.nextIndex++,
      status: "IN_FLIGHT",
      preimage_hex: null,
      fee_msat: 0n,
      failure: null,
    };
    n.payments.set(payment.payment_hash_hex, payment);
    const params = ldk.UtilMethods.constructor_payment_parameters_from_invoice(inv);
    if (!(params instanceof ldk.Result_C3Tuple_ThirtyTwoBytesRecipientOnionFieldsRouteParametersZNoneZ_OK)) {
      payment.status = "FAILED";
      payment.failure = "InvoiceWithoutAmount";
      return payment;
    }
    const routeParams = params.res.get_c();
    routeParams.set_max_total_routing_fee_msat(ldk.Option_u64Z.constructor_some(opts.fee_limit_msat));
    if (opts.ignore_expiry) routeParams.get_payment_params().set_expiry_time(ldk.Option_u64Z.constructor_none());
    const sent = n.chan_man.send_payment(params.res.get_a(), params.res.get_b(), hash, routeParams, ldk.Retry.constructor_attempts(0));
    if (sent instanceof ldk.Result_NoneRetryableSendFailureZ_Err) {
      payment.status = "FAILED";
      payment.failure = ldk.RetryableSendFailure[sent.err] ?? "send_failure";
      return payment;
    }
    this.pump();
    return payment;
  }

  /** Settle every payment `n` holds: claim it (`claim`) or fail it back; stop holding. */
  releaseHeld(n: LdkNode, action: "claim" | "fail"): void {
    n.holding = false;
    for (const h of n.held.splice(0)) {
      if (action === "claim" && h.preimage) n.chan_man.claim_funds(h.preimage);
      else n.chan_man.fail_htlc_backwards(h.payment_hash);
    }
    this.pump();
  }

  /** Run the network until quiet: deliver bytes, process events, run deferred actions. */
  pump(): void {
    for (let round = 0; round < PUMP_ROUNDS_MAX; round++) {
      let moved = false;
      for (const w of this.wires) {
        while (w.toB.length) {
          moved = true;
          w.b.pm.read_event(w.sb, w.toB.shift()!);
        }
        while (w.toA.length) {
          moved = true;
          w.a.pm.read_event(w.sa, w.toA.shift()!);
        }
      }
      for (const n of this.nodes) {
        n.pm.process_events();
        this.drainEvents(n);
      }
      while (this.deferred.length) {
        moved = true;
        this.deferred.shift()!();
      }
      if (!moved && this.wires.every((w) => !w.toA.length && !w.toB.length)) return;
    }
    throw new Error(`pump did not settle within ${PUMP_ROUNDS_MAX} rounds`);
  }

  private makeNode(name: string): LdkNode {
    const fee = ldk.FeeEstimator.new_impl({ get_est_sat_per_1000_weight: () => 253 });
    const broadcaster = ldk.BroadcasterInterface.new_impl({
      broadcast_transactions: (txs: Uint8Array[]) => {
        for (const tx of txs) this.mempool.push(tx.slice());
      },
    });
    const logger = ldk.Logger.new_impl({
      log: (r: ldk.Record) => {
        if (process.env.LDK_LOG === "1") console.log(`[ldk ${name}] ${r.get_args()}`);
      },
    });
    const done = ldk.ChannelMonitorUpdateStatus.LDKChannelMonitorUpdateStatus_Completed;
    const persister = ldk.Persist.new_impl({
      persist_new_channel: () => done,
      update_persisted_channel: () => done,
      archive_persisted_channel: () => {},
    });
    const chain_monitor = ldk.ChainMonitor.constructor_new(ldk.Option_FilterZ.constructor_none(), broadcaster, logger, fee, persister);
    const now_s = this.chain_time_s;
    const keys = ldk.KeysManager.constructor_new(new Uint8Array(32).fill(this.seed++), BigInt(now_s), 0);
    const graph = ldk.NetworkGraph.constructor_new(this.network, logger);
    const scorer = ldk.ProbabilisticScorer.constructor_new(ldk.ProbabilisticScoringDecayParameters.constructor_default(), graph, logger);
    const score = ldk.MultiThreadedLockableScore.constructor_new(scorer.as_Score());
    const router = ldk.DefaultRouter.constructor_new(
      graph,
      logger,
      keys.as_EntropySource(),
      score.as_LockableScore(),
      ldk.ProbabilisticScoringFeeParameters.constructor_default(),
    );
    const msgRouter = ldk.DefaultMessageRouter.constructor_new(graph, keys.as_EntropySource());
    const params = ldk.ChainParameters.constructor_new(this.network, ldk.BestBlock.constructor_new(this.tip, this.height));
    const chan_man = ldk.ChannelManager.constructor_new(
      fee,
      chain_monitor.as_Watch(),
      broadcaster,
      router.as_Router(),
      msgRouter.as_MessageRouter(),
      logger,
      keys.as_EntropySource(),
      keys.as_NodeSigner(),
      keys.as_SignerProvider(),
      ldk.UserConfig.constructor_default(),
      params,
      now_s,
    );
    const ign = ldk.IgnoringMessageHandler.constructor_new();
    const pm = ldk.PeerManager.constructor_new(
      chan_man.as_ChannelMessageHandler(),
      ign.as_RoutingMessageHandler(),
      ign.as_OnionMessageHandler(),
      ign.as_CustomMessageHandler(),
      now_s,
      randomBytes(32),
      logger,
      keys.as_NodeSigner(),
    );
    const node: LdkNode = {
      name,
      node_id_hex: hex(chan_man.get_our_node_id()),
      chan_man,
      chain_monitor,
      pm,
      invoices: new Map(),
      payments: new Map(),
      events: [],
      holding: false,
      held: [],
    };
    this.nodes.push(node);
    return node;
  }

  private connect(a: LdkNode, b: LdkNode): void {
    const toA: Uint8Array[] = [];
    const toB: Uint8Array[] = [];
    const sock = (queue: Uint8Array[], id: bigint) =>
      ldk.SocketDescriptor.new_impl({
        send_data: (data: Uint8Array) => {
          queue.push(data.slice());
          return data.length;
        },
        disconnect_socket: () => {},
        eq: (other: ldk.SocketDescriptor) => other.hash() === id,
        hash: () => id,
      });
    const sa = sock(toB, BigInt(this.wires.length * 2 + 1));
    const sb = sock(toA, BigInt(this.wires.length * 2 + 2));
    if (!b.pm.new_inbound_connection(sb, ldk.Option_SocketAddressZ.constructor_none()).is_ok()) throw new Error("inbound connection refused");
    const init = a.pm.new_outbound_connection(b.chan_man.get_our_node_id(), sa, ldk.Option_SocketAddressZ.constructor_none());
    if (!(init instanceof ldk.Result_CVec_u8ZPeerHandleErrorZ_OK)) throw new Error("outbound connection refused");
    toB.push(init.res);
    this.wires.push({ a, b, toA, toB, sa, sb });
  }

  private drainEvents(n: LdkNode): void {
    const handler = ldk.EventHandler.new_impl({
      handle_event: (e: ldk.Event) => {
        n.events.push(e);
        this.onEvent(n, e);
        return ldk.Result_NoneReplayEventZ.constructor_ok();
      },
    });
    n.chan_man.as_EventsProvider().process_pending_events(handler);
    n.chain_monitor.as_EventsProvider().process_pending_events(handler);
  }

  private onEvent(n: LdkNode, e: ldk.Event): void {
    if (e instanceof ldk.Event_FundingGenerationReady) {
      // A minimal segwit tx paying the channel value to the 2-of-2 script; its input is fake (simulated chain).
      const s = e.output_script;
      const tx = new Uint8Array(58 + s.length + 7);
      const dv = new DataView(tx.buffer);
      tx[0] = 2;
      tx[5] = 1;
      tx[6] = 1;
      tx.fill(0xff, 44, 48);
      tx[48] = 1;
      dv.setBigUint64(49, e.channel_value_satoshis, true);
      tx[57] = s.length;
      tx.set(s, 58);
      tx.set([1, 1, 0xff, 0, 0, 0, 0], 58 + s.length);
      this.deferred.push(() => {
        if (!n.chan_man.funding_transaction_generated(e.temporary_channel_id, e.counterparty_node_id, tx).is_ok()) {
          throw new Error("funding_transaction_generated failed");
        }
      });
    } else if (e instanceof ldk.Event_PendingHTLCsForwardable) {
      this.deferred.push(() => n.chan_man.process_pending_htlc_forwards());
    } else if (e instanceof ldk.Event_PaymentClaimable) {
      const pre = e.purpose.preimage();
      if (n.holding) n.held.push({ payment_hash: e.payment_hash, preimage: pre instanceof ldk.Option_ThirtyTwoBytesZ_Some ? pre.some : null });
      else if (pre instanceof ldk.Option_ThirtyTwoBytesZ_Some) this.deferred.push(() => n.chan_man.claim_funds(pre.some));
      else this.deferred.push(() => n.chan_man.fail_htlc_backwards(e.payment_hash));
    } else if (e instanceof ldk.Event_PaymentClaimed) {
      const inv = n.invoices.get(hex(e.payment_hash));
      const pre = e.purpose.preimage();
      if (inv && !inv.settled && pre instanceof ldk.Option_ThirtyTwoBytesZ_Some) {
        inv.settled = { amount_msat: e.amount_msat, preimage_hex: hex(pre.some), settled_at_s: this.chain_time_s };
      }
    } else if (e instanceof ldk.Event_PaymentSent) {
      const p = n.payments.get(hex(e.payment_hash));
      if (p) {
        p.status = "SUCCEEDED";
        p.preimage_hex = hex(e.payment_preimage);
        p.fee_msat = e.fee_paid_msat instanceof ldk.Option_u64Z_Some ? e.fee_paid_msat.some : 0n;
      }
    } else if (e instanceof ldk.Event_PaymentFailed) {
      const p = n.payments.get(hex(e.payment_id));
      if (p && p.status === "IN_FLIGHT") {
        p.status = "FAILED";
        p.failure = e.reason instanceof ldk.Option_PaymentFailureReasonZ_Some ? (ldk.PaymentFailureReason[e.reason.some] ?? "unknown") : "unknown";
      }
    }
  }
}

/** sha256(preimage) as hex: what a payment hash must equal. */
export function paymentHashOf(preimage_hex: string): string {
  return sha256(Buffer.from(preimage_hex, "hex")).toString("hex");
}
