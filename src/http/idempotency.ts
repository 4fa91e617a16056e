import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import { sql } from 'kysely';
import type { DatabaseHandle } from '../db/connection.js';
import type { Db, Tx } from '../db/schema.js';
import { sqlState, withTransaction } from '../db/transaction.js';
import { callerOf, tokenHolderOf } from './access.js';
import { DomainError } from './errors.js';

/** Kept at least this long (API.md: 24 hours), then purged. */
export const IDEMPOTENCY_KEY_HOURS = 24;

export const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({ minLength: 1, maxLength: 255, description: 'Repeats with the same key move money once and replay the first answer' }),
  ),
});

/** What a request means: method, concrete path and body, in a stable serialisation. */
function fingerprintOf(request: FastifyRequest): string {
  const canonical = JSON.stringify([request.method, request.url.split('?')[0], sortKeys(request.body ?? null)]);
  return createHash('sha256').update(canonical).digest('hex');
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => [k, sortKeys(v)]));
  }
  return value;
}

/** Where a request's key lives and what the request means: its method, concrete path and body. */
export interface IdempotencyScope {
  userId: string;
  endpoint: string;
  key: string;
  fingerprint: string;
}

/** The scope of a request that carries an Idempotency-Key, or null when it carries none. */
export function idempotencyScopeOf(request: FastifyRequest): IdempotencyScope | null {
  const key = request.headers['idempotency-key'];
  if (typeof key !== 'string') return null;
  const userId = request.routeOptions.config.tokenCheckedByStatement ? tokenHolderOf(request).id : callerOf(request).id;
  return { userId, endpoint: `${request.method} ${request.routeOptions.url}`, key, fingerprint: fingerprintOf(request) };
}

/** What is stored under a key that an earlier request claimed. */
export interface StoredAnswer {
  fingerprint: string;
  status_code: number | null;
  response: unknown;
}

/** An answer to send: a fresh one, or the stored answer of an earlier request with the same key. */
export interface Outcome {
  replayed: boolean;
  status: number;
  body: unknown;
}

/** The replay of a stored answer, if the request is the same one that stored it. */
export function replayOf(stored: StoredAnswer, scope: IdempotencyScope): Outcome {
  if (stored.fingerprint !== scope.fingerprint) {
    throw new DomainError('idempotency_key_reused', 'This Idempotency-Key was used with a different request');
  }
  return { replayed: true, status: stored.status_code!, body: stored.response };
}

/**
 * A claim or a stored answer that timed out waiting for a concurrent request's write of the same key
 * (lock_timeout, 55P03: idempotency_claim, or idempotency_record for transfers) is a request still in
 * progress. Other lock timeouts (on an account, say) are not.
 */
export function asInProgress(error: unknown): unknown {
  const where = (error as { where?: unknown } | null)?.where;
  return sqlState(error) === '55P03' && typeof where === 'string' && /idempotency_(claim|record)/.test(where)
    ? new DomainError('idempotency_in_progress', 'A request with this Idempotency-Key is still being processed')
    : error;
}

export function sendOutcome(reply: FastifyReply, outcome: Outcome): FastifyReply {
  if (outcome.replayed) reply.header('idempotent-replayed', 'true');
  return reply.code(outcome.status).send(outcome.body);
}

/**
 * Runs a money-moving request at most once per (user, endpoint, key).
 *
 * The key is claimed by the transaction's first statement (`idempotency_claim`, migration 0007). A
 * concurrent repeat's claim waits on the unique key until the first transaction ends: if it committed,
 * the repeat finds the stored answer and replays it; if it rolled back (the request was refused), the
 * repeat runs afresh. The wait is bounded by the connection's lock_timeout, past which the repeat
 * answers 409 idempotency_in_progress. The stored answer commits with the money, so neither can exist
 * without the other.
 */
export async function runIdempotent<T>(
  database: DatabaseHandle,
  request: FastifyRequest,
  reply: FastifyReply,
  status: number,
  operation: (tx: Tx) => Promise<T>,
): Promise<FastifyReply> {
  const scope = idempotencyScopeOf(request);
  if (!scope) {
    return reply.code(status).send(await withTransaction(database, operation));
  }
  const outcome = await withTransaction(database, async (tx): Promise<Outcome> => {
    const stored = await claimIdempotencyKey(tx, scope);
    if (stored) return replayOf(stored, scope);
    const body = await operation(tx);
    await sql`SELECT idempotency_store(${scope.userId}, ${scope.endpoint}, ${scope.key}, ${status}, ${JSON.stringify(body)}::jsonb)`.execute(tx);
    return { replayed: false, status, body };
  });
  return sendOutcome(reply, outcome);
}

async function claimIdempotencyKey(tx: Tx, scope: IdempotencyScope): Promise<StoredAnswer | null> {
  try {
    const { rows } = await sql<StoredAnswer & { key: string | null }>`
      SELECT * FROM idempotency_claim(${scope.userId}, ${scope.endpoint}, ${scope.key}, ${scope.fingerprint})`.execute(tx);
    return rows[0]?.key ? rows[0] : null;
  } catch (error) {
    throw asInProgress(error);
  }
}

/** Deletes keys past their retention; any instance may run it, at any time, any number of times. */
export async function purgeExpiredIdempotencyKeys(db: Db, hours = IDEMPOTENCY_KEY_HOURS): Promise<bigint> {
  const result = await db
    .deleteFrom('idempotency_keys')
    .where('created_at', '<', sql<Date>`now() - make_interval(hours => ${hours})`)
    .executeTakeFirst();
  return result.numDeletedRows;
}

/** Purges expired keys every hour in the background; returns the function that stops it. */
export function schedulePurge(db: Db, onError: (error: unknown) => void): () => void {
  const timer = setInterval(() => purgeExpiredIdempotencyKeys(db).catch(onError), 60 * 60 * 1000);
  timer.unref();
  return () => clearInterval(timer);
}
