import { sql, type RawBuilder } from 'kysely';
import type { Actor } from '../audit/record.js';
import type { AuthenticatedUser } from '../auth/service.js';
import type { Settled } from '../db/batch-queue.js';
import type { PipelinedTransaction } from '../db/transaction.js';
import type { AccountRow, Db, TransactionStatus, TransactionType, Tx } from '../db/schema.js';
import { afterCursor, decodeCursor, toPage, type Page } from '../http/pagination.js';
import { DomainError, validationError } from '../http/errors.js';
import { asInsufficientFunds, describeShortfall, newTransactionId } from '../ledger/post.js';
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

/** One customer's transfer request, as a batch carries it. */
export interface TransferRequest {
  actor: Actor & { id: string };
  input: TransferInput;
  idempotency: IdempotencyScope | null;
}

/**
 * A row of `transfer_batch_begin` (migration 0008): the stored answer of a request whose key an
 * earlier request claimed (ord set), or a locked account with, if it sends in the batch, its history.
 */
interface BatchBeginRow {
  ord: number | null;
  stored_fingerprint: string | null;
  stored_status: number | null;
  stored_response: unknown;
  id: string;
  account_number: string;
  user_id: string | null;
  type: AccountRow['type'];
  currency: string;
  balance: bigint;
  held: bigint;
  daily_limit: bigint;
  status: AccountRow['status'];
  created_at: Date;
  sent_today: bigint | null;
  recent_transfers: bigint | null;
  paid_to: string[] | null;
  read_at: Date;
}

/** A locked account as the batch's transfers checked so far have left it. */
interface AccountState {
  id: string;
  accountNumber: string;
  userId: string | null;
  currency: string;
  status: AccountRow['status'];
  openedAt: Date;
  balance: bigint;
  held: bigint;
  dailyLimit: bigint;
  sentToday: bigint;
  recentTransfers: number;
  /** Receivers (of this batch) that this account has completed a transfer to. */
  paidTo: Set<string>;
}

/** A transfer that passed its checks, as transfer_batch_finish (migrations 0010 and 0012) takes it. */
interface CheckedTransfer {
  id: string;
  status: TransactionStatus;
  review_reasons: string[];
  sender: string;
  receiver: string;
  amount: string;
  currency: string;
  description: string | null;
  user: string;
  actor_role: string | null;
  ip: string | null;
  request_id: string | null;
  audit_details: Record<string, unknown>;
  key: string | null;
  endpoint: string | null;
  answer: Omit<TransactionView, 'created_at'> & { transaction_id: string };
}

/**
 * Moves money between customer accounts: a batch of transfers (group commit: src/db/batch-queue.ts)
 * in one database transaction of two statements (migrations 0008, 0010 and 0012). The first claims the idempotency
 * keys, locks every account involved in id order and reads the senders' history under those locks;
 * then each transfer is checked, in order, against the state the batch's earlier transfers left (the
 * balance, the daily limit, the risk rules), so no transfer can slip past a check that a concurrent one
 * would have made it fail. The second statement records and posts those that passed, with their audit
 * entries and stored answers, and releases the keys of those refused. A transfer a risk rule flags is
 * held for review instead of posted: its amount stops being available but does not move.
 */
export async function transferBatch(tx: PipelinedTransaction, requests: readonly TransferRequest[], risk: RiskSettings): Promise<Settled<Outcome>[]> {
  const results: (Settled<Outcome> | undefined)[] = requests.map((request) =>
    request.input.fromAccount === request.input.toAccount ? { ok: false, error: validationError('to_account', 'must differ from from_account') } : undefined,
  );
  const sent = requests.flatMap((request, index) => (results[index] ? [] : [{ request, index }]));
  if (sent.length === 0) return results as Settled<Outcome>[];

  let rows: BatchBeginRow[];
  try {
    const column = <V>(pick: (request: TransferRequest) => V) => sent.map(({ request }) => pick(request));
    rows = await tx.query<BatchBeginRow>(
      'SELECT * FROM transfer_batch_begin($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7, $8)',
      [
        column((r) => r.actor.id),
        column((r) => r.input.fromAccount),
        column((r) => r.input.toAccount),
        column((r) => r.idempotency?.key ?? null),
        column((r) => r.idempotency?.endpoint ?? null),
        column((r) => r.idempotency?.fingerprint ?? null),
        risk.riskVelocityMinutes,
        risk.riskVelocityCount,
      ],
    );
  } catch (error) {
    throw asInProgress(error);
  }

  const accounts = new Map<string, AccountState>();
  let now = new Date();
  for (const row of rows) {
    if (row.ord !== null) {
      const { request, index } = sent[row.ord - 1]!;
      const stored = { fingerprint: row.stored_fingerprint!, status_code: row.stored_status, response: row.stored_response };
      results[index] = settle(() => replayOf(stored, request.idempotency!));
      continue;
    }
    now = row.read_at;
    accounts.set(row.account_number, {
      id: row.id,
      accountNumber: row.account_number,
      userId: row.user_id,
      currency: row.currency,
      status: row.status,
      openedAt: row.created_at,
      balance: row.balance,
      held: row.held,
      dailyLimit: row.daily_limit,
      sentToday: row.sent_today ?? 0n,
      recentTransfers: Number(row.recent_transfers ?? 0n),
      paidTo: new Set(row.paid_to ?? []),
    });
  }

  const checked: { index: number; transfer: CheckedTransfer }[] = [];
  const released: { user: string; endpoint: string; key: string }[] = [];
  for (const { request, index } of sent) {
    if (results[index]) continue;
    try {
      checked.push({ index, transfer: checkTransfer(request, accounts, now, risk) });
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
      results[index] = { ok: false, error };
      const scope = request.idempotency;
      if (scope) released.push({ user: scope.userId, endpoint: scope.endpoint, key: scope.key });
    }
  }

  if (checked.length > 0 || released.length > 0) {
    let answers: { answer: TransactionView }[];
    try {
      answers = await tx.commitWith<{ answer: TransactionView }>('SELECT transfer_batch_finish($1::jsonb, $2::jsonb) AS answer', [
        JSON.stringify(checked.map(({ transfer }) => transfer)),
        JSON.stringify(released),
      ]);
    } catch (error) {
      throw asInsufficientFunds(error);
    }
    checked.forEach(({ index }, k) => {
      results[index] = { ok: true, value: { replayed: false, status: 201, body: answers[k]!.answer } };
    });
  }
  return results as Settled<Outcome>[];
}

