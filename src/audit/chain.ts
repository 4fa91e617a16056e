import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import { runEvery } from '../db/background.js';
import type { DatabaseHandle } from '../db/connection.js';
import type { Db, Tx } from '../db/schema.js';
import { withTransaction } from '../db/transaction.js';
import { canonicalJson } from './canonical-json.js';

export const GENESIS_HASH = '0'.repeat(64);
/**
 * Entries sealed in one database transaction, and hashed between two turns of the event loop. The
 * sealer runs in the server's thread: a batch of a thousand entries, read, hashed and written in one
 * go once a second, held every request back for 10 to 20 ms (the benchmark's p99 at 32 connections:
 * 48 to 51 ms with the sealer on, 33 to 40 with it off). Between batches, and every hundred links, the
 * requests waiting get their turn.
 */
const SEAL_BATCH = 250;
const LINKS_BETWEEN_YIELDS = 100;

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** The fields of an entry that its hash covers: everything it says, in the canonical form of RFC 8785. */
export interface ChainedContent {
  sequence: bigint;
  id: string;
  at: Date;
  actor_id: string | null;
  actor_role: string | null;
  action: string;
  target_type: string | null;
  target_id: string | null;
  ip: string | null;
  request_id: string | null;
  details: unknown;
}

/** hash = SHA-256(prev_hash ‖ canonical JSON of the entry, its sequence included), as lowercase hex. */
export function chainHash(prevHash: string, entry: ChainedContent): string {
  const content = canonicalJson({
    sequence: entry.sequence.toString(),
    id: entry.id,
    at: entry.at.toISOString(),
    actor_id: entry.actor_id,
    actor_role: entry.actor_role,
    action: entry.action,
    target_type: entry.target_type,
    target_id: entry.target_id,
    ip: entry.ip,
    request_id: entry.request_id,
    details: entry.details,
  });
  return createHash('sha256').update(prevHash).update(content).digest('hex');
}

const ENTRY_COLUMNS = ['id', 'at', 'actor_id', 'actor_role', 'action', 'target_type', 'target_id', 'ip', 'request_id', 'details'] as const;

/**
 * Appends to the chain every entry whose transaction has finished, in (transaction id, entry number)
 * order, and returns how many it sealed. Sealers on several instances take turns on the head row
 * (SKIP LOCKED: a busy head means another sealer is at work, so this one returns 0). Even without the
 * lock, the chain's primary key on sequence would refuse a second writer of the same link.
 */
export async function sealPending(database: DatabaseHandle): Promise<number> {
  let sealed = 0;
  for (;;) {
    const batch = await withTransaction(database, sealBatch);
    sealed += batch;
    if (batch < SEAL_BATCH) return sealed;
  }
}

async function sealBatch(tx: Tx): Promise<number> {
  const head = await tx.selectFrom('audit_chain_head').selectAll().forUpdate().skipLocked().executeTakeFirst();
  if (!head) return 0;
  // One statement, so xmin and the rows below it come from the same snapshot. Entries are sealed in
  // (transaction id, entry number) order, so the unsealed ones are those after the entry of the chain's
  // last link: a full batch may stop inside one transaction's entries, and the next resumes right after.
  const { rows } = await sql<ChainedContent & { xact_id: bigint; xmin: bigint }>`
    WITH horizon AS (
      SELECT (pg_snapshot_xmin(pg_current_snapshot())::text)::bigint AS xmin, coalesce(last.xact_id, 0) AS after_xact,
             coalesce(last.entry_no, 0) AS after_entry
        FROM (SELECT 1) one
        LEFT JOIN (SELECT a.xact_id, a.entry_no FROM audit_chain c JOIN audit_log a ON a.id = c.entry_id
                    WHERE c.sequence = ${head.sequence}) last ON true)
    SELECT a.id, a.at, a.actor_id, a.actor_role, a.action, a.target_type, a.target_id, a.ip, a.request_id, a.details,
           a.xact_id, horizon.xmin, 0::bigint AS sequence
    FROM horizon LEFT JOIN audit_log a ON a.xact_id >= ${head.sealed_below} AND a.xact_id < horizon.xmin
      AND (a.xact_id, a.entry_no) > (horizon.after_xact, horizon.after_entry)
    ORDER BY a.xact_id, a.entry_no
    LIMIT ${SEAL_BATCH}`.execute(tx);
  const entries = rows.filter((row) => row.id !== null);
  const xmin = rows[0]!.xmin;

  let { sequence, hash } = head;
  const links: { sequence: bigint; entry_id: string; prev_hash: string; hash: string }[] = [];
  for (const entry of entries) {
    if (links.length > 0 && links.length % LINKS_BETWEEN_YIELDS === 0) await nextTurn();
    sequence += 1n;
    const prevHash = hash;
    hash = chainHash(prevHash, { ...entry, sequence });
    links.push({ sequence, entry_id: entry.id, prev_hash: prevHash, hash });
  }
  // Four arrays rather than a VALUES list of four parameters per link: a full batch is SEAL_BATCH links.
  if (links.length > 0) {
    await sql`INSERT INTO audit_chain (sequence, entry_id, prev_hash, hash)
      SELECT * FROM unnest(${links.map((link) => link.sequence.toString())}::bigint[], ${links.map((link) => link.entry_id)}::uuid[],
                           ${links.map((link) => link.prev_hash)}::text[], ${links.map((link) => link.hash)}::text[])`.execute(tx);
  }
  // A full batch may stop inside one transaction's entries: the next batch resumes at that transaction,
  // after the entry of its last link. Otherwise everything below xmin is sealed.
  const sealedBelow = entries.length === SEAL_BATCH ? entries.at(-1)!.xact_id : xmin;
  await tx.updateTable('audit_chain_head').set({ sequence, hash, sealed_below: sealedBelow }).execute();
  return entries.length;
}

