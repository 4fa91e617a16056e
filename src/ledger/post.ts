import { sql } from 'kysely';
import type { AccountRow, SystemAccount, TransactionRow, TransactionType, Tx } from '../db/schema.js';
import { sqlState } from '../db/transaction.js';
import { DomainError } from '../http/errors.js';
import { formatAmount } from '../money.js';

export interface Entry {
  accountId: string;
  /** Signed minor units: negative leaves the account, positive enters it. */
  amount: bigint;
}

export interface Posting {
  type: TransactionType;
  amount: bigint;
  currency: string;
  /** The accounts a reader sees as sender and receiver (internal ones included). */
  fromAccountId: string;
  toAccountId: string;
  description: string | null;
  createdBy: string | null;
  reversesId?: string | null;
  /** The money: must sum to zero. */
  entries: Entry[];
}

export class UnbalancedPostingError extends Error {}

/**
 * Locks the accounts in id order (SELECT ... ORDER BY id FOR UPDATE locks rows in the order it returns
 * them) so that any two transactions touching the same accounts queue instead of deadlocking.
 */
export async function lockAccounts(tx: Tx, ids: string[]): Promise<Map<string, AccountRow>> {
  const rows = await tx
    .selectFrom('accounts')
    .selectAll()
    .where('id', 'in', [...new Set(ids)])
    .orderBy('id')
    .forUpdate()
    .execute();
  return new Map(rows.map((row) => [row.id, row]));
}

/** The bank's internal account of one kind and currency, created on first use. */
export async function internalAccount(tx: Tx, code: SystemAccount, currency: string): Promise<string> {
  await tx
    .insertInto('accounts')
    .values({ system_code: code, type: 'internal', currency, account_number: null, user_id: null, daily_limit: null })
    .onConflict((conflict) => conflict.columns(['system_code', 'currency']).doNothing())
    .execute();
  const row = await tx
    .selectFrom('accounts')
    .select('id')
    .where('system_code', '=', code)
    .where('currency', '=', currency)
    .executeTakeFirstOrThrow();
  return row.id;
}

/** The entries of moving `amount` from one account to another. */
export function movement(fromAccountId: string, toAccountId: string, amount: bigint): Entry[] {
  return [
    { accountId: fromAccountId, amount: -amount },
    { accountId: toAccountId, amount },
  ];
}

export function describeShortfall(available: bigint, needed: bigint): string {
  return `Available ${formatAmount(available)}, needed ${formatAmount(needed)}`;
}

