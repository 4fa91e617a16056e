import { sql } from 'kysely';
import type { DatabaseHandle } from '../../src/db/connection.js';
import type { Tx } from '../../src/db/schema.js';

/**
 * Journal history in the past, written straight into the database: the API posts at the app's clock,
 * but never before an account's last posting (src/ledger/post.ts, postingInstant), and the bank's cash
 * account holds the postings of every test before, so it cannot make it. Deposits (positive) and
 * withdrawals (negative) against the bank's cash account of the account's currency, balanced per
 * transaction, with the accounts' balances moved by the same sums so that reconciliation still holds.
 * Write it before any other money moves on the account, so that balance_after follows posting order.
 */

export interface Account {
  id: string;
  currency: string;
}

async function cashAccount(tx: Tx, currency: string): Promise<{ id: string; balance: bigint }> {
  await tx
    .insertInto('accounts')
    .values({ system_code: 'cash', type: 'internal', currency, account_number: null, user_id: null, daily_limit: null })
    .onConflict((conflict) => conflict.columns(['system_code', 'currency']).doNothing())
    .execute();
  return tx
    .selectFrom('accounts')
    .select(['id', 'balance'])
    .where('system_code', '=', 'cash')
    .where('currency', '=', currency)
    .executeTakeFirstOrThrow();
}

async function balanceOf(tx: Tx, id: string): Promise<bigint> {
  return (await tx.selectFrom('accounts').select('balance').where('id', '=', id).executeTakeFirstOrThrow()).balance;
}

export async function insertHistory(
  database: DatabaseHandle,
  account: Account,
  moves: Array<{ at: string; amount: bigint; description: string }>,
): Promise<void> {
  await database.db.transaction().execute(async (tx) => {
    const cash = await cashAccount(tx, account.currency);
    let [balance, cashBalance] = [await balanceOf(tx, account.id), cash.balance];
    for (const move of moves) {
      const deposit = move.amount > 0n;
      const { id } = await tx
        .insertInto('transactions')
        .values({
          type: deposit ? 'deposit' : 'withdrawal',
          status: 'completed',
          amount: deposit ? move.amount : -move.amount,
          currency: account.currency,
          from_account_id: deposit ? cash.id : account.id,
          to_account_id: deposit ? account.id : cash.id,
          description: move.description,
          created_by: null,
          created_at: new Date(move.at),
          reviewed_by: null,
          reviewed_at: null,
          review_note: null,
          reverses_id: null,
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      balance += move.amount;
      cashBalance -= move.amount;
      await tx
        .insertInto('journal_entries')
        .values([
          { transaction_id: id, account_id: account.id, amount: move.amount, balance_after: balance, posted_at: new Date(move.at) },
          { transaction_id: id, account_id: cash.id, amount: -move.amount, balance_after: cashBalance, posted_at: new Date(move.at) },
        ])
        .execute();
    }
    // The accounts' last postings as ledger_post keeps them; the cash account's may already be later.
    const latest = new Date(Math.max(...moves.map((move) => Date.parse(move.at))));
    const lastPostedAt = sql<Date>`greatest(last_posted_at, ${latest}::timestamptz)`;
    await tx.updateTable('accounts').set({ balance, last_posted_at: lastPostedAt }).where('id', '=', account.id).execute();
    await tx.updateTable('accounts').set({ balance: cashBalance, last_posted_at: lastPostedAt }).where('id', '=', cash.id).execute();
  });
}

/**
 * `count` transactions in one go (generate_series), one every `stepSeconds` from `start`: two deposits
 * of 10.01 to 10.07 then a withdrawal of 7.00, over and over, so the balance never goes below zero.
 * Every tenth description holds a comma, for CSV quoting.
 */
export async function insertBulkHistory(
  database: DatabaseHandle,
  account: Account,
  options: { count: number; start: string; stepSeconds: number },
): Promise<void> {
  await database.db.transaction().execute(async (tx) => {
    const cash = await cashAccount(tx, account.currency);
    const opening = await balanceOf(tx, account.id);
    await sql`CREATE TEMP TABLE bulk_history (i int, transaction_id uuid, at timestamptz, amount bigint) ON COMMIT DROP`.execute(tx);
    await sql`
      INSERT INTO bulk_history
      SELECT i, gen_random_uuid(), ${options.start}::timestamptz + (i - 1) * ${options.stepSeconds}::int * interval '1 second',
             CASE WHEN i % 3 = 0 THEN -700 ELSE 1000 + i % 7 END
      FROM generate_series(1, ${options.count}::int) AS i`.execute(tx);
    await sql`
      INSERT INTO transactions (id, type, status, amount, currency, from_account_id, to_account_id, description, created_at)
      SELECT transaction_id, CASE WHEN amount > 0 THEN 'deposit' ELSE 'withdrawal' END, 'completed', abs(amount), ${account.currency},
             CASE WHEN amount > 0 THEN ${cash.id}::uuid ELSE ${account.id}::uuid END,
             CASE WHEN amount > 0 THEN ${account.id}::uuid ELSE ${cash.id}::uuid END,
             CASE WHEN i % 10 = 0 THEN 'Rent, flat ' || i ELSE 'Bulk entry ' || i END, at
      FROM bulk_history ORDER BY i`.execute(tx);
    await sql`
      INSERT INTO journal_entries (transaction_id, account_id, amount, balance_after, posted_at)
      SELECT transaction_id, account_id, amount, balance_after, at FROM (
        SELECT i, 0 AS side, transaction_id, ${account.id}::uuid AS account_id, amount,
               ${opening.toString()}::bigint + (sum(amount) OVER (ORDER BY i))::bigint AS balance_after, at
        FROM bulk_history
        UNION ALL
        SELECT i, 1, transaction_id, ${cash.id}::uuid, -amount, ${cash.balance.toString()}::bigint - (sum(amount) OVER (ORDER BY i))::bigint, at
        FROM bulk_history
      ) AS entries ORDER BY i, side`.execute(tx);
    const lastPostedAt = sql`greatest(last_posted_at, (SELECT max(at) FROM bulk_history))`;
    await sql`UPDATE accounts SET balance = balance + (SELECT sum(amount) FROM bulk_history)::bigint, last_posted_at = ${lastPostedAt}
              WHERE id = ${account.id}::uuid`.execute(tx);
    await sql`UPDATE accounts SET balance = balance - (SELECT sum(amount) FROM bulk_history)::bigint, last_posted_at = ${lastPostedAt}
              WHERE id = ${cash.id}::uuid`.execute(tx);
  });
}
