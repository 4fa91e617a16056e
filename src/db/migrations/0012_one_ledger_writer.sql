-- One writer of balances, held amounts and journal entries. Until now there were two: ledger_apply
-- (0007) for one posting, and transfer_batch_finish (0010), which restated the same work in set form
-- for a batch of transfers. ledger_post does it for any number of postings, in their order, and both
-- callers use it: ledger/post.ts for every posting that is not a transfer (one posting a call),
-- transfer_batch_finish for a batch of transfers (one posting each).
--
-- A posting is a transaction's journal entries (none, or two or more, non-zero, summing to zero) and
-- at most one change of an account's held amount (+ holds, - releases). The caller holds the
-- accounts' row locks, taken in id order. Each account is updated once, by its net over all the
-- postings, and the accounts' CHECKs judge that end state; that each posting's own result was within
-- them too (no held amount below zero, no customer balance nor balance less held below zero, after any
-- posting, even when a later one would cover it) is checked in the walk back from the end state that gives each entry the balance
-- it left behind, and refused with the CHECK's own error. The journal entries are inserted in their
-- given order, with the statement's time or p_posted_at.
CREATE FUNCTION ledger_post(
  p_transactions uuid[],
  p_held_accounts uuid[],
  p_held_deltas bigint[],
  -- Each entry's posting (its position in p_transactions): entries come grouped by posting, in order.
  p_entry_postings integer[],
  p_entry_accounts uuid[],
  p_entry_amounts bigint[],
  p_posted_at timestamptz
) RETURNS void LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
  posting_count integer := coalesce(cardinality(p_transactions), 0);
  entry_count integer := coalesce(cardinality(p_entry_amounts), 0);
  posting_sizes integer[] := array_fill(0, ARRAY[posting_count]);
  posting_totals bigint[] := array_fill(0::bigint, ARRAY[posting_count]);
  -- The accounts the postings move, each once, with the net change of its balance and of its held amount.
  account_ids uuid[] := '{}';
  balance_nets bigint[] := '{}';
  held_nets bigint[] := '{}';
  customer boolean[];
  balances bigint[];
  helds bigint[];
  balance_after bigint[] := array_fill(NULL::bigint, ARRAY[entry_count]);
  posting integer;
  touched integer[];
  slot integer;
  entry integer;
  missing uuid;
