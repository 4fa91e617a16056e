import { randomUUID } from 'node:crypto';
import { sql, type RawBuilder } from 'kysely';
import type { Actor } from '../audit/record.js';
import type { AuthenticatedUser } from '../auth/service.js';
import type { AccountRow, Db, TransactionStatus, TransactionType, Tx } from '../db/schema.js';
import { afterCursor, decodeCursor, toPage, type Page } from '../http/pagination.js';
import { DomainError, validationError } from '../http/errors.js';
import { asInsufficientFunds, describeShortfall } from '../ledger/post.js';
import { asInProgress, replayOf, type IdempotencyScope, type Outcome } from '../http/idempotency.js';
import { reviewReasons, type RiskSettings } from '../risk/rules.js';
import { selectTransactions, toTransactionView, type TransactionView } from '../ledger/read.js';
import { formatAmount } from '../money.js';

export interface TransferInput {
  fromAccount: string;
  toAccount: string;
  amount: bigint;
  description: string | null;
}

/** A row of `transfer_begin`: a locked account with the sender's history, or a stored answer. */
interface TransferBeginRow {
  stored_fingerprint: string | null;
  stored_status: number | null;
  stored_response: unknown;
  id: string;
  account_number: string;
  user_id: string;
  type: AccountRow['type'];
  currency: string;
  balance: bigint;
  held: bigint;
  daily_limit: bigint;
  status: AccountRow['status'];
  created_at: Date;
  updated_at: Date;
  sent_today: bigint;
  recent_transfers: bigint;
  paid_before: boolean;
  read_at: Date;
}

/**
 * Moves money between two customer accounts in one database transaction of two statements (migration
 * 0007). The first claims the idempotency key, locks both accounts in id order and reads the sender's
 * history under those locks, so the balance, daily-limit and risk checks below see every earlier
 * transfer from the same account and no concurrent one can slip past them. The second records and
 * posts the transfer, its audit entry and its stored answer. A transfer a risk rule flags is held for
 * review instead of posted: its amount stops being available but does not move.
 */
export async function transfer(
  tx: Tx,
  actor: Actor & { id: string },
  input: TransferInput,
  risk: RiskSettings,
  idempotency: IdempotencyScope | null,
): Promise<Outcome> {
  if (input.fromAccount === input.toAccount) throw validationError('to_account', 'must differ from from_account');
  let rows: TransferBeginRow[];
  try {
    ({ rows } = await sql<TransferBeginRow>`SELECT * FROM transfer_begin(
      ${actor.id}, ${input.fromAccount}, ${input.toAccount}, ${risk.riskVelocityMinutes},
      ${idempotency?.key ?? null}, ${idempotency?.endpoint ?? null}, ${idempotency?.fingerprint ?? null})`.execute(tx));
  } catch (error) {
    throw asInProgress(error);
  }
  const stored = rows[0];
  if (idempotency && stored?.stored_fingerprint) {
    return replayOf({ fingerprint: stored.stored_fingerprint, status_code: stored.stored_status, response: stored.stored_response }, idempotency);
  }
  const sender = rows.find((account) => account.account_number === input.fromAccount);
  const receiver = rows.find((account) => account.account_number === input.toAccount);
  if (!sender) throw new DomainError('account_not_found', `No account ${input.fromAccount} of yours`);
  if (!receiver) throw new DomainError('account_not_found', `No account ${input.toAccount}`);
  for (const account of [sender, receiver]) {
    if (account.status !== 'active') throw new DomainError('account_not_active', `Account ${account.account_number} is ${account.status}`);
  }
  if (sender.currency !== receiver.currency) {
    throw new DomainError('currency_mismatch', `Cannot move ${sender.currency} into a ${receiver.currency} account`);
  }
  const available = sender.balance - sender.held;
  if (available < input.amount) throw new DomainError('insufficient_funds', describeShortfall(available, input.amount));
  if (sender.sent_today + input.amount > sender.daily_limit) {
    throw new DomainError(
      'daily_limit_exceeded',
      `Daily limit ${formatAmount(sender.daily_limit)}; already sent today ${formatAmount(sender.sent_today)}`,
    );
  }

  const history = { sentToday: sender.sent_today, paidReceiverBefore: sender.paid_before, recentTransfers: Number(sender.recent_transfers) };
  const reasons = reviewReasons({ amount: input.amount, senderOpenedAt: sender.created_at, now: sender.read_at }, history, risk);
  const status = reasons.length > 0 ? 'pending_review' : 'completed';
  const id = randomUUID();
  const view: Omit<TransactionView, 'created_at'> = {
    id,
    type: 'transfer',
    status,
    amount: formatAmount(input.amount),
    currency: sender.currency,
    from_account: sender.account_number,
    to_account: receiver.account_number,
    description: input.description,
    created_by: actor.id,
    review_reasons: reasons,
    reviewed_by: null,
    reviewed_at: null,
    review_note: null,
    reverses: null,
    reversed_by: null,
  };
  const auditDetails = {
    from_account: sender.account_number,
    to_account: receiver.account_number,
    amount: view.amount,
    currency: sender.currency,
    status,
    ...(reasons.length > 0 ? { review_reasons: reasons } : {}),
  };
  let answer;
  try {
    ({ rows: [answer] } = await sql<{ answer: TransactionView }>`SELECT transfer_finish(
      ${id}, ${status}, ${reasons}::text[],
      ${sender.id}, ${receiver.id}, ${input.amount.toString()}::bigint, ${sender.currency}, ${input.description},
      ${actor.id}, ${actor.role}, ${actor.ip}, ${actor.requestId}, ${JSON.stringify(auditDetails)}::jsonb,
      ${idempotency?.key ?? null}, ${idempotency?.endpoint ?? null}, ${JSON.stringify({ ...view, transaction_id: id })}::jsonb) AS answer`.execute(tx));
  } catch (error) {
    throw asInsufficientFunds(error);
  }
  return { replayed: false, status: 201, body: answer!.answer };
}

