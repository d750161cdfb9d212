/**
 * The call-level types of the SDK, and the narrow view of the client that the per-service APIs
 * (sessions.ts) call through, so they depend on this file rather than on client.ts (no cycle).
 */
import type { DescService } from "@bufbuild/protobuf";
import type { Client } from "@connectrpc/connect";

/** Per-call options. */
export interface CallOptions {
  /** Total deadline for this call, retries included (default: the client's timeout_ms). */
  timeout_ms?: number;
  /** Cancel the call. */
  signal?: AbortSignal;
}

/** Options of a mutating call. */
export interface MutatingCallOptions extends CallOptions {
  /**
   * Identifies this logical operation. Generated if omitted; pass your own to make a retry *across
   * processes* safe (persist it before calling, reuse it when retrying).
   */
  idempotency_key?: string;
}

/** Names an account: by id, by agent (its wallet) or by author (their earnings). Default: the token's own. */
export type AccountSelector = { account_id: string } | { agent_id: string } | { author_id: string };

/** The principal the token claims to be (decoded locally, not verified; the daemon verifies). */
export interface TokenIdentity {
  kind: "agent" | "author" | "rail" | "admin";
  id: string;
}

/** What a per-service API needs from MasquesClient (implemented by it). */
export interface CallContext {
  /** A raw generated client for any service of the daemon, over the client's transport. */
  service<S extends DescService>(desc: S): Client<S>;
  /** Who the configured token says the caller is. Throws UnauthenticatedError without a usable token. */
  whoami(): TokenIdentity;
  /** Run one logical call with deadline, retries and typed errors (see MasquesClient.invoke). */
  invoke<T>(
    fn: (opts: { timeoutMs: number; signal?: AbortSignal; headers: Record<string, string> }) => Promise<T>,
    opts: CallOptions & { idempotent: boolean; account_owner?: string | undefined },
  ): Promise<T>;
  /** How a person named an account, for error messages (see MasquesClient.ownerOf). */
  ownerOf(sel?: AccountSelector): string | undefined;
}
