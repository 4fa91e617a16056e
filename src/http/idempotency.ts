import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import { sql } from 'kysely';
import type { DatabaseHandle } from '../db/connection.js';
import { findStoredAnswer, recordAnswer, type IdempotencyScope, type Outcome, type StoredAnswer } from '../db/idempotency.js';
import type { Tx } from '../db/schema.js';
import { withTransaction } from '../db/transaction.js';
import { DomainError, type ErrorCode } from '../errors.js';
import { ERROR_STATUS } from './errors.js';

export const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({ minLength: 1, maxLength: 255, description: 'Repeats with the same key move money once and replay the first answer' }),
  ),
});

/**
 * What a request means, as its route has parsed and validated it: the path's ids and the body's
 * fields, amounts as bigint minor units. Built by the route in a fixed shape, so that requests written
 * differently (`"7"`, `7` or `"7.00"`; fields in any order; an optional field left out or null) that
 * ask for the same thing have the same meaning.
 */
export type RequestMeaning = Readonly<Record<string, string | bigint | null>>;

// The meaning's ids (`id`, `accountId`, `fromAccountId`, ...): UUIDs, which compare without letter case.
const ID_FIELD = /^id$|Id$/;

/** A canonical text of the meaning: amounts as their minor units, ids in lower case. */
function fingerprintOf(meaning: RequestMeaning): string {
  const canonical = JSON.stringify(meaning, (field, value: unknown) =>
    typeof value === 'bigint' ? value.toString() : typeof value === 'string' && ID_FIELD.test(field) ? value.toLowerCase() : value,
  );
  return createHash('sha256').update(canonical).digest('hex');
}

/** The scope of a request of `userId` that carries an Idempotency-Key, or null when it carries none. */
export function idempotencyScopeOf(request: FastifyRequest, userId: string, meaning: RequestMeaning): IdempotencyScope | null {
  const key = request.headers['idempotency-key'];
  if (typeof key !== 'string') return null;
  return { userId, endpoint: `${request.method} ${request.routeOptions.url}`, key, fingerprint: fingerprintOf(meaning) };
}

/** The replay of a stored answer, or the stored refusal thrown again, if the request is the same one that stored it. */
function replayOf(stored: StoredAnswer, scope: IdempotencyScope): Outcome {
  if (stored.fingerprint !== scope.fingerprint) {
    throw new DomainError('idempotency_key_reused', 'This Idempotency-Key was used with a different request');
  }
  if (stored.problem_code) throw new DomainError(stored.problem_code, stored.problem_detail ?? stored.problem_code, { replayed: true });
  return { replayed: true, body: stored.response };
}

/**
 * Answers that say the request was not processed at all (docs/api.md, "Idempotency-Key"): not kept under its key, so that a
 * corrected or later retry runs. Neither is an answer about the key (idempotency_key_reused), nor a 5xx.
 */
const NOT_PROCESSED: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'validation_error',
  'bad_request',
  'payload_too_large',
  'unsupported_media_type',
  'unauthorized',
  'forbidden',
  'rate_limited',
  'too_many_attempts',
  'idempotency_in_progress',
  'idempotency_key_reused',
]);

/** A business refusal (insufficient_funds, not_found, overpayment, ...): an answer kept under its key like a success. */
function isKeptRefusal(error: unknown): error is DomainError {
  return error instanceof DomainError && !NOT_PROCESSED.has(error.code) && ERROR_STATUS[error.code] < 500;
}

export function sendOutcome(reply: FastifyReply, status: number, outcome: Outcome): FastifyReply {
  if (outcome.replayed) reply.header('idempotent-replayed', 'true');
  return reply.code(status).send(outcome.body);
}

/**
 * Runs a money-moving request at most once per (user, endpoint, key), and answers every repeat with
 * the key's first answer: the result, or a business refusal. The protocol, the transfers' too
 * (transfer_batch), in one database transaction:
 *   1. look the key up (idempotency_stored): an answer there is replayed, or refused as
 *      idempotency_key_reused when it answered another request;
 *   2. do the work;
 *   3. write the key once with its answer (idempotency_record). A concurrent request with the key that
 *      committed since step 1 makes this a serialization failure: withTransaction runs it all again,
 *      and step 1 replays that answer, so the work is done once. One still in progress makes this wait
 *      for it, up to lock_timeout, then answer 409 idempotency_in_progress. The answer commits with
 *      the money, so neither can exist without the other.
 * A business refusal rolls the work back to a savepoint taken after step 1 and is written under the
 * key in the same transaction, so a repeat replays it rather than running the work again (and
 * succeeding, were a deposit to arrive meanwhile). The savepoint costs a keyed request one statement
 * more; these are teller, reversal and repayment requests, not the transfers' path.
 */
export async function runIdempotent<T>(
  database: DatabaseHandle,
  request: FastifyRequest,
  reply: FastifyReply,
  /** The route's status, the caller's id (where its keys live) and what the request means. */
  { status, userId, meaning }: { status: number; userId: string; meaning: RequestMeaning },
  operation: (tx: Tx) => Promise<T>,
): Promise<FastifyReply> {
  const scope = idempotencyScopeOf(request, userId, meaning);
  if (!scope) {
    return reply.code(status).send(await withTransaction(database, operation));
  }
  const answer = await withTransaction(database, async (tx): Promise<Outcome | DomainError> => {
    const stored = await findStoredAnswer(tx, scope);
    if (stored) return replayOf(stored, scope);
    await sql`SAVEPOINT idempotent_work`.execute(tx);
    try {
      const body = await operation(tx);
      await recordAnswer(tx, scope, { response: JSON.stringify(body) });
      return { replayed: false, body };
    } catch (error) {
      if (!isKeptRefusal(error)) throw error;
      await sql`ROLLBACK TO SAVEPOINT idempotent_work`.execute(tx);
      await recordAnswer(tx, scope, { problem: error });
      return error;
    }
  });
  // A kept refusal is thrown once it has committed.
  if (answer instanceof DomainError) throw answer;
  return sendOutcome(reply, status, answer);
}
