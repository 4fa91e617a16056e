-- Locks the accounts of a batch of transfers (transfer_batch) by their numbers, in id order (ORDER BY
-- ... FOR UPDATE locks rows in the order it returns them), and returns them as one row of arrays in that
-- order, with the latest instant any of them was posted at.
--
-- By the account number's index, through a generic plan made once per connection whatever the table
-- held then: enable_seqscan off keeps that plan an index scan when it is made while the table is nearly
-- empty (test/plans.test.ts).
CREATE OR REPLACE FUNCTION transfer_lock_accounts(p_account_numbers text[])
RETURNS TABLE (
  ids uuid[], numbers text[], users uuid[], currencies text[], statuses text[], opened timestamptz[], balances bigint[], helds bigint[],
  limits bigint[], last_posted timestamptz
)
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET jit = off AS $$
BEGIN
  RETURN QUERY
  SELECT array_agg(a.id ORDER BY a.id), array_agg(a.account_number ORDER BY a.id), array_agg(a.user_id ORDER BY a.id),
         array_agg(a.currency ORDER BY a.id), array_agg(a.status ORDER BY a.id), array_agg(a.created_at ORDER BY a.id),
         array_agg(a.balance ORDER BY a.id), array_agg(a.held ORDER BY a.id), array_agg(a.daily_limit ORDER BY a.id),
         max(a.last_posted_at)
    FROM (SELECT * FROM accounts x WHERE x.account_number = ANY (p_account_numbers) ORDER BY x.id FOR UPDATE) a;
END $$;