BEGIN
  IF posting_count = 0 OR coalesce(cardinality(p_held_accounts), 0) <> posting_count
     OR coalesce(cardinality(p_held_deltas), 0) <> posting_count
     OR coalesce(cardinality(p_entry_postings), 0) <> entry_count OR coalesce(cardinality(p_entry_accounts), 0) <> entry_count THEN
    RAISE EXCEPTION 'ledger_post takes a transaction, held account and held change per posting, and a posting, account and amount per entry'
      USING ERRCODE = 'invalid_parameter_value';
  END IF;

  -- Loops over arrays rather than queries: a query is an executor start each.
  FOR i IN 1 .. entry_count LOOP
    posting := p_entry_postings[i];
    IF posting IS NULL OR posting < 1 OR posting > posting_count OR (i > 1 AND posting < p_entry_postings[i - 1]) THEN
      RAISE EXCEPTION 'entries must come grouped by posting, in the postings'' order' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF coalesce(p_entry_amounts[i], 0) = 0 OR p_entry_accounts[i] IS NULL THEN
      RAISE EXCEPTION 'a posting needs two or more non-zero entries summing to zero' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    posting_sizes[posting] := posting_sizes[posting] + 1;
    posting_totals[posting] := posting_totals[posting] + p_entry_amounts[i];
    slot := array_position(account_ids, p_entry_accounts[i]);
    IF slot IS NULL THEN
      account_ids := account_ids || p_entry_accounts[i];
      balance_nets := balance_nets || p_entry_amounts[i];
      held_nets := held_nets || 0::bigint;
    ELSE
      balance_nets[slot] := balance_nets[slot] + p_entry_amounts[i];
    END IF;
  END LOOP;
  FOR p IN 1 .. posting_count LOOP
    IF posting_sizes[p] = 1 OR posting_totals[p] <> 0 THEN
      RAISE EXCEPTION 'a posting needs two or more non-zero entries summing to zero' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF posting_sizes[p] = 0 AND (p_held_accounts[p] IS NULL OR coalesce(p_held_deltas[p], 0) = 0) THEN
      RAISE EXCEPTION 'a posting with no entries must change a held amount' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_held_accounts[p] IS NOT NULL THEN
      slot := array_position(account_ids, p_held_accounts[p]);
      IF slot IS NULL THEN
        account_ids := account_ids || p_held_accounts[p];
        balance_nets := balance_nets || 0::bigint;
        held_nets := held_nets || coalesce(p_held_deltas[p], 0);
      ELSE
        held_nets[slot] := held_nets[slot] + coalesce(p_held_deltas[p], 0);
      END IF;
    END IF;
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
    SELECT a INTO missing FROM unnest(account_ids) AS a WHERE NOT EXISTS (SELECT 1 FROM accounts x WHERE x.id = a) LIMIT 1;
    RAISE EXCEPTION 'a posting names account %, which does not exist', missing USING ERRCODE = 'foreign_key_violation';
  END IF;

  -- Backwards from the end state, posting by posting: first the accounts this posting touched, as it
  -- left them, within the CHECKs; then, undoing it, the balance each of its entries left behind.
  entry := entry_count;
  FOR p IN REVERSE posting_count .. 1 LOOP
    touched := CASE WHEN p_held_accounts[p] IS NULL THEN '{}' ELSE ARRAY[array_position(account_ids, p_held_accounts[p])] END;
    FOR i IN REVERSE entry .. 1 LOOP
      EXIT WHEN p_entry_postings[i] <> p;
      touched := touched || array_position(account_ids, p_entry_accounts[i]);
    END LOOP;
    FOREACH slot IN ARRAY touched LOOP
      IF helds[slot] < 0 THEN
        RAISE EXCEPTION 'new row for relation "accounts" violates check constraint "accounts_held_check"'
          USING ERRCODE = 'check_violation', CONSTRAINT = 'accounts_held_check', TABLE = 'accounts';
      END IF;
      IF customer[slot] AND (balances[slot] < 0 OR balances[slot] - helds[slot] < 0) THEN
        RAISE EXCEPTION 'new row for relation "accounts" violates check constraint "accounts_customer_not_overdrawn"'
          USING ERRCODE = 'check_violation', CONSTRAINT = 'accounts_customer_not_overdrawn', TABLE = 'accounts';
      END IF;
    END LOOP;
    IF p_held_accounts[p] IS NOT NULL THEN
      slot := array_position(account_ids, p_held_accounts[p]);
      helds[slot] := helds[slot] - coalesce(p_held_deltas[p], 0);
    END IF;
    WHILE entry >= 1 AND p_entry_postings[entry] = p LOOP
      slot := array_position(account_ids, p_entry_accounts[entry]);
      balance_after[entry] := balances[slot];
      balances[slot] := balances[slot] - p_entry_amounts[entry];
      entry := entry - 1;
    END LOOP;
  END LOOP;

  IF entry_count > 0 THEN
    INSERT INTO journal_entries (transaction_id, account_id, amount, balance_after, posted_at)
    SELECT p_transactions[e.posting], e.account_id, e.amount, e.balance_after, coalesce(p_posted_at, statement_timestamp())
      FROM unnest(p_entry_postings, p_entry_accounts, p_entry_amounts, balance_after)
             WITH ORDINALITY AS e(posting, account_id, amount, balance_after, ord)
     ORDER BY e.ord;
  END IF;
END $$;

-- ledger/post.ts calls ledger_post now.
DROP FUNCTION ledger_apply(uuid, uuid[], bigint[], timestamptz, uuid, bigint);

-- transfer_batch_finish (0010) with its balances and journal entries written by ledger_post: each
-- completed transfer a posting of two entries (sender -, receiver +), each held one a posting with no
-- entries that holds the amount on the sender. Otherwise the function is 0010's.
CREATE OR REPLACE FUNCTION transfer_batch_finish(p_transfers jsonb, p_released jsonb)
RETURNS SETOF jsonb LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
  item jsonb;
  -- The column's precision: the answer's created_at is what was stored.
  posted_at timestamptz(3) := statement_timestamp();
  transfer_ids uuid[];
  statuses text[];
  senders uuid[];
  receivers uuid[];
  amounts bigint[];
  held_accounts uuid[] := '{}';
  held_deltas bigint[] := '{}';
  entry_postings integer[] := '{}';
  entry_accounts uuid[] := '{}';
  entry_amounts bigint[] := '{}';
BEGIN
  FOR item IN SELECT value FROM jsonb_array_elements(p_released) LOOP
    DELETE FROM idempotency_keys
     WHERE user_id = (item->>'user')::uuid AND endpoint = item->>'endpoint' AND key = item->>'key';
  END LOOP;
  IF jsonb_array_length(p_transfers) = 0 THEN
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
  FOR i IN 1 .. cardinality(transfer_ids) LOOP
    IF statuses[i] = 'completed' THEN
      held_accounts[i] := NULL;
      held_deltas[i] := 0;
      entry_postings := entry_postings || i || i;
      entry_accounts := entry_accounts || senders[i] || receivers[i];
      entry_amounts := entry_amounts || -amounts[i] || amounts[i];
    ELSE
      held_accounts[i] := senders[i];
      held_deltas[i] := amounts[i];
    END IF;
  END LOOP;

  PERFORM ledger_post(transfer_ids, held_accounts, held_deltas, entry_postings, entry_accounts, entry_amounts, posted_at);

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
