-- The statements inside a PL/pgSQL function are prepared once per connection, but PostgreSQL decides
-- on every call whether to plan them afresh for the call's values (a custom plan) or to reuse a
-- generic one, and keeps planning afresh when a custom plan looks cheaper than the generic one, which
-- a batch's array arguments make it do every time. Measured on this machine, a batch's first
-- statement with nothing in it cost 0.38 ms of the backend's CPU with that choice, 0.08 ms with
-- generic plans, 0.13 ms as below (BENCHMARKS.md).
-- Every statement in these functions (and in the functions and triggers they call) finds its rows by
-- key or through an index whatever the values, so one plan fits all calls, but for the one that
-- locks the batch's accounts, which is planned on each call (below). The setting is in force only
-- while the function runs. transfer_batch_begin is migration 0008's but for those two changes.
ALTER FUNCTION transfer_batch_finish(jsonb, jsonb)
  SET plan_cache_mode = force_generic_plan;

CREATE OR REPLACE FUNCTION transfer_batch_begin(
  p_users uuid[], p_from text[], p_to text[],
  p_keys text[], p_endpoints text[], p_fingerprints text[],
  p_velocity_minutes integer, p_velocity_count integer
) RETURNS TABLE (
  ord integer, stored_fingerprint text, stored_status integer, stored_response jsonb,
  id uuid, account_number text, user_id uuid, type text, currency text, balance bigint, held bigint,
  daily_limit bigint, status text, created_at timestamptz, updated_at timestamptz,
  sent_today bigint, recent_transfers bigint, paid_to uuid[], read_at timestamptz
) LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
DECLARE
  request_count integer := coalesce(cardinality(p_users), 0);
  request integer;
  stored idempotency_keys;
  replayed integer[] := '{}';
  account_numbers text[] := '{}';
  acct accounts;
  locked accounts[] := '{}';
  pair_senders uuid[];
  pair_receivers uuid[];
  today date := (now() AT TIME ZONE 'UTC')::date;
  window_start timestamptz := now() - make_interval(mins => p_velocity_minutes);
BEGIN
  FOR request IN SELECT r.i FROM generate_series(1, request_count) AS r(i)
                  WHERE p_keys[r.i] IS NOT NULL
                  ORDER BY p_users[r.i], p_endpoints[r.i], p_keys[r.i] LOOP
    stored := idempotency_claim(p_users[request], p_endpoints[request], p_keys[request], p_fingerprints[request]);
    IF stored.key IS NOT NULL THEN
      replayed := replayed || request;
      RETURN QUERY SELECT request, stored.fingerprint, stored.status_code, stored.response,
        NULL::uuid, NULL::text, NULL::uuid, NULL::text, NULL::text, NULL::bigint, NULL::bigint, NULL::bigint,
        NULL::text, NULL::timestamptz, NULL::timestamptz, NULL::bigint, NULL::bigint, NULL::uuid[], NULL::timestamptz;
    END IF;
  END LOOP;

  SELECT coalesce(array_agg(n), '{}') INTO account_numbers
    FROM (SELECT p_from[r.i] AS n FROM generate_series(1, request_count) AS r(i) WHERE r.i <> ALL (replayed)
          UNION SELECT p_to[r.i] FROM generate_series(1, request_count) AS r(i) WHERE r.i <> ALL (replayed)) numbers;

  -- ORDER BY ... FOR UPDATE locks the rows in the order it returns them: id order. Planned on each
  -- call (EXECUTE), with the numbers known: a generic plan for "= ANY (an array of unknown length)"
  -- made while the table was small scans the whole table, and stays until the table is analysed.
  FOR acct IN EXECUTE 'SELECT * FROM accounts a WHERE a.account_number = ANY ($1) ORDER BY a.id FOR UPDATE' USING account_numbers LOOP
    locked := locked || acct;
  END LOOP;

  SELECT array_agg(s.id), array_agg(rc.id) INTO pair_senders, pair_receivers
    FROM unnest(p_users, p_from, p_to) WITH ORDINALITY AS r(user_id, from_number, to_number, i)
    JOIN unnest(locked) s ON s.account_number = r.from_number AND s.user_id = r.user_id
    JOIN unnest(locked) rc ON rc.account_number = r.to_number
   WHERE r.i <> ALL (replayed);

  -- Each LATERAL subquery runs once per locked account with that account's id as a parameter, so it
  -- is an index probe whatever the planner guesses about the arrays; the "= ANY (pair_senders)" test
  -- refers to no table of its own and skips the probe for accounts that send nothing. The reads of
  -- history are shaped so that no plan can read an account's whole history, statistics or not (a busy
  -- account's day under a table never analysed read every row): the velocity count walks the
  -- (from_account_id, created_at DESC) index newest first and stops at p_velocity_count; "paid
  -- before" is a scalar subquery, never turned into a join, so each (sender, receiver) pair is one
  -- probe of the payee index that stops at its first row.
  RETURN QUERY
  SELECT NULL::integer, NULL::text, NULL::integer, NULL::jsonb,
         l.id, l.account_number, l.user_id, l.type, l.currency, l.balance, l.held, l.daily_limit,
         l.status, l.created_at, l.updated_at, h.sent_today, h.recent_transfers, p.paid_to, now()
    FROM unnest(locked) l
    LEFT JOIN LATERAL (
      SELECT coalesce((SELECT d.amount FROM daily_outflows d WHERE d.account_id = l.id AND d.day = today), 0) AS sent_today,
             (SELECT count(*) FROM (
                SELECT 1 FROM transactions t
                 WHERE t.from_account_id = l.id AND t.created_at >= window_start
                   AND t.type = 'transfer' AND t.status IN ('completed', 'pending_review')
                 ORDER BY t.created_at DESC
                 LIMIT p_velocity_count) recent) AS recent_transfers
       WHERE l.id = ANY (pair_senders)
    ) h ON l.id = ANY (pair_senders)
    LEFT JOIN LATERAL (
      SELECT coalesce(array_agg(DISTINCT pair.receiver), '{}') AS paid_to
        FROM unnest(pair_senders, pair_receivers) AS pair(sender, receiver)
       WHERE pair.sender = l.id
         AND (SELECT true FROM transactions x
               WHERE x.from_account_id = pair.sender AND x.to_account_id = pair.receiver
                 AND x.type = 'transfer' AND x.status = 'completed'
               LIMIT 1)
    ) p ON l.id = ANY (pair_senders)
   ORDER BY l.id;
END $$;
