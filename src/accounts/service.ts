import { sql } from 'kysely';
import { record, type Actor } from '../audit/record.js';
import type { AuthenticatedUser } from '../auth/service.js';
import type { AccountRow, AccountType, Db, Tx } from '../db/schema.js';
import { DomainError } from '../errors.js';
import { decodeCursor, toPage, type Page } from '../pagination.js';
import { describeShortfall, internalAccount, lockAccounts, movement, postTransaction } from '../ledger/post.js';
import { readTransaction, type TransactionView } from '../ledger/read.js';
import { formatAmount } from '../money.js';
import { getUser } from '../users/service.js';
import { findCustomerAccount, insertAccount, listCustomerAccounts } from './repository.js';

export interface AccountView {
  id: string;
  account_number: string;
  user_id: string;
  type: Exclude<AccountType, 'internal'>;
  currency: string;
  balance: string;
  available_balance: string;
  daily_limit: string;
  status: AccountRow['status'];
  created_at: string;
}

export function toAccountView(account: AccountRow): AccountView {
  return {
    id: account.id,
    account_number: account.account_number!,
    user_id: account.user_id!,
    type: account.type as AccountView['type'],
    currency: account.currency,
    balance: formatAmount(account.balance),
    available_balance: formatAmount(account.balance - account.held),
    daily_limit: formatAmount(account.daily_limit!),
    status: account.status,
    created_at: account.created_at.toISOString(),
  };
}

/** Customers see their own accounts; staff see all. An invisible account answers like a missing one. */
export function canSee(caller: AuthenticatedUser, account: AccountRow): boolean {
  return caller.role !== 'customer' || account.user_id === caller.id;
}

export async function getVisibleAccount(db: Db, caller: AuthenticatedUser, id: string): Promise<AccountRow> {
  const account = await findCustomerAccount(db, id);
  if (!account || !canSee(caller, account)) throw new DomainError('not_found', 'No such account');
  return account;
}

export interface OpenAccountInput {
  userId: string;
  type: Exclude<AccountType, 'internal'>;
  currency: string;
  dailyLimit: bigint;
  initialDeposit: bigint | undefined;
}

/** Opens an account; an initial deposit is posted as a teller deposit at `now`, the app's clock. */
export async function openAccount(tx: Tx, actor: Actor, input: OpenAccountInput, now: Date): Promise<AccountRow> {
  const owner = await getUser(tx, input.userId);
  if (owner.role !== 'customer') throw new DomainError('user_not_customer', 'Accounts are opened for customers only');
  const account = await insertAccount(tx, input);
  await record(tx, actor, {
    action: 'account.created',
    targetType: 'account',
    targetId: account.id,
    details: {
      user_id: owner.id,
      account_number: account.account_number,
      type: account.type,
      currency: account.currency,
      daily_limit: formatAmount(input.dailyLimit),
    },
  });
  if (input.initialDeposit === undefined) return account;
  await deposit(tx, actor, account.id, input.initialDeposit, 'Initial deposit', now);
  return (await findCustomerAccount(tx, account.id))!;
}

export async function listAccounts(
  db: Db,
  caller: AuthenticatedUser,
  query: { userId?: string; limit: number; cursor?: string },
): Promise<Page<AccountView>> {
  const userId = caller.role === 'customer' ? caller.id : query.userId;
  const rows = await listCustomerAccounts(db, { limit: query.limit, after: decodeCursor(query.cursor), ...(userId ? { userId } : {}) });
  return toPage(rows, query.limit, (row) => ({ at: row.created_at, id: row.id }), toAccountView);
}

/**
 * A frozen or closed account neither sends nor receives, at the teller's window too: a freeze is a
 * hold on the whole relationship (fraud, a court order), and a deposit into it would only add to what
 * the bank must later untangle.
 */
function assertActive(account: AccountRow): void {
  if (account.status !== 'active') throw new DomainError('account_not_active', `Account ${account.account_number} is ${account.status}`);
}

