import type { Db, TransactionStatus, TransactionType, Tx } from '../db/schema.js';
import { formatAmount } from '../money.js';

/** The wire shape of a transaction (docs/api.md, "Transactions and transfers"). Internal accounts show as null: the bank's own side. */
export interface TransactionView {
  id: string;
  type: TransactionType;
  status: TransactionStatus;
  amount: string;
  currency: string;
  from_account: string | null;
  to_account: string | null;
  description: string | null;
  created_by: string | null;
  created_at: string;
  review_reasons: string[];
  reviewed_by: string | null;
  reviewed_at: string | null;
  review_note: string | null;
  /** For a reversal: the transaction it reverses. */
  reverses: string | null;
  /** The reversal of this transaction, once reversed. */
  reversed_by: string | null;
}

/** Transactions with their accounts' numbers and owners, for views and visibility checks. */
export function selectTransactions(db: Db) {
  return db
    .selectFrom('transactions as t')
    .innerJoin('accounts as f', 'f.id', 't.from_account_id')
    .innerJoin('accounts as d', 'd.id', 't.to_account_id')
    .leftJoin('transactions as r', 'r.reverses_id', 't.id')
    .select([
      't.id',
      't.type',
      't.status',
      't.amount',
      't.currency',
      't.description',
      't.created_by',
      't.created_at',
      't.review_reasons',
      't.reviewed_by',
      't.reviewed_at',
      't.review_note',
      'f.account_number as from_account',
      'd.account_number as to_account',
      'f.user_id as from_user_id',
      'd.user_id as to_user_id',
      't.reverses_id as reverses',
      'r.id as reversed_by',
    ]);
}

type TransactionQuery = ReturnType<typeof selectTransactions>;
export type TransactionRecord = Awaited<ReturnType<TransactionQuery['executeTakeFirstOrThrow']>>;

/** What the view shows of a transaction: its row and its accounts' numbers, not their owners. */
export type TransactionViewRecord = Omit<TransactionRecord, 'from_user_id' | 'to_user_id'>;

/** The one builder of the wire shape: every answer that shows a transaction goes through it. */
export function toTransactionView(row: TransactionViewRecord): TransactionView {
  return {
    id: row.id,
    type: row.type,
    status: row.status,
    amount: formatAmount(row.amount),
    currency: row.currency,
    from_account: row.from_account,
    to_account: row.to_account,
    description: row.description,
    created_by: row.created_by,
    created_at: row.created_at.toISOString(),
    review_reasons: row.review_reasons,
    reviewed_by: row.reviewed_by,
    reviewed_at: row.reviewed_at?.toISOString() ?? null,
    review_note: row.review_note,
    reverses: row.reverses,
    reversed_by: row.reversed_by,
  };
}

export async function readTransaction(tx: Tx, id: string): Promise<TransactionView> {
  return toTransactionView(await selectTransactions(tx).where('t.id', '=', id).executeTakeFirstOrThrow());
}
