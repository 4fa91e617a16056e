import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import { sql } from 'kysely';
import type { DatabaseHandle } from '../db/connection.js';
import type { Db, Tx } from '../db/schema.js';
import { sqlState, withTransaction } from '../db/transaction.js';
import { callerOf } from './access.js';
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

/**
 * Runs a money-moving request at most once per (user, endpoint, key).
 *
 * The key is claimed by the transaction's first statement. A concurrent repeat's INSERT waits on the
 * unique key until the first transaction ends: if it committed, the repeat finds the stored answer and
 * replays it; if it rolled back (the request was refused), the repeat runs afresh. The wait is bounded
 * by the connection's lock_timeout, past which the repeat answers 409 idempotency_in_progress. The
 * stored answer commits with the money, so neither can exist without the other.
 */
export async function runIdempotent<T>(
  database: DatabaseHandle,
  request: FastifyRequest,
  reply: FastifyReply,
  status: number,
  operation: (tx: Tx) => Promise<T>,
): Promise<FastifyReply> {
  const key = request.headers['idempotency-key'];
  if (typeof key !== 'string') {
    return reply.code(status).send(await withTransaction(database, operation));
  }
  const scope = { user_id: callerOf(request).id, endpoint: `${request.method} ${request.routeOptions.url}`, key };
  const fingerprint = fingerprintOf(request);

  const outcome = await withTransaction(database, async (tx) => {
    let claimed;
    try {
      claimed = await tx
        .insertInto('idempotency_keys')
        .values({ ...scope, fingerprint, status_code: null, response: null })
        .onConflict((conflict) => conflict.columns(['user_id', 'endpoint', 'key']).doNothing())
        .returning('key')
        .executeTakeFirst();
    } catch (error) {
      if (sqlState(error) === '55P03') throw new DomainError('idempotency_in_progress', 'A request with this Idempotency-Key is still being processed');
      throw error;
    }
    if (!claimed) {
      const stored = await tx
        .selectFrom('idempotency_keys')
        .select(['fingerprint', 'status_code', 'response'])
        .where('user_id', '=', scope.user_id)
        .where('endpoint', '=', scope.endpoint)
        .where('key', '=', key)
        .executeTakeFirstOrThrow();
      if (stored.fingerprint !== fingerprint) {
        throw new DomainError('idempotency_key_reused', 'This Idempotency-Key was used with a different request');
      }
      return { replayed: true, status: stored.status_code!, body: stored.response };
    }
    const body = await operation(tx);
    await tx
      .updateTable('idempotency_keys')
      .set({ status_code: status, response: JSON.stringify(body) })
      .where('user_id', '=', scope.user_id)
      .where('endpoint', '=', scope.endpoint)
      .where('key', '=', key)
      .execute();
    return { replayed: false, status, body: body as unknown };
  });
  if (outcome.replayed) reply.header('idempotent-replayed', 'true');
  return reply.code(outcome.status).send(outcome.body);
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
