import { sql } from 'kysely';
import type { Tx } from '../db/schema.js';
import type { SenderHistory } from './rules.js';

/**
 * Everything the daily limit and the risk rules need, in one round trip. The caller holds the sender's
 * row lock, so concurrent transfers from the same account see each other and cannot slip past the
 * daily limit or the velocity rule together.
 */
export async function readSenderHistory(tx: Tx, senderId: string, receiverId: string, velocityMinutes: number): Promise<SenderHistory & { now: Date }> {
  const { rows } = await sql<{ sent_today: bigint; paid_before: boolean; recent: bigint; now: Date }>`
    SELECT
      coalesce(sum(amount) FILTER (WHERE created_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'), 0)::bigint AS sent_today,
      count(*) FILTER (WHERE created_at >= now() - make_interval(mins => ${velocityMinutes})) AS recent,
      EXISTS (
        SELECT 1 FROM transactions
        WHERE from_account_id = ${senderId} AND to_account_id = ${receiverId} AND type = 'transfer' AND status = 'completed'
      ) AS paid_before,
      now() AS now
    FROM transactions
    WHERE from_account_id = ${senderId} AND type = 'transfer' AND status IN ('completed', 'pending_review')
      AND created_at >= least(date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', now() - make_interval(mins => ${velocityMinutes}))`.execute(tx);
  const row = rows[0]!;
  return { sentToday: row.sent_today, paidReceiverBefore: row.paid_before, recentTransfers: Number(row.recent), now: row.now };
}
