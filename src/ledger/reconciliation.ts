import { sql } from 'kysely';
import type { Tx } from '../db/schema.js';
import { formatAmount } from '../money.js';

export interface ReconciliationReport {
  ok: boolean;
  accounts_checked: number;
  entries_checked: number;
  ledger_sum: string;
  mismatches: Array<{ account_id: string; balance: string; ledger_balance: string }>;
  unbalanced_transactions: Array<{ transaction_id: string; net: string }>;
  hold_mismatches: Array<{ account_id: string; held: string; pending_total: string }>;
  checked_at: string;
}

/**
 * Checks the ledger's invariants: the sum of all balances (internal accounts included) is zero, every
 * account's balance equals the sum of its journal entries, every transaction's entries sum to zero, and
 * every account's held amount equals its transfers pending review. Run it inside a snapshot transaction (withTransaction(..., { snapshot: true })), so transfers
 * committing meanwhile are either wholly in the picture or wholly out of it. Each check is one scan.
 */
export async function reconcile(tx: Tx): Promise<ReconciliationReport> {
  const totals = await sql<{ accounts: bigint; balance_sum: bigint | null; checked_at: Date }>`
    SELECT count(*) AS accounts, sum(balance)::bigint AS balance_sum, now() AS checked_at FROM accounts`.execute(tx);
  const mismatches = await sql<{ account_id: string; balance: bigint; ledger_balance: bigint }>`
    SELECT a.id AS account_id, a.balance, coalesce(j.total, 0)::bigint AS ledger_balance
    FROM accounts a
    LEFT JOIN (SELECT account_id, sum(amount) AS total FROM journal_entries GROUP BY account_id) j ON j.account_id = a.id
    WHERE a.balance <> coalesce(j.total, 0)
    ORDER BY a.id`.execute(tx);
  const unbalanced = await sql<{ transaction_id: string; net: bigint }>`
    SELECT transaction_id, sum(amount)::bigint AS net FROM journal_entries GROUP BY transaction_id HAVING sum(amount) <> 0
    ORDER BY transaction_id`.execute(tx);
  const holds = await sql<{ account_id: string; held: bigint; pending_total: bigint }>`
    SELECT a.id AS account_id, a.held, coalesce(p.total, 0)::bigint AS pending_total
    FROM accounts a
    LEFT JOIN (SELECT from_account_id, sum(amount) AS total FROM transactions WHERE status = 'pending_review' GROUP BY from_account_id) p
      ON p.from_account_id = a.id
    WHERE a.held <> coalesce(p.total, 0)
    ORDER BY a.id`.execute(tx);
  const entries = await sql<{ entries: bigint }>`SELECT count(*) AS entries FROM journal_entries`.execute(tx);

  const total = totals.rows[0]!;
  const ledgerSum = total.balance_sum ?? 0n;
  return {
    ok: ledgerSum === 0n && mismatches.rows.length === 0 && unbalanced.rows.length === 0 && holds.rows.length === 0,
    accounts_checked: Number(total.accounts),
    entries_checked: Number(entries.rows[0]!.entries),
    ledger_sum: formatAmount(ledgerSum),
    mismatches: mismatches.rows.map((row) => ({
      account_id: row.account_id,
      balance: formatAmount(row.balance),
      ledger_balance: formatAmount(row.ledger_balance),
    })),
    unbalanced_transactions: unbalanced.rows.map((row) => ({ transaction_id: row.transaction_id, net: formatAmount(row.net) })),
    hold_mismatches: holds.rows.map((row) => ({
      account_id: row.account_id,
      held: formatAmount(row.held),
      pending_total: formatAmount(row.pending_total),
    })),
    checked_at: total.checked_at.toISOString(),
  };
}
