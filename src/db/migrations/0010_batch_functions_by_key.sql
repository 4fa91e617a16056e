-- A batch's second statement writes each table once for the whole batch instead of once per transfer.
-- Every statement PostgreSQL executes starts an executor over its target table: it opens the table's
-- indexes and reads and compiles its CHECK constraints anew (stored as text, parsed on each start). For
-- a batch of 16 that was some 110 executions, and the starts, not the rows, were most of the backend's
-- time (perf on the backend: 19 % in ExecConstraints, 12 % parsing stored expressions; BENCHMARKS.md).
-- Now: one INSERT into transactions, one UPDATE of the accounts the batch moves (each once, by its net),
-- one INSERT of the journal entries, one of the audit entries, one UPDATE of the idempotency keys.
--
-- The same rows as before, in the same order: transactions and audit entries in the batch's order,
-- journal entries two by two in that order, each with the balance it left behind (what it would have
-- left had the transfers been posted one by one), every transfer's created_at the statement's time. The
-- accounts' CHECKs judge the batch's end state; that each transfer's own result was within them (no
-- customer balance, nor balance less held, below zero after any transfer) is checked here, in the walk
-- that computes balance_after, and refused with the CHECK's own error. The service has checked each
-- transfer in order against the state the earlier ones left; this is the database's word behind it.
--
-- transfer_finish (0007), which wrote one transfer, is no longer called.
DROP FUNCTION transfer_finish(uuid, text, text[], uuid, uuid, bigint, text, text, uuid, text, text, text, jsonb, text, text, jsonb);

-- Each statement finds its rows by key: the planner is told to use the keys (no sequential scans, no
-- hash or merge joins), since a generic plan made while a table was small would otherwise keep scanning
-- it whole after it grew.
CREATE OR REPLACE FUNCTION transfer_batch_finish(p_transfers jsonb, p_released jsonb)
RETURNS SETOF jsonb LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
  item jsonb;
  -- The column's precision: the answer's created_at is what was stored.
  posted_at timestamptz(3) := statement_timestamp();
  transfer_count integer;
  statuses text[];
  senders uuid[];
  receivers uuid[];
  amounts bigint[];
  -- The accounts the batch moves, each once, with its net change of balance and of held.
  account_ids uuid[] := '{}';
  balance_nets bigint[] := '{}';
  held_nets bigint[] := '{}';
  customer boolean[];
  balances bigint[];
  helds bigint[];
  -- The journal: two entries for each completed transfer, none for a held one.
  entry_transactions uuid[] := '{}';
  entry_accounts uuid[] := '{}';
  entry_amounts bigint[] := '{}';
  balance_after bigint[] := '{}';
  transfer_ids uuid[];
  slot integer;
  account_slot integer;
  entry integer;
