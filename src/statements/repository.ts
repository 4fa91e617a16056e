import { sql, type Compilable, type OperationNodeSource } from 'kysely';
import type { Db, Tx } from '../db/schema.js';

/** A half-open span of instants: start <= posted_at < end. */
export interface Span {
  start: Date;
  end: Date;
}

/**
 * The balance after the account's last journal entry posted before (`<`) or at or before (`<=`) an
 * instant; 0 when it has none. Entries of one transaction share posted_at, so `id` breaks the tie; both
 * columns walk the (account_id, posted_at, id) index backwards and stop at the first row.
 */
export async function balanceAfterLastEntry(db: Db | Tx, accountId: string, comparison: '<' | '<=', instant: Date): Promise<bigint> {
  const row = await db
    .selectFrom('journal_entries')
    .select('balance_after')
    .where('account_id', '=', accountId)
    .where('posted_at', comparison, instant)
    .orderBy('posted_at', 'desc')
    .orderBy('id', 'desc')
    .limit(1)
    .executeTakeFirst();
  return row?.balance_after ?? 0n;
}

export interface SpanTotals {
  entryCount: number;
  credits: bigint;
  /** Positive: the sum of the amounts that left the account. */
  debits: bigint;
}

export async function totalsOver(db: Db | Tx, accountId: string, span: Span): Promise<SpanTotals> {
  const row = await db
    .selectFrom('journal_entries')
    .where('account_id', '=', accountId)
    .where('posted_at', '>=', span.start)
    .where('posted_at', '<', span.end)
    .select((eb) => [
      eb.fn.countAll<bigint>().as('entry_count'),
      // sum(bigint) is numeric; the cast brings it back as bigint (the driver's parser makes it a JS bigint).
      sql<bigint>`coalesce(sum(amount) FILTER (WHERE amount > 0), 0)::bigint`.as('credits'),
      sql<bigint>`coalesce(-sum(amount) FILTER (WHERE amount < 0), 0)::bigint`.as('debits'),
    ])
    .executeTakeFirstOrThrow();
  return { entryCount: Number(row.entry_count), credits: row.credits, debits: row.debits };
}

/**
 * The account's journal entries over a span, oldest first, with what the reader needs from each
 * transaction. The counterparty is the transaction's other account (null when it is the bank's own,
 * which has no number). The order (posted_at, id) is the index's, so rows leave the index in order and
 * a cursor over this query returns its first batch without sorting the span.
 */
export function entriesOver(db: Db | Tx, accountId: string, span: Span) {
  return db
    .selectFrom('journal_entries as e')
    .innerJoin('transactions as t', 't.id', 'e.transaction_id')
    .innerJoin('accounts as other', (join) =>
      join.on((eb) =>
        eb(
          'other.id',
          '=',
          eb
            .case()
            .when('t.from_account_id', '=', eb.ref('e.account_id'))
            .then(eb.ref('t.to_account_id'))
            .else(eb.ref('t.from_account_id'))
            .end(),
        ),
      ),
    )
    .select([
      'e.transaction_id',
      'e.posted_at',
      't.type',
      't.description',
      'e.amount',
      'e.balance_after',
      'other.account_number as counterparty',
    ])
    .where('e.account_id', '=', accountId)
    .where('e.posted_at', '>=', span.start)
    .where('e.posted_at', '<', span.end)
    .orderBy('e.posted_at')
    .orderBy('e.id');
}

export type EntryRow = Awaited<ReturnType<ReturnType<typeof entriesOver>['executeTakeFirstOrThrow']>>;

/** Outgoing transfers of the account still pending review and created before `createdBefore`, oldest first. */
export function pendingOutgoingTransfers(db: Db | Tx, accountId: string, createdBefore: Date) {
  return db
    .selectFrom('transactions as t')
    .innerJoin('accounts as receiver', 'receiver.id', 't.to_account_id')
    .select(['t.id', 't.created_at', 't.amount', 'receiver.account_number as counterparty', 't.review_reasons'])
    .where('t.from_account_id', '=', accountId)
    .where('t.status', '=', 'pending_review')
    .where('t.created_at', '<', createdBefore)
    .orderBy('t.created_at')
    .orderBy('t.id')
    .execute();
}

export type PendingTransferRow = Awaited<ReturnType<typeof pendingOutgoingTransfers>>[number];

/**
 * Reads a query's rows in batches through a server-side cursor, so that only one batch is in memory at
 * a time however many rows the query has. Raw SQL because the query builder has no DECLARE or FETCH;
 * DECLARE/FETCH rather than pg-cursor because the same statements run on PostgreSQL and on PGlite.
 *
 * It must run inside a transaction: the cursor is closed by the transaction's COMMIT or ROLLBACK,
 * whatever became of the reader (an abandoned generator included), so there is no CLOSE to forget.
 */
export async function* fetchInBatches<Row>(tx: Tx, query: Compilable<Row> & OperationNodeSource, batchSize: number): AsyncGenerator<Row[]> {
  const cursor = sql.id('statement_cursor');
  await sql`DECLARE ${cursor} NO SCROLL CURSOR FOR ${query}`.execute(tx);
  for (;;) {
    // FETCH takes its count as a literal, not as a parameter.
    const { rows } = await sql<Row>`FETCH FORWARD ${sql.lit(batchSize)} FROM ${cursor}`.execute(tx);
    if (rows.length > 0) yield rows;
    if (rows.length < batchSize) return;
  }
}
