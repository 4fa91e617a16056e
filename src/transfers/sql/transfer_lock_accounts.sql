-- Locks the accounts of a batch of transfers (transfer_batch) by their numbers, in id order, and returns
-- them as one row of arrays in that order, with the latest instant any of them was posted at.
--
-- First each number's account id, one probe of the number's index each (LATERAL ... LIMIT 1); then the
-- rows, one probe of the primary key each, in id order, each locked as it is read (FOR UPDATE in the
-- probe: the nested loop reads the sorted ids in order). One statement finding and locking by numbers
-- would lock in the order it finds them, or, to return them in id order, walk the whole primary key.
-- Generic plans, made on the connection's first call whatever the table held then: enable_seqscan off
-- keeps each probe an index probe when the plan is made over a table of a few rows; jit off,
-- ledger_post says why (each setting's test: test/plans.test.ts).
CREATE OR REPLACE FUNCTION transfer_lock_accounts(p_account_numbers text[])
RETURNS TABLE (
  ids uuid[], numbers text[], users uuid[], currencies text[], statuses text[], opened timestamptz[], balances bigint[], helds bigint[],
  limits bigint[], last_posted timestamptz
)
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET jit = off AS $$
DECLARE
  account_ids uuid[];
BEGIN
  SELECT array_agg(DISTINCT x.id ORDER BY x.id) INTO account_ids
    FROM unnest(p_account_numbers) AS k(number)
   CROSS JOIN LATERAL (SELECT a.id FROM accounts a WHERE a.account_number = k.number LIMIT 1) x;

  RETURN QUERY
  SELECT coalesce(array_agg(a.id ORDER BY k.n), '{}'), array_agg(a.account_number ORDER BY k.n), array_agg(a.user_id ORDER BY k.n),
         array_agg(a.currency ORDER BY k.n), array_agg(a.status ORDER BY k.n), array_agg(a.created_at ORDER BY k.n),
         array_agg(a.balance ORDER BY k.n), array_agg(a.held ORDER BY k.n), array_agg(a.daily_limit ORDER BY k.n),
         max(a.last_posted_at)
    FROM unnest(account_ids) WITH ORDINALITY AS k(id, n)
   CROSS JOIN LATERAL (SELECT * FROM accounts x WHERE x.id = k.id LIMIT 1 FOR UPDATE) a;
END $$;
