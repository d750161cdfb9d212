/**
 * The OTLP part of the control plane (issue 18, ADR 0115): which Claude Code session each masque
 * session runs in. (Which OTLP events are stored is asked of ClickHouse itself since ADR 0118;
 * the `otlp_event` table of migration 0011 is no longer written.)
 *
 * A binding is written BEFORE the Don's hold reaches the ledger and is never changed afterwards
 * (only its Doff time is stamped), so once a session exists on the ledger whether it has a
 * binding is final: this process caches both answers (bounded), and RecordUsage pays one query
 * per session at most, not per call. Several daemons agree because the row decides.
 */
import { sql, type Kysely } from "kysely";
import type { Database } from "./schema.js";

/** One binding: masque session (32 hex) <-> Claude Code session id. */
export interface SessionBinding {
  session_id: string;
  claude_session_id: string;
  agent_id: string;
  bind_time_ns: bigint;
  /** When a Doff was asked for (events stamped after it are not billed); null while open. */
  doff_time_ns: bigint | null;
}

export interface OtlpStore {
  /**
   * Bind `session_id` to a Claude session. Idempotent for the same pair; returns the existing
   * binding when the session is already bound (to the same or another Claude session).
   */
  bind(b: Omit<SessionBinding, "doff_time_ns">): Promise<SessionBinding>;
  /**
   * The binding of each session id (absent: none). Cached (see above); `fresh` re-reads open
   * bindings, whose Doff stamp another daemon may have written.
   */
  bindingsOf(session_ids: readonly string[], opts: { fresh: boolean }): Promise<Map<string, SessionBinding>>;
  /** Bindings of one Claude session, newest first (at most `limit`). */
  sessionsOfClaude(claude_session_id: string, limit: number): Promise<SessionBinding[]>;
  /**
   * Remember that a session this daemon just created on the ledger has no binding (a Don without
   * claude_session_id writes none, and bindings are only written before the hold), so its
   * RecordUsage and Doff never query the database for it.
   */
  markUnbound(session_id: string): void;
  /** Stamp the Doff request time once (the first stamp wins). */
  markDoff(session_id: string, doff_time_ns: bigint): Promise<void>;
}

const CACHE_MAX = 100_000;
const stores = new WeakMap<object, OtlpStore>();

interface BindingRow {
  session_id: string;
  claude_session_id: string;
  agent_id: string;
  bind_time_ns: string;
  doff_time_ns: string | null;
}

function toBinding(r: BindingRow): SessionBinding {
  return {
    session_id: r.session_id,
    claude_session_id: r.claude_session_id,
    agent_id: r.agent_id,
    bind_time_ns: BigInt(r.bind_time_ns),
    doff_time_ns: r.doff_time_ns === null ? null : BigInt(r.doff_time_ns),
  };
}

/** The store over a control-plane database (one per database object, so caches are shared). */
export function otlpStore(db: Kysely<Database>): OtlpStore {
  let s = stores.get(db);
  if (!s) {
    s = createOtlpStore(db);
    stores.set(db, s);
  }
  return s;
}

function createOtlpStore(db: Kysely<Database>): OtlpStore {
  // session id -> binding, or null (known to have none). Bounded; oldest evicted first.
  const cache = new Map<string, SessionBinding | null>();
  const remember = (sid: string, b: SessionBinding | null): void => {
    if (cache.size >= CACHE_MAX) {
      const oldest = cache.keys().next();
      if (!oldest.done) cache.delete(oldest.value);
    }
    cache.set(sid, b);
  };
  const cols = sql`session_id, claude_session_id, agent_id, bind_time_ns::text as bind_time_ns, doff_time_ns::text as doff_time_ns`;
  return {
    async bind(b) {
      await sql`insert into otlp_session_binding (session_id, claude_session_id, agent_id, bind_time_ns)
        values (${b.session_id}, ${b.claude_session_id}, ${b.agent_id}, ${b.bind_time_ns.toString()}::bigint)
        on conflict (session_id) do nothing`.execute(db);
      const r = await sql<BindingRow>`select ${cols} from otlp_session_binding where session_id = ${b.session_id}`.execute(db);
      const found = toBinding(r.rows[0]!);
      remember(found.session_id, found);
      return found;
    },
    async bindingsOf(ids, opts) {
      const out = new Map<string, SessionBinding>();
      const missing: string[] = [];
      for (const id of ids) {
        const c = cache.get(id);
        if (c === undefined) missing.push(id);
        else if (c !== null && (c.doff_time_ns !== null || !opts.fresh)) out.set(id, c);
        else if (c !== null) missing.push(id);
      }
      if (missing.length > 0) {
        const r = await sql<BindingRow>`select ${cols} from otlp_session_binding where session_id in (${sql.join(missing)})`.execute(db);
        const found = new Map(r.rows.map((row) => [row.session_id, toBinding(row)]));
        for (const id of missing) {
          const b = found.get(id) ?? null;
          remember(id, b);
          if (b) out.set(id, b);
        }
      }
      return out;
    },
    async sessionsOfClaude(claude, limit) {
      const r = await sql<BindingRow>`select ${cols} from otlp_session_binding where claude_session_id = ${claude}
        order by bind_time_ns desc limit ${limit}`.execute(db);
      return r.rows.map(toBinding);
    },
    markUnbound(sid) {
      if (!cache.has(sid)) remember(sid, null);
    },
    async markDoff(sid, t) {
      await sql`update otlp_session_binding set doff_time_ns = ${t.toString()}::bigint where session_id = ${sid} and doff_time_ns is null`.execute(db);
      cache.delete(sid);
    },
  };
}