BEGIN
  FOR item IN SELECT value FROM jsonb_array_elements(p_released) LOOP
    DELETE FROM idempotency_keys
     WHERE user_id = (item->>'user')::uuid AND endpoint = item->>'endpoint' AND key = item->>'key';
  END LOOP;
  transfer_count := jsonb_array_length(p_transfers);
  IF transfer_count = 0 THEN
    RETURN;
  END IF;

  INSERT INTO transactions (id, type, status, amount, currency, from_account_id, to_account_id,
                            description, created_by, review_reasons, created_at)
  SELECT (t->>'id')::uuid, 'transfer', t->>'status', (t->>'amount')::bigint, t->>'currency', (t->>'sender')::uuid,
         (t->>'receiver')::uuid, t->>'description', (t->>'user')::uuid,
         ARRAY(SELECT jsonb_array_elements_text(t->'review_reasons')), posted_at
    FROM jsonb_array_elements(p_transfers) WITH ORDINALITY AS b(t, ord)
   ORDER BY ord;

  SELECT array_agg((t->>'id')::uuid ORDER BY ord), array_agg(t->>'status' ORDER BY ord),
         array_agg((t->>'sender')::uuid ORDER BY ord), array_agg((t->>'receiver')::uuid ORDER BY ord),
         array_agg((t->>'amount')::bigint ORDER BY ord)
    INTO transfer_ids, statuses, senders, receivers, amounts
    FROM jsonb_array_elements(p_transfers) WITH ORDINALITY AS b(t, ord);

  -- A loop over arrays rather than a query: a query is an executor start each.
  FOR i IN 1 .. transfer_count LOOP
    IF statuses[i] = 'completed' THEN
      entry_transactions := entry_transactions || transfer_ids[i] || transfer_ids[i];
      entry_accounts := entry_accounts || senders[i] || receivers[i];
      entry_amounts := entry_amounts || -amounts[i] || amounts[i];
    END IF;
    FOR side IN 1 .. 2 LOOP
      slot := array_position(account_ids, CASE side WHEN 1 THEN senders[i] ELSE receivers[i] END);
      IF slot IS NULL THEN
        account_ids := account_ids || CASE side WHEN 1 THEN senders[i] ELSE receivers[i] END;
        balance_nets := balance_nets || 0::bigint;
        held_nets := held_nets || 0::bigint;
        slot := cardinality(account_ids);
      END IF;
      IF statuses[i] = 'completed' THEN
        balance_nets[slot] := balance_nets[slot] + CASE side WHEN 1 THEN -amounts[i] ELSE amounts[i] END;
      ELSIF side = 1 THEN
        held_nets[slot] := held_nets[slot] + amounts[i];
      END IF;
    END LOOP;
  END LOOP;

  WITH moved AS (
    UPDATE accounts a
       SET balance = a.balance + balance_nets[array_position(account_ids, a.id)],
           held = a.held + held_nets[array_position(account_ids, a.id)],
           updated_at = now()
     WHERE a.id = ANY (account_ids)
    RETURNING a.id, a.balance, a.held, a.type <> 'internal' AS customer
  )
  SELECT array_agg(m.balance ORDER BY array_position(account_ids, m.id)),
         array_agg(m.held ORDER BY array_position(account_ids, m.id)),
         array_agg(m.customer ORDER BY array_position(account_ids, m.id))
    INTO balances, helds, customer
    FROM moved m;
  IF coalesce(cardinality(balances), 0) <> cardinality(account_ids) THEN
    RAISE EXCEPTION 'a transfer names an account that does not exist' USING ERRCODE = 'foreign_key_violation';
  END IF;

  -- Backwards from the batch's end state, transfer by transfer: the balances each left behind.
  entry := coalesce(cardinality(entry_amounts), 0);
  FOR i IN REVERSE transfer_count .. 1 LOOP
    FOR side IN 1 .. 2 LOOP
      account_slot := array_position(account_ids, CASE side WHEN 1 THEN senders[i] ELSE receivers[i] END);
      IF customer[account_slot] AND (balances[account_slot] < 0 OR balances[account_slot] - helds[account_slot] < 0) THEN
        RAISE EXCEPTION 'new row for relation "accounts" violates check constraint "accounts_customer_not_overdrawn"'
          USING ERRCODE = 'check_violation', CONSTRAINT = 'accounts_customer_not_overdrawn', TABLE = 'accounts';
      END IF;
    END LOOP;
    IF statuses[i] = 'completed' THEN
      FOR side IN REVERSE 2 .. 1 LOOP
        account_slot := array_position(account_ids, entry_accounts[entry]);
        balance_after[entry] := balances[account_slot];
        balances[account_slot] := balances[account_slot] - entry_amounts[entry];
        entry := entry - 1;
      END LOOP;
    ELSE
      account_slot := array_position(account_ids, senders[i]);
      helds[account_slot] := helds[account_slot] - amounts[i];
    END IF;
  END LOOP;

  IF cardinality(entry_amounts) > 0 THEN
    INSERT INTO journal_entries (transaction_id, account_id, amount, balance_after, posted_at)
    SELECT e.transaction_id, e.account_id, e.amount, e.balance_after, posted_at
      FROM unnest(entry_transactions, entry_accounts, entry_amounts, balance_after)
             WITH ORDINALITY AS e(transaction_id, account_id, amount, balance_after, ord)
     ORDER BY e.ord;
  END IF;

  INSERT INTO audit_log (actor_id, actor_role, action, target_type, target_id, ip, request_id, details)
  SELECT (t->>'user')::uuid, t->>'actor_role', 'transfer.created', 'transaction', t->>'id', t->>'ip', t->>'request_id', t->'audit_details'
    FROM jsonb_array_elements(p_transfers) WITH ORDINALITY AS b(t, ord)
   ORDER BY ord;

  RETURN QUERY
  WITH answers AS (
    SELECT b.ord, b.t, b.t->'answer' || jsonb_build_object('created_at', to_char(posted_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')) AS answer
      FROM jsonb_array_elements(p_transfers) WITH ORDINALITY AS b(t, ord)
  ), stored AS (
    UPDATE idempotency_keys k
       SET status_code = 201, response = a.answer
      FROM answers a
     WHERE a.t->>'key' IS NOT NULL
       AND k.user_id = (a.t->>'user')::uuid AND k.endpoint = a.t->>'endpoint' AND k.key = a.t->>'key'
  )
  SELECT a.answer FROM answers a ORDER BY a.ord;
END $$;

-- transfer_batch_begin (migration 0009) finds its rows by key the same way. Its lock on the batch's
-- accounts was a dynamic statement (EXECUTE), planned on every call so that a generic plan made while
-- `accounts` was small could not keep scanning it whole; with sequential scans off it is a static
-- statement again, planned once per connection, and the call's planning is gone: 0.30 -> 0.20 ms for a
-- lone transfer's first statement, 0.12 -> 0.09 ms a transfer in batches of 4 (BENCHMARKS.md).
-- Otherwise the function is 0009's.
CREATE OR REPLACE FUNCTION transfer_batch_begin(
  p_users uuid[], p_from text[], p_to text[],
  p_keys text[], p_endpoints text[], p_fingerprints text[],
  p_velocity_minutes integer, p_velocity_count integer
) RETURNS TABLE (
  ord integer, stored_fingerprint text, stored_status integer, stored_response jsonb,
  id uuid, account_number text, user_id uuid, type text, currency text, balance bigint, held bigint,
  daily_limit bigint, status text, created_at timestamptz, updated_at timestamptz,
  sent_today bigint, recent_transfers bigint, paid_to uuid[], read_at timestamptz
) LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $$
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

  -- ORDER BY ... FOR UPDATE locks the rows in the order it returns them: id order.
  FOR acct IN SELECT * FROM accounts a WHERE a.account_number = ANY (account_numbers) ORDER BY a.id FOR UPDATE LOOP
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
