-- The one writer of balances, held amounts and journal entries: src/ledger/post.ts calls it for every
-- posting that is not a transfer (one posting a call), transfer_batch for a batch of transfers (one
-- posting each).
--
-- A posting is a transaction's journal entries (none, or two or more, non-zero, summing to zero) and
-- at most one change of an account's held amount (+ holds, - releases). The caller holds the
-- accounts' row locks, taken in id order. Each account is updated once, by its net over all the
-- postings, and the accounts' CHECKs judge that end state; that each posting's own result was within
-- them too (no held amount below zero, no customer balance nor balance less held below zero, after any
-- posting, even when a later one would cover it) is checked in the walk back from the end state that
-- gives each entry the balance it left behind, and refused with the CHECK's own error. The journal
-- entries are inserted in their given order, at p_posted_at.
--
-- p_posted_at is the postings' instant, which the caller takes from the app's clock (or the latest
-- last_posted_at of the accounts it locked, if that is later): it is required, and never earlier than
-- the last posting of any account the postings touch. Statements read an account's entries in
-- (posted_at, id) order and their running balance_after follows the order the row locks gave the
-- postings, so the two orders must agree; a posting that would go back in time on an account is a
-- caller's bug, refused (invalid_parameter_value) naming the account. Each touched account's
-- last_posted_at becomes p_posted_at.
--
-- Planner settings, each with the test in test/plans.test.ts that fails without it:
--   plan_cache_mode = force_generic_plan  each statement is planned once per connection, on its first
--       call, not at each of its first five calls (PL/pgSQL's default) nor whenever a custom plan
--       looks cheaper then;
--   enable_seqscan = off  that plan, when made over an accounts table of a few rows, analysed, updates
--       the accounts by their primary key, not by a scan of the table kept as it grows;
--   jit = off  no statement is compiled to machine code: PostgreSQL compiles every execution of a plan
--       whose estimated cost passes jit_above_cost, 10 to 20 ms a time against a statement's fraction
--       of a millisecond, and a generic plan's estimate grows with the tables it was made over. The
--       functions that a transfer calls carry it for the same reason.
CREATE OR REPLACE FUNCTION ledger_post(
  p_transactions uuid[],
  p_held_accounts uuid[],
  p_held_deltas bigint[],
  -- Each entry's posting (its position in p_transactions): entries come grouped by posting, in order.
  p_entry_postings integer[],
  p_entry_accounts uuid[],
  p_entry_amounts bigint[],
  p_posted_at timestamptz
) RETURNS void LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off
SET jit = off AS $$
DECLARE
  posting_count integer := coalesce(cardinality(p_transactions), 0);
  entry_count integer := coalesce(cardinality(p_entry_amounts), 0);
  posting_sizes integer[] := array_fill(0, ARRAY[posting_count]);
  posting_totals bigint[] := array_fill(0::bigint, ARRAY[posting_count]);
  -- The accounts the postings move, each once, with the net change of its balance and of its held amount.
  account_ids uuid[] := '{}'::uuid[];
  balance_nets bigint[] := '{}'::bigint[];
  held_nets bigint[] := '{}'::bigint[];
  customer boolean[];
  balances bigint[];
  helds bigint[];
  balance_after bigint[] := array_fill(NULL::bigint, ARRAY[entry_count]);
  posting integer;
  touched integer[];
  slot integer;
  entry integer;
  missing uuid;
  -- As the columns keep it (milliseconds), so that the order is judged on what is stored.
  instant timestamptz(3) := p_posted_at;
  ahead uuid;
  ahead_at timestamptz;
BEGIN
  IF p_posted_at IS NULL THEN
    RAISE EXCEPTION 'ledger_post needs the postings'' instant (p_posted_at)' USING ERRCODE = 'invalid_parameter_value';
  END IF;
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
           last_posted_at = instant,
           updated_at = now()
     WHERE a.id = ANY (account_ids)
       -- An account posted later than instant is left out, and told apart from a missing one below.
       AND (a.last_posted_at IS NULL OR a.last_posted_at <= instant)
    RETURNING a.id, a.balance, a.held, a.type <> 'internal' AS customer
  )
  SELECT array_agg(m.balance ORDER BY array_position(account_ids, m.id)),
         array_agg(m.held ORDER BY array_position(account_ids, m.id)),
         array_agg(m.customer ORDER BY array_position(account_ids, m.id))
    INTO balances, helds, customer
    FROM moved m;
  IF coalesce(cardinality(balances), 0) <> cardinality(account_ids) THEN
    SELECT x.id, x.last_posted_at INTO ahead, ahead_at
      FROM accounts x WHERE x.id = ANY (account_ids) AND x.last_posted_at > instant ORDER BY x.id LIMIT 1;
    IF FOUND THEN
      RAISE EXCEPTION 'a posting at % is earlier than the last posting of account %, at %: an account''s postings go forward in time',
        instant, ahead, ahead_at USING ERRCODE = 'invalid_parameter_value';
    END IF;
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
    SELECT p_transactions[e.posting], e.account_id, e.amount, e.balance_after, instant
      FROM unnest(p_entry_postings, p_entry_accounts, p_entry_amounts, balance_after)
             WITH ORDINALITY AS e(posting, account_id, amount, balance_after, ord)
     ORDER BY e.ord;
  END IF;
END $$;
