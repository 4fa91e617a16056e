-- What the risk rules and the daily limit read of the senders of a batch of transfers (transfer_batch),
-- under the senders' locks. p_accounts are the batch's locked accounts; request i sends from slot
-- p_sender_slots[i] to slot p_receiver_slots[i] of them (null when it names an account that is not
-- there). By slot of p_accounts, for the slots that send:
--   sent_today  the day's outflow (daily_outflows, p_day);
--   recent      the transfers sent since p_since, completed or pending review, counted only up to
--               p_velocity_count (0: not counted), newest first;
-- and paid_pairs, the pairs (sender id || receiver id) of the batch with a completed transfer already.
-- Every read is one index probe, bounded by an account, a pair, a day or the count, never by the size of
-- the ledger.
--
-- A generic plan, made on the connection's first call whatever the tables held then: enable_seqscan
-- off keeps each read an index scan when that plan is made over tables of a few rows; jit off,
-- ledger_post says why (each setting's test: test/plans.test.ts).
CREATE OR REPLACE FUNCTION transfer_sender_history(
  p_accounts uuid[], p_sender_slots integer[], p_receiver_slots integer[], p_day date, p_since timestamptz, p_velocity_count integer
) RETURNS TABLE (sent_today bigint[], recent bigint[], paid_pairs text[])
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET jit = off AS $$
BEGIN
  RETURN QUERY
  SELECT array_agg(CASE WHEN k.slot = ANY (p_sender_slots) THEN
                     coalesce((SELECT d.amount FROM daily_outflows d WHERE d.account_id = p_accounts[k.slot] AND d.day = p_day), 0)
                   END ORDER BY k.slot),
         array_agg(CASE WHEN k.slot = ANY (p_sender_slots) AND p_velocity_count > 0 THEN
                     (SELECT count(*) FROM (
                        SELECT 1 FROM transactions t
                         WHERE t.from_account_id = p_accounts[k.slot] AND t.created_at >= p_since
                           AND t.type = 'transfer' AND t.status IN ('completed', 'pending_review')
                         ORDER BY t.created_at DESC
                         LIMIT p_velocity_count) w)
                   ELSE 0 END ORDER BY k.slot),
         (SELECT coalesce(array_agg(DISTINCT p.pair), '{}')
            FROM (SELECT p_sender_slots[k.i] AS s, p_receiver_slots[k.i] AS r,
                         p_accounts[p_sender_slots[k.i]]::text || p_accounts[p_receiver_slots[k.i]]::text AS pair
                    FROM generate_subscripts(p_sender_slots, 1) AS k(i)
                   WHERE p_sender_slots[k.i] IS NOT NULL AND p_receiver_slots[k.i] IS NOT NULL) p
           WHERE (SELECT true FROM transactions x
                   WHERE x.from_account_id = p_accounts[p.s] AND x.to_account_id = p_accounts[p.r]
                     AND x.type = 'transfer' AND x.status = 'completed'
                   LIMIT 1))
    FROM generate_subscripts(p_accounts, 1) AS k(slot);
END $$;
