/**
 * Loads a ledger in bulk, in SQL, for the growth benchmark: a year of history before today.
 *
 * Every account first receives a deposit from the bank's cash account (a year and a day ago), then
 * random completed transfers between the customer accounts follow, spread evenly over the past year,
 * until the journal holds `entries` entries. Nothing is disabled: the rows go through every CHECK,
 * foreign key and trigger of the schema, including the deferred per-row trigger that refuses an
 * unbalanced transaction at commit. Each batch is one database transaction that writes its
 * transactions, their journal entries with the running balance each entry leaves behind (a window sum
 * over the account's entries in time order, starting from the account's balance), and the new
 * balances, so reconciliation stays ok and statements read consistent `balance_after` values.
 */
import pg from 'pg';

export interface PreloadResult {
  entries: number;
  transactions: number;
  seconds: number;
  batches: number;
}

const DEPOSIT_MINOR = 100_000_000n; // 1,000,000.00 each: more than any run of at most 1.00 x ~5,000 debits
const DAY_MS = 86_400_000;

export async function preloadLedger(databaseUrl: string, entries: number, batchEntries = 100_000): Promise<PreloadResult> {
  const started = performance.now();
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query(`CREATE TEMP TABLE pre_acc AS
      SELECT (row_number() OVER (ORDER BY id))::int - 1 AS i, id, user_id, currency FROM accounts WHERE user_id IS NOT NULL`);
    const { rows } = await client.query<{ n: string; currency: string }>(`SELECT count(*) AS n, min(currency) AS currency FROM pre_acc`);
    const accounts = Number(rows[0]!.n);
    const currency = rows[0]!.currency;
    if (accounts < 2) throw new Error('preload needs at least two customer accounts');
    const now = Date.now();
    const yearAgo = now - 366 * DAY_MS;

    // The deposits: cash -> each customer account.
    await client.query('BEGIN');
    await client.query(
      `INSERT INTO accounts (system_code, type, currency, account_number, user_id, daily_limit)
       VALUES ('cash', 'internal', $1, NULL, NULL, NULL) ON CONFLICT (system_code, currency) DO NOTHING`,
      [currency],
    );
    await client.query(
      `CREATE TEMP TABLE pre_dep ON COMMIT DROP AS
       SELECT a.i, gen_random_uuid() AS id, a.id AS account_id, c.id AS cash_id,
              to_timestamp(($1::bigint + a.i) / 1000.0) AS at
       FROM pre_acc a, accounts c WHERE c.system_code = 'cash' AND c.currency = $2`,
      [yearAgo, currency],
    );
    await client.query(
      `INSERT INTO transactions (id, type, status, amount, currency, from_account_id, to_account_id, description, created_by, created_at)
       SELECT id, 'deposit', 'completed', $1::bigint, $2, cash_id, account_id, 'bench preload: opening deposit', NULL, at FROM pre_dep ORDER BY i`,
      [DEPOSIT_MINOR.toString(), currency],
    );
    await client.query(
      `INSERT INTO journal_entries (transaction_id, account_id, amount, balance_after, posted_at)
       SELECT transaction_id, account_id, amount, balance_after, at FROM (
         SELECT d.i, 0 AS side, d.id AS transaction_id, d.cash_id AS account_id, -$1::bigint AS amount,
                c.balance - $1::bigint * (d.i + 1) AS balance_after, d.at
         FROM pre_dep d JOIN accounts c ON c.id = d.cash_id
         UNION ALL
         SELECT d.i, 1, d.id, d.account_id, $1::bigint, a.balance + $1::bigint, d.at
         FROM pre_dep d JOIN accounts a ON a.id = d.account_id
       ) e ORDER BY i, side`,
      [DEPOSIT_MINOR.toString()],
    );
    await client.query(
      `UPDATE accounts a SET balance = a.balance + d.delta, updated_at = now()
       FROM (SELECT account_id, sum(amount) AS delta FROM journal_entries
             WHERE transaction_id IN (SELECT id FROM pre_dep) GROUP BY account_id) d
       WHERE a.id = d.account_id`,
    );
    await client.query('COMMIT');
    let written = accounts * 2;
    let transactions = accounts;
    let batches = 1;

    // The transfers, oldest first, evenly spread from the deposits to yesterday.
    const transfers = Math.max(0, Math.floor((entries - written) / 2));
    const first = yearAgo + 60_000;
    const step = Math.max(1, Math.floor((now - DAY_MS - first) / Math.max(1, transfers)));
    const perBatch = Math.max(1, Math.floor(batchEntries / 2));
    for (let lo = 0; lo < transfers; lo += perBatch) {
      const hi = Math.min(transfers, lo + perBatch) - 1;
      await client.query('BEGIN');
      await client.query(
        `CREATE TEMP TABLE pre_tx ON COMMIT DROP AS
         SELECT n, gen_random_uuid() AS id, f AS from_i, (f + 1 + o) % $3::int AS to_i, amount,
                to_timestamp(($4::bigint + n * $5::bigint) / 1000.0) AS at
         FROM (SELECT n, floor(random() * $3::int)::int AS f, floor(random() * ($3::int - 1))::int AS o,
                      (1 + floor(random() * 100))::bigint AS amount
               FROM generate_series($1::bigint, $2::bigint) AS n) r`,
        [lo, hi, accounts, first, step],
      );
      await client.query(
        `INSERT INTO transactions (id, type, status, amount, currency, from_account_id, to_account_id, description, created_by, created_at)
         SELECT p.id, 'transfer', 'completed', p.amount, f.currency, f.id, t.id, 'bench preload', f.user_id, p.at
         FROM pre_tx p JOIN pre_acc f ON f.i = p.from_i JOIN pre_acc t ON t.i = p.to_i ORDER BY p.n`,
      );
      await client.query(
        `INSERT INTO journal_entries (transaction_id, account_id, amount, balance_after, posted_at)
         SELECT transaction_id, account_id, amount,
                balance + sum(amount) OVER (PARTITION BY account_id ORDER BY n, side ROWS UNBOUNDED PRECEDING),
                at
         FROM (
           SELECT p.n, 0 AS side, p.id AS transaction_id, f.id AS account_id, -p.amount AS amount, p.at
           FROM pre_tx p JOIN pre_acc f ON f.i = p.from_i
           UNION ALL
           SELECT p.n, 1, p.id, t.id, p.amount, p.at FROM pre_tx p JOIN pre_acc t ON t.i = p.to_i
         ) e JOIN accounts a ON a.id = e.account_id
         ORDER BY n, side`,
      );
      await client.query(
        `UPDATE accounts a SET balance = a.balance + d.delta, updated_at = now()
         FROM (SELECT account_id, sum(delta) AS delta FROM (
                 SELECT f.id AS account_id, -p.amount AS delta FROM pre_tx p JOIN pre_acc f ON f.i = p.from_i
                 UNION ALL
                 SELECT t.id, p.amount FROM pre_tx p JOIN pre_acc t ON t.i = p.to_i) x GROUP BY account_id) d
         WHERE a.id = d.account_id`,
      );
      await client.query('COMMIT');
      written += (hi - lo + 1) * 2;
      transactions += hi - lo + 1;
      batches++;
    }
    // What any database that grew to this size would have: statistics and a visibility map.
    await client.query('VACUUM (ANALYZE) accounts, transactions, journal_entries');
    return { entries: written, transactions, seconds: (performance.now() - started) / 1000, batches };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    await client.end();
  }
}
