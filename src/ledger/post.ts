import { sql } from 'kysely';
import type { AccountRow, SystemAccount, TransactionRow, TransactionType, Tx } from '../db/schema.js';
import { sqlState } from '../db/transaction.js';
import { DomainError } from '../errors.js';
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

/**
 * The instant of a posting: the clock's `now`, or the latest last_posted_at of the accounts it locks
 * (read under their locks) if that is later. Instances' clocks differ by milliseconds, and the row
 * locks, not the clocks, order postings; statements read an account's entries in (posted_at, id) order
 * with the running balance the locks' order left, so an account's postings never go back in time
 * (ledger_post refuses one that would).
 */
export function postingInstant(now: Date, lockedAccounts: Iterable<Pick<AccountRow, 'last_posted_at'>>): Date {
  let instant = now;
  for (const { last_posted_at } of lockedAccounts) {
    if (last_posted_at !== null && last_posted_at.getTime() > instant.getTime()) instant = last_posted_at;
  }
  return instant;
}

function insertCompletedTransaction(tx: Tx, posting: Omit<Posting, 'entries'>, createdAt: Date) {
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
      // The posting's instant, which its journal entries share: the balance at created_at includes it.
      created_at: createdAt,
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
async function applyToLedger(tx: Tx, transactionId: string, entries: Entry[], postedAt: Date, held?: HeldChange): Promise<void> {
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
 * The accounts of a posting's entries, locked in id order (or as the caller locked them), each checked
 * to exist and to hold the posting's currency. The entries must sum to zero before any row is touched.
 */
async function lockEntryAccounts(
  tx: Tx,
  currency: string,
  entries: Entry[],
  locked?: ReadonlyMap<string, AccountRow>,
): Promise<AccountRow[]> {
  assertBalanced(entries);
  const accountIds = [...new Set(entries.map((entry) => entry.accountId))].sort();
  const rows = accountIds.every((id) => locked?.has(id)) ? locked! : await lockAccounts(tx, accountIds);
  return accountIds.map((id) => {
    const account = rows.get(id);
    if (!account) throw new DomainError('account_not_found', 'No such account');
    if (account.currency !== currency) throw new DomainError('currency_mismatch', 'Money moves only between accounts of one currency');
    return account;
  });
}

/**
 * The one way money moves at once: a completed transaction and its journal entries, each entry with
 * the balance it left behind. The accounts are locked in id order first; then the transaction row and
 * its entries take one instant, postingInstant(now, accounts), `now` being the app's clock. A caller
 * that has already locked the accounts in this transaction (with lockAccounts, and changed no balance
 * since) passes them as `locked`, which spares a second round trip to lock them again. Behind it, the
 * journal's deferred trigger refuses an unbalanced transaction at commit.
 */
export async function postTransaction(
  tx: Tx,
  posting: Posting,
  now: Date,
  locked?: ReadonlyMap<string, AccountRow>,
): Promise<TransactionRow> {
  const { entries, ...header } = posting;
  // Balanced, locked and checked before the transaction row exists, so a bad posting writes nothing.
  const accounts = await lockEntryAccounts(tx, posting.currency, entries, locked);
  const postedAt = postingInstant(now, accounts);
  const transaction = await insertCompletedTransaction(tx, header, postedAt);
  await applyToLedger(tx, transaction.id, entries, postedAt);
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

/**
 * Approves a held transfer: the hold becomes the journal entries that move the money, posted at
 * postingInstant(now, accounts); the review is stamped at `now`, the app's clock.
 */
export async function settleHeldTransfer(tx: Tx, held: TransactionRow, decision: Decision, now: Date): Promise<void> {
  const entries = movement(held.from_account_id, held.to_account_id, held.amount);
  const accounts = await lockEntryAccounts(tx, held.currency, entries);
  await applyToLedger(tx, held.id, entries, postingInstant(now, accounts), { accountId: held.from_account_id, delta: -held.amount });
  await markReviewed(tx, held.id, 'completed', decision, now);
}

/** Rejects a held transfer: the hold is released and no money moves; the review is stamped at `now`. */
export async function releaseHeldTransfer(tx: Tx, held: TransactionRow, decision: Decision, now: Date): Promise<void> {
  const accounts = await lockAccounts(tx, [held.from_account_id]);
  await applyToLedger(tx, held.id, [], postingInstant(now, accounts.values()), { accountId: held.from_account_id, delta: -held.amount });
  await markReviewed(tx, held.id, 'rejected', decision, now);
}

async function markReviewed(tx: Tx, id: string, status: 'completed' | 'rejected', decision: Decision, now: Date): Promise<void> {
  await tx
    .updateTable('transactions')
    .set({ status, reviewed_by: decision.reviewerId, reviewed_at: now, review_note: decision.note })
    .where('id', '=', id)
    .execute();
}