function insertCompletedTransaction(tx: Tx, posting: Omit<Posting, 'entries'>) {
  return tx
    .insertInto('transactions')
    .values({
      // Time-ordered (src/ledger/sql/uuid_v7.sql says why).
      id: sql<string>`uuid_v7()`,
      type: posting.type,
      status: 'completed',
      amount: posting.amount,
      currency: posting.currency,
      from_account_id: posting.fromAccountId,
      to_account_id: posting.toAccountId,
      description: posting.description,
      created_by: posting.createdBy,
      review_reasons: [],
      reviewed_by: null,
      reviewed_at: null,
      review_note: null,
      reverses_id: posting.reversesId ?? null,
      // Callers insert after locking the accounts: the statement's start is when the transaction took
      // effect, not the database transaction's start (now()), which came before any lock wait.
      created_at: sql<Date>`statement_timestamp()`,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

function assertBalanced(entries: Entry[]): void {
  const net = entries.reduce((sum, entry) => sum + entry.amount, 0n);
  if (entries.length < 2 || net !== 0n || entries.some((entry) => entry.amount === 0n)) {
    throw new UnbalancedPostingError(`a posting needs two or more non-zero entries summing to zero (net ${net})`);
  }
}

/** Held-amount change of one account, applied with a posting's balances: + holds, - releases. */
interface HeldChange {
  accountId: string;
  delta: bigint;
}

/**
 * Applies entries and a held-amount change to accounts the caller has locked, as one posting of
 * `ledger_post` (src/ledger/sql/ledger_post.sql), the one writer of balances, held amounts and journal entries (a
 * batch of transfers is many postings of it: transfer_batch), in one round trip. The CHECK
 * constraints refuse a customer balance or available balance below zero, whatever the callers checked.
 */
async function applyToLedger(tx: Tx, transactionId: string, entries: Entry[], postedAt: Date | null, held?: HeldChange): Promise<void> {
  try {
    await sql`SELECT ledger_post(
      ARRAY[${transactionId}::uuid],
      ARRAY[${held?.accountId ?? null}::uuid],
      ARRAY[${(held?.delta ?? 0n).toString()}::bigint],
      ${entries.map(() => 1)}::integer[],
      ${entries.map((entry) => entry.accountId)}::uuid[],
      ${entries.map((entry) => entry.amount.toString())}::bigint[],
      ${postedAt}::timestamptz)`.execute(tx);
  } catch (error) {
    throw asInsufficientFunds(error);
  }
}

/** A balance CHECK refusing a posting is, to the caller, an account without enough money. */
export function asInsufficientFunds(error: unknown): unknown {
  return sqlState(error) === '23514' ? new DomainError('insufficient_funds', 'The account does not hold enough money') : error;
}

/**
 * Writes the journal entries of one transaction and the balances they change. The entries must sum to
 * zero before any row is touched; the accounts are locked in id order; each entry records the balance
 * it left behind. `release` lowers the sender's held amount in the same statement (a held transfer
 * being settled). Behind it, the journal's deferred trigger refuses an unbalanced transaction at commit.
 */
async function postEntries(
  tx: Tx,
  transactionId: string,
  currency: string,
  entries: Entry[],
  /** Null: the time of this statement, after the locks. */
  postedAt: Date | null,
  options: { release?: { accountId: string; amount: bigint }; locked?: ReadonlyMap<string, AccountRow> } = {},
) {
  assertBalanced(entries);
  const accountIds = [...new Set(entries.map((entry) => entry.accountId))].sort();
  const locked = accountIds.every((id) => options.locked?.has(id)) ? options.locked! : await lockAccounts(tx, accountIds);
  for (const id of accountIds) {
    const account = locked.get(id);
    if (!account) throw new DomainError('account_not_found', 'No such account');
    if (account.currency !== currency) throw new DomainError('currency_mismatch', 'Money moves only between accounts of one currency');
  }
  const { release } = options;
  await applyToLedger(tx, transactionId, entries, postedAt, release && { accountId: release.accountId, delta: -release.amount });
}

/**
 * The one way money moves at once: a completed transaction and its journal entries. A caller that has
 * already locked the accounts in this transaction (with lockAccounts, and changed no balance since)
 * passes them as `locked`, which spares a second round trip to lock them again.
 */
export async function postTransaction(tx: Tx, posting: Posting, locked?: ReadonlyMap<string, AccountRow>): Promise<TransactionRow> {
  const { entries, ...header } = posting;
  // Checked before the transaction row exists, so a bad posting touches nothing.
  assertBalanced(entries);
  const transaction = await insertCompletedTransaction(tx, header);
  // The entries take the transaction's own time, so the balance at its created_at includes it.
  await postEntries(tx, transaction.id, posting.currency, entries, transaction.created_at, locked ? { locked } : {});
  return transaction;
}

/** Locks a transaction row so that concurrent decisions on it queue: exactly one sees it pending. */
export async function lockTransaction(tx: Tx, id: string): Promise<TransactionRow | undefined> {
  return tx.selectFrom('transactions').selectAll().where('id', '=', id).forUpdate().executeTakeFirst();
}

export interface Decision {
  reviewerId: string;
  note: string | null;
}

/** Approves a held transfer: the hold becomes the journal entries that move the money. */
export async function settleHeldTransfer(tx: Tx, held: TransactionRow, decision: Decision): Promise<void> {
  await postEntries(tx, held.id, held.currency, movement(held.from_account_id, held.to_account_id, held.amount), null, {
    release: { accountId: held.from_account_id, amount: held.amount },
  });
  await markReviewed(tx, held.id, 'completed', decision);
}

/** Rejects a held transfer: the hold is released and no money moves. */
export async function releaseHeldTransfer(tx: Tx, held: TransactionRow, decision: Decision): Promise<void> {
  await lockAccounts(tx, [held.from_account_id]);
  await applyToLedger(tx, held.id, [], null, { accountId: held.from_account_id, delta: -held.amount });
  await markReviewed(tx, held.id, 'rejected', decision);
}

async function markReviewed(tx: Tx, id: string, status: 'completed' | 'rejected', decision: Decision): Promise<void> {
  await tx
    .updateTable('transactions')
    .set({ status, reviewed_by: decision.reviewerId, reviewed_at: sql<Date>`now()`, review_note: decision.note })
    .where('id', '=', id)
    .execute();
}
