import { setTimeout as sleep } from 'node:timers/promises';
import type { DatabaseHandle, Session } from './connection.js';
import type { Tx } from './schema.js';

// SQLSTATEs after which the whole transaction may simply run again: serialization failure, deadlock.
const RETRYABLE = new Set(['40001', '40P01']);
const MAX_ATTEMPTS = 8;

export function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

export function isRetryable(error: unknown): boolean {
  return RETRYABLE.has(sqlState(error) ?? '');
}

// PostgreSQL and driver failures that mean "the database is not there right now".
const UNAVAILABLE_STATES = new Set(['57P01', '57P02', '57P03', '08000', '08001', '08003', '08006', '53300']);
const UNAVAILABLE_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN']);
// Failures that mean "there, but saturated": a lock wait past lock_timeout (55P03), a cancelled
// statement (57014), or no pool connection free within connectionTimeoutMillis (pg-pool's message).
const BUSY_STATES = new Set(['55P03', '57014']);

/** Why the database cannot serve this request right now, or undefined when the failure is something else. */
export function databaseTrouble(error: unknown): 'unavailable' | 'busy' | undefined {
  const code = sqlState(error);
  const message = (error as Error | null)?.message ?? '';
  if ((code && BUSY_STATES.has(code)) || /timeout exceeded when trying to connect/i.test(message)) return 'busy';
  if (code && (UNAVAILABLE_STATES.has(code) || UNAVAILABLE_ERRNOS.has(code))) return 'unavailable';
  return /Connection terminated|Client has encountered a connection error|connection is closed/i.test(message) ? 'unavailable' : undefined;
}

/**
 * Runs fn in one database transaction (READ COMMITTED; rows that money depends on are locked with
 * SELECT ... FOR UPDATE in id order) and runs it again, after a jittered exponential back-off, when the
 * database aborts it as a deadlock victim or a serialization failure, as CockroachDB and YugabyteDB do
 * routinely. fn must therefore have no side effects outside the transaction.
 */
export interface TransactionOptions {
  /** A consistent snapshot for a multi-statement read (reconciliation, statements). */
  snapshot?: boolean;
}

export async function withTransaction<T>(
  database: DatabaseHandle,
  fn: (tx: Tx) => Promise<T>,
  options: TransactionOptions = {},
): Promise<T> {
  return retried(() => {
    const builder = database.db.transaction();
    const transaction = options.snapshot ? builder.setIsolationLevel('repeatable read').setAccessMode('read only') : builder;
    return database.guard(() => transaction.execute(fn));
  });
}

async function retried<T>(run: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (error) {
      if (!isRetryable(error) || attempt >= MAX_ATTEMPTS) throw error;
      const ceiling = Math.min(1_000, 5 * 2 ** attempt);
      await sleep(ceiling / 2 + Math.random() * (ceiling / 2));
    }
  }
}

/**
 * Runs fn on one connection outside any transaction block, so that each statement it sends is a
 * database transaction of its own, committed when it ends: one round trip, no BEGIN, no COMMIT (the
 * group commit of transfers sends one statement, transfer_batch). Run again on a serialization
 * failure or deadlock, like withTransaction: a statement that failed left nothing behind.
 */
export async function withAutocommit<T>(database: DatabaseHandle, fn: (session: Session) => Promise<T>): Promise<T> {
  return retried(() => database.guard(() => database.withSession(fn)));
}
