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

/**
 * The one place that moves money: the only code that writes balances and journal entries. The entries
 * must sum to zero before any row is touched; the accounts are locked in id order; each entry records
 * the balance it left behind. A customer balance below zero is refused by the database's CHECK as well
 * as by the callers' checks, and the journal's deferred trigger refuses an unbalanced transaction at
 * commit: three independent guards for one invariant.
 */
export async function postTransaction(tx: Tx, posting: Posting): Promise<TransactionRow> {
  const net = posting.entries.reduce((sum, entry) => sum + entry.amount, 0n);
  if (posting.entries.length < 2 || net !== 0n || posting.entries.some((entry) => entry.amount === 0n)) {
    throw new UnbalancedPostingError(`a posting needs two or more non-zero entries summing to zero (net ${net})`);
  }
  const byAccount = new Map<string, bigint>();
  for (const entry of posting.entries) byAccount.set(entry.accountId, (byAccount.get(entry.accountId) ?? 0n) + entry.amount);
  const accountIds = [...byAccount.keys()].sort();

  const locked = await lockAccounts(tx, accountIds);
  const balances = new Map<string, bigint>();
  for (const id of accountIds) {
    const account = locked.get(id);
    if (!account) throw new DomainError('account_not_found', 'No such account');
    if (account.currency !== posting.currency) throw new DomainError('currency_mismatch', 'Money moves only between accounts of one currency');
    balances.set(id, account.balance);
  }

  try {
    // One statement for all balances; raw SQL because Kysely cannot join an UPDATE to a VALUES list.
    const values = sql.join(accountIds.map((id) => sql`(${id}::uuid, ${byAccount.get(id)!.toString()}::bigint)`));
    await sql`UPDATE accounts SET balance = accounts.balance + v.delta, updated_at = now()
              FROM (VALUES ${values}) AS v(id, delta) WHERE accounts.id = v.id`.execute(tx);
  } catch (error) {
    if (sqlState(error) === '23514') throw new DomainError('insufficient_funds', 'The account does not hold enough money');
    throw error;
  }

  const transaction = await tx
    .insertInto('transactions')
    .values({
      type: posting.type,
      status: 'completed',
      amount: posting.amount,
      currency: posting.currency,
      from_account_id: posting.fromAccountId,
      to_account_id: posting.toAccountId,
      description: posting.description,
      created_by: posting.createdBy,
      reviewed_by: null,
      reviewed_at: null,
      review_note: null,
      reverses_id: posting.reversesId ?? null,
    })
    .returningAll()
    .executeTakeFirstOrThrow();

  await tx
    .insertInto('journal_entries')
    .values(
      posting.entries.map((entry) => {
        const balanceAfter = balances.get(entry.accountId)! + entry.amount;
        balances.set(entry.accountId, balanceAfter);
        return { transaction_id: transaction.id, account_id: entry.accountId, amount: entry.amount, balance_after: balanceAfter };
      }),
    )
    .execute();
  return transaction;
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
