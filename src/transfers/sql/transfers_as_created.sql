-- The transfers p_ids as they were created: the answer a transfer's Idempotency-Key stores (a reference
-- to its transaction: migration 0020) and transfer_batch replays. At its creation a transfer's status
-- followed from its review reasons alone (new_transfer_status), and it had no review and no reversal;
-- the journal keeps the rest unchanged.
--
-- One probe per transfer (LATERAL ... LIMIT 1): the transaction by its key, its accounts by theirs.
-- A generic plan, made on the connection's first call whatever the tables held then: enable_seqscan off
-- keeps each probe an index probe when that plan is made over tables of a few rows; jit off,
-- ledger_post says why (each setting's test: test/plans.test.ts).
CREATE OR REPLACE FUNCTION transfers_as_created(p_ids uuid[])
RETURNS TABLE (
  id uuid, status text, amount bigint, currency text, from_account text, to_account text, description text, created_by uuid,
  created_at timestamptz, review_reasons text[]
)
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET jit = off AS $$
BEGIN
  RETURN QUERY
  SELECT x.id, new_transfer_status(x.review_reasons), x.amount, x.currency,
         x.from_account, x.to_account, x.description, x.created_by, x.created_at, x.review_reasons
    FROM unnest(p_ids) AS k(id)
   CROSS JOIN LATERAL (SELECT t.id, t.amount, t.currency, f.account_number AS from_account, d.account_number AS to_account,
                              t.description, t.created_by, t.created_at, t.review_reasons
                         FROM transactions t
                         JOIN accounts f ON f.id = t.from_account_id
                         JOIN accounts d ON d.id = t.to_account_id
                        WHERE t.id = k.id
                        LIMIT 1) x;
END $$;