/** A customer sees transactions that touch its own accounts; staff see all. Anything else is not found. */
export async function getVisibleTransaction(db: Db, caller: AuthenticatedUser, id: string): Promise<TransactionView> {
  const row = await selectTransactions(db).where('t.id', '=', id).executeTakeFirst();
  const visible = row && (caller.role !== 'customer' || row.from_user_id === caller.id || row.to_user_id === caller.id);
  if (!visible) throw new DomainError('not_found', 'No such transaction');
  return toTransactionView(row);
}

export interface TransactionFilter {
  accountId?: string;
  status?: TransactionStatus;
  type?: TransactionType;
  /** Inclusive UTC dates, YYYY-MM-DD. */
  from?: string;
  to?: string;
  limit: number;
  cursor?: string;
}

/**
 * Newest first, by keyset (created_at, id): a page never repeats or skips a row that existed when the
 * listing began, however many transfers are inserted meanwhile (they sort before the cursor).
 *
 * A listing restricted to accounts (a customer's own, or `account_id`) reads each account's sent and
 * received transactions from their own (account, created_at, id) indexes, each limited to the page,
 * and merges them: its cost follows those accounts' history, not the bank's. (An OR over the accounts
 * lets PostgreSQL walk the whole bank's time index instead, hoping for early matches: seconds on a
 * large ledger for an account with few or none.)
 */
export async function listTransactions(db: Db, caller: AuthenticatedUser, filter: TransactionFilter): Promise<Page<TransactionView>> {
  if (filter.from && filter.to && filter.from > filter.to) throw validationError('from', 'must not be after to');
  let accountIds: string[] | undefined;
  if (filter.accountId !== undefined) {
    const account = await db.selectFrom('accounts').select(['id', 'user_id']).where('id', '=', filter.accountId).executeTakeFirst();
    if (!account || account.user_id === null || (caller.role === 'customer' && account.user_id !== caller.id)) {
      throw new DomainError('not_found', 'No such account');
    }
    accountIds = [account.id];
  } else if (caller.role === 'customer') {
    accountIds = (await db.selectFrom('accounts').select('id').where('user_id', '=', caller.id).execute()).map((row) => row.id);
    if (accountIds.length === 0) return { items: [], next_cursor: null };
  }

  const after = decodeCursor(filter.cursor);
  const conditions = (alias: string): RawBuilder<boolean>[] => {
    const column = (name: string) => sql.ref(`${alias}.${name}`);
    return [
      ...(filter.status ? [sql<boolean>`${column('status')} = ${filter.status}`] : []),
      ...(filter.type ? [sql<boolean>`${column('type')} = ${filter.type}`] : []),
      ...(filter.from ? [sql<boolean>`${column('created_at')} >= ${filter.from}::date::timestamp AT TIME ZONE 'UTC'`] : []),
      ...(filter.to ? [sql<boolean>`${column('created_at')} < (${filter.to}::date + 1)::timestamp AT TIME ZONE 'UTC'`] : []),
      ...(after ? [afterCursor(`${alias}.created_at`, `${alias}.id`, after, 'desc')] : []),
    ];
  };

  let query = selectTransactions(db);
  if (accountIds) {
    const pages = accountIds.flatMap((accountId) =>
      (['from_account_id', 'to_account_id'] as const).map((side) => {
        let page = db.selectFrom('transactions as m').select('m.id').where(`m.${side}`, '=', accountId);
        for (const condition of conditions('m')) page = page.where(condition);
        return page.orderBy('m.created_at', 'desc').orderBy('m.id', 'desc').limit(filter.limit + 1);
      }),
    );
    // UNION ALL: a transfer between two of the listed accounts is in two of the pages, and IN counts it once.
    const ids = sql.join(
      pages.map((page, i) => sql`SELECT id FROM ${page} AS ${sql.raw(`page${i}`)}`),
      sql` UNION ALL `,
    );
    query = query.where(sql<boolean>`t.id IN (${ids})`);
  } else {
    for (const condition of conditions('t')) query = query.where(condition);
  }
  const rows = await query.orderBy('t.created_at', 'desc').orderBy('t.id', 'desc').limit(filter.limit + 1).execute();
  return toPage(rows, filter.limit, (row) => ({ at: row.created_at, id: row.id }), toTransactionView);
}