function settle<T>(fn: () => T): Settled<T> {
  try {
    return { ok: true, value: fn() };
  } catch (error) {
    return { ok: false, error };
  }
}

/**
 * Checks one transfer of a batch against the accounts as the batch's earlier transfers left them and,
 * if it passes, applies it to them: what transfer_batch_finish will write, the database's checks behind it.
 */
function checkTransfer(request: TransferRequest, accounts: Map<string, AccountState>, now: Date, risk: RiskSettings): CheckedTransfer {
  const { actor, input, idempotency } = request;
  const candidate = accounts.get(input.fromAccount);
  const sender = candidate && candidate.userId === actor.id ? candidate : undefined;
  const receiver = accounts.get(input.toAccount);
  if (!sender) throw new DomainError('account_not_found', `No account ${input.fromAccount} of yours`);
  if (!receiver) throw new DomainError('account_not_found', `No account ${input.toAccount}`);
  for (const account of [sender, receiver]) {
    if (account.status !== 'active') throw new DomainError('account_not_active', `Account ${account.accountNumber} is ${account.status}`);
  }
  if (sender.currency !== receiver.currency) {
    throw new DomainError('currency_mismatch', `Cannot move ${sender.currency} into a ${receiver.currency} account`);
  }
  const available = sender.balance - sender.held;
  if (available < input.amount) throw new DomainError('insufficient_funds', describeShortfall(available, input.amount));
  if (sender.sentToday + input.amount > sender.dailyLimit) {
    throw new DomainError(
      'daily_limit_exceeded',
      `Daily limit ${formatAmount(sender.dailyLimit)}; already sent today ${formatAmount(sender.sentToday)}`,
    );
  }

  const history = { sentToday: sender.sentToday, paidReceiverBefore: sender.paidTo.has(receiver.id), recentTransfers: sender.recentTransfers };
  const reasons = reviewReasons({ amount: input.amount, senderOpenedAt: sender.openedAt, now }, history, risk);
  const status = reasons.length > 0 ? 'pending_review' : 'completed';
  if (status === 'completed') {
    sender.balance -= input.amount;
    receiver.balance += input.amount;
    sender.paidTo.add(receiver.id);
  } else {
    sender.held += input.amount;
  }
  sender.sentToday += input.amount;
  sender.recentTransfers += 1;

  const id = newTransactionId();
  const amount = formatAmount(input.amount);
  return {
    id,
    status,
    review_reasons: reasons,
    sender: sender.id,
    receiver: receiver.id,
    amount: input.amount.toString(),
    currency: sender.currency,
    description: input.description,
    user: actor.id,
    actor_role: actor.role,
    ip: actor.ip,
    request_id: actor.requestId,
    audit_details: {
      from_account: sender.accountNumber,
      to_account: receiver.accountNumber,
      amount,
      currency: sender.currency,
      status,
      ...(reasons.length > 0 ? { review_reasons: reasons } : {}),
    },
    key: idempotency?.key ?? null,
    endpoint: idempotency?.endpoint ?? null,
    answer: {
      id,
      transaction_id: id,
      type: 'transfer',
      status,
      amount,
      currency: sender.currency,
      from_account: sender.accountNumber,
      to_account: receiver.accountNumber,
      description: input.description,
      created_by: actor.id,
      review_reasons: reasons,
      reviewed_by: null,
      reviewed_at: null,
      review_note: null,
      reverses: null,
      reversed_by: null,
    },
  };
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
