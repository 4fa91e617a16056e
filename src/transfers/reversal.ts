import { record, type Actor } from '../audit/record.js';
import type { Tx } from '../db/schema.js';
import { sqlState } from '../db/transaction.js';
import { DomainError } from '../errors.js';
import { describeShortfall, lockAccounts, lockTransaction, movement, postTransaction } from '../ledger/post.js';
import { readTransaction, type TransactionView } from '../ledger/read.js';
import { formatAmount } from '../money.js';

const REVERSIBLE = new Set(['transfer', 'deposit', 'withdrawal']);

/**
 * Reverses a completed transfer, deposit or withdrawal with a new `reversal` transaction that moves the
 * same amount back through the same posting core, at `now` (the app's clock; postTransaction). At most once per original: the original's row lock
 * queues concurrent attempts, and the UNIQUE key on transactions.reverses_id refuses a second reversal
 * even from code that skipped the lock.
 */
export async function reverseTransaction(
  tx: Tx,
  actor: Actor & { id: string },
  id: string,
  reason: string,
  now: Date,
): Promise<TransactionView> {
  const original = await lockTransaction(tx, id);
  if (!original) throw new DomainError('not_found', 'No such transaction');
  if (original.type === 'reversal' || !REVERSIBLE.has(original.type) || original.status !== 'completed') {
    throw new DomainError('not_reversible', `A ${original.status} ${original.type} cannot be reversed`);
  }
  const existing = await tx.selectFrom('transactions').select('id').where('reverses_id', '=', id).executeTakeFirst();
  if (existing) throw new DomainError('already_reversed', `Already reversed by ${existing.id}`);

  // The money goes back: the original receiver gives, the original sender receives.
  const accounts = await lockAccounts(tx, [original.from_account_id, original.to_account_id]);
  const giver = accounts.get(original.to_account_id)!;
  const taker = accounts.get(original.from_account_id)!;
  for (const account of [giver, taker]) {
    if (account.status !== 'active')
      throw new DomainError('account_not_active', `Account ${account.account_number ?? account.system_code} is ${account.status}`);
  }
  if (giver.type !== 'internal' && giver.balance - giver.held < original.amount) {
    throw new DomainError('insufficient_funds', describeShortfall(giver.balance - giver.held, original.amount));
  }

  let reversal;
  try {
    reversal = await postTransaction(
      tx,
      {
        type: 'reversal',
        amount: original.amount,
        currency: original.currency,
        fromAccountId: giver.id,
        toAccountId: taker.id,
        description: reason,
        createdBy: actor.id,
        reversesId: original.id,
        entries: movement(giver.id, taker.id, original.amount),
      },
      now,
      accounts,
    );
  } catch (error) {
    if (sqlState(error) === '23505') throw new DomainError('already_reversed', 'The transaction was reversed meanwhile');
    throw error;
  }
  await record(tx, actor, {
    action: 'transaction.reversed',
    targetType: 'transaction',
    targetId: original.id,
    details: { reversal_id: reversal.id, type: original.type, amount: formatAmount(original.amount), reason },
  });
  return readTransaction(tx, reversal.id);
}