/** A teller deposit: cash in, posted from the bank's cash account at `now` (postTransaction). */
export function deposit(
  tx: Tx,
  actor: Actor,
  accountId: string,
  amount: bigint,
  description: string | null,
  now: Date,
): Promise<TransactionView> {
  return postAtTeller(tx, actor, 'deposit', accountId, amount, description, now);
}

/** A teller withdrawal: cash out, never beyond the available balance, posted at `now` (postTransaction). */
export function withdraw(
  tx: Tx,
  actor: Actor,
  accountId: string,
  amount: bigint,
  description: string | null,
  now: Date,
): Promise<TransactionView> {
  return postAtTeller(tx, actor, 'withdrawal', accountId, amount, description, now);
}

async function postAtTeller(
  tx: Tx,
  actor: Actor,
  type: 'deposit' | 'withdrawal',
  accountId: string,
  amount: bigint,
  description: string | null,
  now: Date,
): Promise<TransactionView> {
  const account = await findCustomerAccount(tx, accountId);
  if (!account) throw new DomainError('not_found', 'No such account');
  const cashId = await internalAccount(tx, 'cash', account.currency);
  const accounts = await lockAccounts(tx, [account.id, cashId]);
  const locked = accounts.get(account.id)!;
  assertActive(locked);
  const [fromId, toId] = type === 'deposit' ? [cashId, account.id] : [account.id, cashId];
  if (type === 'withdrawal') {
    const available = locked.balance - locked.held;
    if (available < amount) throw new DomainError('insufficient_funds', describeShortfall(available, amount));
  }
  const transaction = await postTransaction(
    tx,
    {
      type,
      amount,
      currency: account.currency,
      fromAccountId: fromId,
      toAccountId: toId,
      description,
      createdBy: actor.id,
      entries: movement(fromId, toId, amount),
    },
    now,
    accounts,
  );
  await record(tx, actor, {
    action: type === 'deposit' ? 'account.deposited' : 'account.withdrawn',
    targetType: 'transaction',
    targetId: transaction.id,
    details: { account_id: account.id, amount: formatAmount(amount), currency: account.currency },
  });
  return readTransaction(tx, transaction.id);
}

export interface AccountChanges {
  status?: 'active' | 'frozen' | 'closed';
  dailyLimit?: bigint;
}

/**
 * Freezes, unfreezes or closes an account, or sets its daily limit. Closing needs a zero balance and no
 * held transfer (409 balance_not_zero); a closed account stays closed (409 account_closed). The row is
 * locked, so a transfer cannot slip in between the balance check and the close.
 */
export async function updateAccount(tx: Tx, actor: Actor, id: string, changes: AccountChanges): Promise<AccountRow> {
  const account = (await lockAccounts(tx, [id])).get(id);
  if (!account || account.type === 'internal') throw new DomainError('not_found', 'No such account');
  if (account.status === 'closed') throw new DomainError('account_closed', 'A closed account stays closed');
  if (changes.status === 'closed' && (account.balance !== 0n || account.held !== 0n)) {
    throw new DomainError(
      'balance_not_zero',
      `Balance ${formatAmount(account.balance)}, held ${formatAmount(account.held)}: empty the account first`,
    );
  }
  const updated = await tx
    .updateTable('accounts')
    .set({
      ...(changes.status !== undefined ? { status: changes.status } : {}),
      ...(changes.dailyLimit !== undefined ? { daily_limit: changes.dailyLimit } : {}),
      updated_at: sql`now()`,
    })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirstOrThrow();
  if (changes.status !== undefined && changes.status !== account.status) {
    const action = { active: 'account.unfrozen', frozen: 'account.frozen', closed: 'account.closed' }[changes.status];
    await record(tx, actor, { action, targetType: 'account', targetId: id, details: { from: account.status, to: changes.status } });
  }
  if (changes.dailyLimit !== undefined && changes.dailyLimit !== account.daily_limit) {
    await record(tx, actor, {
      action: 'account.limit_changed',
      targetType: 'account',
      targetId: id,
      details: { from: formatAmount(account.daily_limit!), to: formatAmount(changes.dailyLimit) },
    });
  }
  return updated;
}
