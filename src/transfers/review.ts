import { record, type Actor } from '../audit/record.js';
import type { Db, Tx } from '../db/schema.js';
import { DomainError } from '../errors.js';
import { afterCursor, decodeCursor, toPage, type Page } from '../pagination.js';
import { lockAccounts, lockTransaction, releaseHeldTransfer, settleHeldTransfer } from '../ledger/post.js';
import { readTransaction, selectTransactions, toTransactionView, type TransactionView } from '../ledger/read.js';
import { formatAmount } from '../money.js';

/** The review queue: transfers pending review, oldest first (the longest wait is decided first). */
export async function listFlagged(db: Db, query: { limit: number; cursor?: string }): Promise<Page<TransactionView>> {
  let select = selectTransactions(db).where('t.status', '=', 'pending_review');
  const after = decodeCursor(query.cursor);
  if (after) select = select.where(afterCursor('t.created_at', 't.id', after, 'asc'));
  const rows = await select
    .orderBy('t.created_at')
    .orderBy('t.id')
    .limit(query.limit + 1)
    .execute();
  return toPage(rows, query.limit, (row) => ({ at: row.created_at, id: row.id }), toTransactionView);
}

async function lockPending(tx: Tx, id: string) {
  const held = await lockTransaction(tx, id);
  if (!held) throw new DomainError('not_found', 'No such transaction');
  if (held.status !== 'pending_review') throw new DomainError('not_pending', `The transaction is ${held.status}, not pending review`);
  return held;
}

/**
 * Approves a held transfer at `now`, the app's clock: the money moves. Both accounts must still be active: an account frozen or
 * closed while the transfer waited stops the approval (409 account_not_active) and the transfer stays
 * pending, so the admin either unfreezes the account or rejects the transfer, which releases the hold.
 */
export async function approveTransfer(
  tx: Tx,
  actor: Actor & { id: string },
  id: string,
  note: string | null,
  now: Date,
): Promise<TransactionView> {
  const held = await lockPending(tx, id);
  const accounts = await lockAccounts(tx, [held.from_account_id, held.to_account_id]);
  for (const account of accounts.values()) {
    if (account.status !== 'active') throw new DomainError('account_not_active', `Account ${account.account_number} is ${account.status}`);
  }
  await settleHeldTransfer(tx, held, { reviewerId: actor.id, note }, now);
  await record(tx, actor, {
    action: 'transfer.approved',
    targetType: 'transaction',
    targetId: id,
    details: { amount: formatAmount(held.amount), review_reasons: held.review_reasons, note },
  });
  return readTransaction(tx, id);
}

/** Rejects a held transfer at `now`: the hold is released, nothing moves. Allowed whatever the accounts' status. */
export async function rejectTransfer(
  tx: Tx,
  actor: Actor & { id: string },
  id: string,
  reason: string,
  now: Date,
): Promise<TransactionView> {
  const held = await lockPending(tx, id);
  await releaseHeldTransfer(tx, held, { reviewerId: actor.id, note: reason }, now);
  await record(tx, actor, {
    action: 'transfer.rejected',
    targetType: 'transaction',
    targetId: id,
    details: { amount: formatAmount(held.amount), review_reasons: held.review_reasons, reason },
  });
  return readTransaction(tx, id);
}
