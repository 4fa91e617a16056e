import { sql, type RawBuilder } from 'kysely';
import type { Actor } from '../audit/record.js';
import type { AuthenticatedUser, TokenHolder } from '../auth/service.js';
import type { Config } from '../config.js';
import { BatchQueue, type Settled } from '../db/batch-queue.js';
import type { DatabaseHandle, Session } from '../db/connection.js';
import { databaseTrouble, sqlState, withAutocommit } from '../db/transaction.js';
import type { Db, TransactionStatus, TransactionType } from '../db/schema.js';
import { afterCursor, decodeCursor, toPage, type Page } from '../pagination.js';
import { DomainError, validationError, type ErrorCode } from '../errors.js';
import { asInsufficientFunds } from '../ledger/post.js';
import { asInProgress, type IdempotencyScope, type Outcome } from '../db/idempotency.js';
import { riskArgument, type RiskSettings } from '../risk/rules.js';
import { selectTransactions, toTransactionView, type TransactionView } from '../ledger/read.js';

export interface TransferInput {
  fromAccount: string;
  toAccount: string;
  amount: bigint;
  description: string | null;
}

/** One customer's transfer request, as a batch carries it, with the access token it came with. */
export interface TransferRequest {
  actor: Actor & TokenHolder;
  input: TransferInput;
  idempotency: IdempotencyScope | null;
}

/**
 * A row of `transfer_batch` (src/transfers/sql/transfer_batch.sql): what became of one request of the
 * batch. A refusal (fresh, or the key's stored one replayed) has `problem` and `detail`; otherwise the
 * row is the transfer as it was created (replayed when the key's stored answer).
 */
interface TransferBatchRow {
  ord: number;
  replayed: boolean;
  problem: ErrorCode | null;
  detail: string | null;
  id: string;
  status: TransactionStatus;
  amount: bigint;
  currency: string;
  from_account: string;
  to_account: string;
  description: string | null;
  created_by: string;
  created_at: Date;
  review_reasons: string[];
}

const TRANSFER_BATCH = 'SELECT * FROM transfer_batch($1::jsonb, $2::jsonb, $3::timestamptz)';

/** A transfer's answer: the transaction as created, with the `transaction_id` that the transfer's answer adds (docs/api.md). */
function transferView(row: TransferBatchRow): TransferView {
  const view = toTransactionView({
    ...row,
    type: 'transfer',
    reviewed_by: null,
    reviewed_at: null,
    review_note: null,
    reverses: null,
    reversed_by: null,
  });
  return { ...view, transaction_id: view.id };
}

export type TransferView = TransactionView & { transaction_id: string };

/**
 * Moves money between customer accounts: a batch of transfers (group commit: src/db/batch-queue.ts)
 * in one statement, `transfer_batch` (src/transfers/sql/transfer_batch.sql), which is its own database
 * transaction. It checks each caller's access token (the lookup the access hook makes for other routes),
 * replays what is stored under the idempotency keys, locks every account involved in id order, checks
 * each transfer in order against the state the batch's earlier transfers left (the balance, the daily
 * limit, the risk rules), so that no transfer can slip past a check that a concurrent one would have
 * made it fail, records, posts and audits those that pass, and writes each keyed request's answer under
 * its key, a business refusal as much as a success. A transfer a risk rule flags is held for review
 * instead of posted: its amount stops being available but does not move. Each request gets its own
 * answer. `now` is the app's clock: the batch's instant, unless an account's last posting is later.
 */
export async function transferBatch(
  session: Session,
  requests: readonly TransferRequest[],
  risk: RiskSettings,
  now: Date,
): Promise<Settled<Outcome<TransferView>>[]> {
  const results: (Settled<Outcome<TransferView>> | undefined)[] = requests.map((request) =>
    request.input.fromAccount === request.input.toAccount
      ? { ok: false, error: validationError('to_account', 'must differ from from_account') }
      : undefined,
  );
  const sent = requests.flatMap((request, index) => (results[index] ? [] : [{ request, index }]));
  if (sent.length === 0) return results as Settled<Outcome<TransferView>>[];

  const batch = sent.map(({ request: { actor, input, idempotency } }) => ({
    user_id: actor.id,
    role: actor.role,
    jti: actor.jti,
    from_account: input.fromAccount,
    to_account: input.toAccount,
    amount: input.amount.toString(),
    description: input.description,
    key: idempotency?.key ?? null,
    endpoint: idempotency?.endpoint ?? null,
    fingerprint: idempotency?.fingerprint ?? null,
    ip: actor.ip,
    request_id: actor.requestId,
  }));
  let rows: TransferBatchRow[];
  try {
    rows = await session.query<TransferBatchRow>(TRANSFER_BATCH, [JSON.stringify(batch), riskArgument(risk), now], { prepared: true });
  } catch (error) {
    throw asInsufficientFunds(asInProgress(error));
  }
  for (const row of rows) {
    const { index } = sent[row.ord - 1]!;
    results[index] = row.problem
      ? { ok: false, error: new DomainError(row.problem, row.detail ?? row.problem, { replayed: row.replayed }) }
      : { ok: true, value: { replayed: row.replayed, body: transferView(row) } };
  }
  return results as Settled<Outcome<TransferView>>[];
}

export type TransferQueue = BatchQueue<TransferRequest, Outcome<TransferView>>;

/**
 * The group commit of transfers: the transfers that arrive while a batch is being committed are
 * committed together, by transferBatch, in one statement. `onBatch` hears each batch's size (metrics).
 */
export function createTransferQueue(
  database: DatabaseHandle,
  settings: TransferSettings,
  clock: () => Date,
  onBatch: (size: number) => void,
): TransferQueue {
  return new BatchQueue<TransferRequest, Outcome<TransferView>>({
    // The clock is read for each run: a batch run again after a serialization failure takes the time anew.
    run: (requests) => withAutocommit(database, (session) => transferBatch(session, requests, settings, clock())),
    exclusiveKeyOf: ({ idempotency }) => (idempotency ? JSON.stringify([idempotency.userId, idempotency.endpoint, idempotency.key]) : null),
    // A lock wait that timed out may be one request's (a key in flight elsewhere, which transferBatch
    // answers idempotency_in_progress; a busy account, 55P03).
    mayBelongToOne: (error) => databaseTrouble(error) === undefined || sqlState(error) === '55P03',
    maxBatch: settings.transferBatchSize,
    // PGlite has one session: a second batch would only queue for it.
    concurrency: database.engine === 'pglite' ? 1 : settings.transferBatchConcurrency,
    startNextFirst: database.engine === 'postgres',
    onBatch,
  });
}

/** What a batch of transfers needs of the configuration: its risk rules and the batches' size and concurrency. */
export type TransferSettings = RiskSettings & Pick<Config, 'transferBatchSize' | 'transferBatchConcurrency'>;

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
        return page
          .orderBy('m.created_at', 'desc')
          .orderBy('m.id', 'desc')
          .limit(filter.limit + 1);
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
  const rows = await query
    .orderBy('t.created_at', 'desc')
    .orderBy('t.id', 'desc')
    .limit(filter.limit + 1)
    .execute();
  return toPage(rows, filter.limit, (row) => ({ at: row.created_at, id: row.id }), toTransactionView);
}