export interface VerificationReport {
  ok: boolean;
  checked: number;
  first_invalid_sequence: number | null;
  sealed: number;
  unsealed: number;
  /** Seconds since the oldest entry still waiting for the sealer was written; 0 when none waits. */
  sealer_lag_seconds: number;
}

const VERIFY_BATCH = 2_000;

/**
 * Recomputes the chain from its first link: each link's prev_hash must be the previous link's hash and
 * its hash must match the entry as it stands now. Any change to a past entry, the chain or their order
 * shows as the first sequence that fails. Reads in batches, so memory stays flat on a long log.
 */
export async function verifyChain(db: Db): Promise<VerificationReport> {
  let previous = GENESIS_HASH;
  let expectedSequence = 1n;
  let checked = 0;
  let firstInvalid: bigint | null = null;
  for (;;) {
    const links = await db
      .selectFrom('audit_chain as c')
      .leftJoin('audit_log as a', 'a.id', 'c.entry_id')
      .select(['c.sequence', 'c.prev_hash', 'c.hash', ...ENTRY_COLUMNS.map((column) => `a.${column}` as const)])
      .where('c.sequence', '>=', expectedSequence)
      .orderBy('c.sequence')
      .limit(VERIFY_BATCH)
      .execute();
    for (const link of links) {
      const intact =
        link.sequence === expectedSequence &&
        link.prev_hash === previous &&
        link.id !== null &&
        link.hash === chainHash(previous, { ...(link as ChainedContent), sequence: link.sequence });
      if (!intact) {
        firstInvalid = expectedSequence;
        break;
      }
      previous = link.hash;
      expectedSequence += 1n;
      checked += 1;
    }
    if (firstInvalid !== null || links.length < VERIFY_BATCH) break;
  }
  const counts = await sql<{ sealed: bigint; total: bigint; oldest_unsealed: Date | null; now: Date }>`
    SELECT (SELECT count(*) FROM audit_chain) AS sealed, (SELECT count(*) FROM audit_log) AS total,
           (SELECT min(a.at) FROM audit_log a WHERE a.xact_id >= h.sealed_below AND NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.entry_id = a.id)) AS oldest_unsealed,
           now() AS now
    FROM audit_chain_head h`.execute(db);
  const row = counts.rows[0]!;
  return {
    ok: firstInvalid === null,
    checked,
    first_invalid_sequence: firstInvalid === null ? null : Number(firstInvalid),
    sealed: Number(row.sealed),
    unsealed: Number(row.total - row.sealed),
    sealer_lag_seconds: row.oldest_unsealed ? Math.max(0, (row.now.getTime() - row.oldest_unsealed.getTime()) / 1000) : 0,
  };
}

/** Seals in the background every interval; returns the function that stops it. */
export function scheduleSealing(database: DatabaseHandle, intervalMs: number, onError: (error: unknown) => void): () => void {
  return runEvery(intervalMs, () => sealPending(database), onError);
}
