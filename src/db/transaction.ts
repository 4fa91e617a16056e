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

export async function withTransaction<T>(database: DatabaseHandle, fn: (tx: Tx) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
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

/** A transaction driven statement by statement in SQL text, with fewer round trips (withPipelinedTransaction). */
export interface PipelinedTransaction {
  query<R>(text: string, params: readonly unknown[]): Promise<R[]>;
  /**
   * Runs the transaction's last statement and commits. COMMIT goes out right behind the statement;
   * if the statement fails, PostgreSQL has aborted the transaction and answers that COMMIT by
   * rolling back, and the statement's error is thrown.
   */
  commitWith<R>(text: string, params: readonly unknown[]): Promise<R[]>;
}

/**
 * Like withTransaction, for a transaction whose statements are known in order (the group commit of
 * transfers): on PostgreSQL the connection pipelines (pg's `pipeline` mode), so BEGIN travels with
 * the first statement and COMMIT with the last, two round trips fewer than BEGIN, ..., COMMIT each
 * awaited. Without pipelining (PGlite, or a pg that lacks it) the same calls queue on the session
 * in the same order: the behaviour is identical, only slower. If fn ends without commitWith, the
 * transaction is committed after it; if fn throws, it is rolled back.
 */
export async function withPipelinedTransaction<T>(database: DatabaseHandle, fn: (tx: PipelinedTransaction) => Promise<T>): Promise<T> {
  return retried(() => database.guard(() => database.withSession((session) => runPipelined(session, fn))));
}

async function runPipelined<T>(session: Session, fn: (tx: PipelinedTransaction) => Promise<T>): Promise<T> {
  // BEGIN can fail only with the connection, and then so does every statement queued behind it.
  const begun = session.query('BEGIN');
  begun.catch(() => {});
  let open = true;
  const statement = async <R>(text: string, params: readonly unknown[]) => {
    const [rows] = await Promise.all([session.query<R>(text, [...params], { prepared: true }), begun]);
    return rows;
  };
  const tx: PipelinedTransaction = {
    query: (text, params) => statement(text, params),
    async commitWith<R>(text: string, params: readonly unknown[]) {
      open = false;
      const [result, committed] = await Promise.allSettled([statement<R>(text, params), session.query('COMMIT')]);
      if (result.status === 'rejected') throw result.reason;
      if (committed.status === 'rejected') throw committed.reason;
      return result.value;
    },
  };
  try {
    const value = await fn(tx);
    if (open) {
      open = false;
      await session.query('COMMIT');
    }
    return value;
  } catch (error) {
    // After a failed commitWith the transaction is over; otherwise end it before the session goes back.
    if (open) await session.query('ROLLBACK').catch(() => {});
    throw error;
  }
}
