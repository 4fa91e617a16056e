import { sql } from 'kysely';
import { DomainError, type ErrorCode } from '../errors.js';
import { runEvery } from './background.js';
import type { Db, Tx } from './schema.js';
import { sqlState } from './transaction.js';

/**
 * The database side of the idempotency protocol (the HTTP side, and the protocol itself:
 * src/http/idempotency.ts): a key's stored answer read (idempotency_stored) and written once, with the
 * work it answers (idempotency_record), both in src/db/sql/.
 */

/** Kept at least this long (docs/api.md, "Idempotency-Key": 24 hours), then purged. */
export const IDEMPOTENCY_KEY_HOURS = 24;

/** Where a request's key lives (user, endpoint, key) and what the request means. */
export interface IdempotencyScope {
  userId: string;
  endpoint: string;
  key: string;
  fingerprint: string;
}

/** What is stored under a key (src/db/sql/idempotency_stored.sql): the answer of the request that wrote it. */
export interface StoredAnswer {
  fingerprint: string;
  /** The body it answered: every endpoint's but the transfer's, whose answer is its transaction (transaction_id). */
  response: unknown;
  problem_code: ErrorCode | null;
  problem_detail: string | null;
}

/** An answer to send with the route's status: a fresh one, or the stored answer of an earlier request with the same key. */
export interface Outcome<T = unknown> {
  replayed: boolean;
  body: T;
}

/** The SQLSTATE idempotency_record raises when a request with the same key is still being processed elsewhere. */
const KEY_IN_PROGRESS = 'IK001';

/** A key still being written by a concurrent request, as the API says it. */
export function asInProgress(error: unknown): unknown {
  return sqlState(error) === KEY_IN_PROGRESS
    ? new DomainError('idempotency_in_progress', 'A request with this Idempotency-Key is still being processed')
    : error;
}

export async function findStoredAnswer(tx: Tx, scope: IdempotencyScope): Promise<StoredAnswer | undefined> {
  const { rows } = await sql<StoredAnswer>`
    SELECT fingerprint, response, problem_code, problem_detail
      FROM idempotency_stored(ARRAY[${scope.userId}]::uuid[], ARRAY[${scope.endpoint}], ARRAY[${scope.key}])`.execute(tx);
  return rows[0];
}

export async function recordAnswer(
  tx: Tx,
  scope: IdempotencyScope,
  answer: { response: string } | { problem: DomainError },
): Promise<void> {
  const response = 'response' in answer ? answer.response : null;
  const problem = 'problem' in answer ? answer.problem : null;
  try {
    await sql`SELECT idempotency_record(ARRAY[ROW(${scope.userId}, ${scope.endpoint}, ${scope.key}, ${scope.fingerprint},
      ${response}::jsonb, NULL, ${problem?.code ?? null}, ${problem?.message ?? null})]::idempotency_answer[])`.execute(tx);
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
  return runEvery(60 * 60 * 1000, () => purgeExpiredIdempotencyKeys(db), onError);
}
