import type { AccountRow, AccountType, Db, Tx } from '../db/schema.js';
import { afterCursor, type Keyset } from '../pagination.js';
import { generateAccountNumber } from './account-number.js';

export function findCustomerAccount(db: Db | Tx, id: string): Promise<AccountRow | undefined> {
  return db.selectFrom('accounts').selectAll().where('id', '=', id).where('type', '<>', 'internal').executeTakeFirst();
}

export async function insertAccount(
  tx: Tx,
  account: { userId: string; type: Exclude<AccountType, 'internal'>; currency: string; dailyLimit: bigint },
): Promise<AccountRow> {
  // A fresh random number until one is free; ON CONFLICT keeps the transaction alive on a collision.
  for (;;) {
    const row = await tx
      .insertInto('accounts')
      .values({
        account_number: generateAccountNumber(),
        user_id: account.userId,
        system_code: null,
        type: account.type,
        currency: account.currency,
        daily_limit: account.dailyLimit,
      })
      .onConflict((conflict) => conflict.column('account_number').doNothing())
      .returningAll()
      .executeTakeFirst();
    if (row) return row;
  }
}

export function listCustomerAccounts(db: Db, filter: { userId?: string; after?: Keyset; limit: number }): Promise<AccountRow[]> {
  let query = db.selectFrom('accounts').selectAll().where('type', '<>', 'internal');
  if (filter.userId !== undefined) query = query.where('user_id', '=', filter.userId);
  if (filter.after) query = query.where(afterCursor('created_at', 'id', filter.after, 'asc'));
  return query
    .orderBy('created_at')
    .orderBy('id')
    .limit(filter.limit + 1)
    .execute();
}
