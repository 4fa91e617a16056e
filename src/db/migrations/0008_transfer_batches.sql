-- Group commit: the transfers that arrive while earlier ones are being committed are committed together,
-- in one database transaction of two statements, however many they are (up to the batch size). Each
-- transfer is still all or nothing: the service checks every one against the state the earlier ones of
-- its batch left, and posts only those that pass. transfer_begin (0007) was the one-transfer form of
-- transfer_batch_begin; a lone transfer is now a batch of one.
DROP FUNCTION transfer_begin(uuid, text, text, integer, text, text, text);

-- What each account has sent today counts against its daily limit. Summing the day's transfers on
-- every transfer grew with the account's volume (a batch's first statement: 0.12 ms a transfer with no
-- transfer yet today, 0.43 with 300 per sender, 4.3 with 3,000), so the sums are kept per account and
-- UTC day by a trigger on transactions, which sees every insert and every change of status (a held
-- transfer rejected stops counting) whatever code makes it. The daily limit reads one row.
CREATE TABLE daily_outflows (
  account_id uuid   NOT NULL REFERENCES accounts (id),
  day        date   NOT NULL,
  amount     bigint NOT NULL CHECK (amount >= 0),
  PRIMARY KEY (account_id, day)
);

CREATE FUNCTION daily_outflows_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND OLD.type = 'transfer' AND OLD.status IN ('completed', 'pending_review') THEN
    UPDATE daily_outflows SET amount = amount - OLD.amount
     WHERE account_id = OLD.from_account_id AND day = (OLD.created_at AT TIME ZONE 'UTC')::date;
  END IF;
  IF NEW.type = 'transfer' AND NEW.status IN ('completed', 'pending_review') THEN
    INSERT INTO daily_outflows AS d (account_id, day, amount)
    VALUES (NEW.from_account_id, (NEW.created_at AT TIME ZONE 'UTC')::date, NEW.amount)
    ON CONFLICT (account_id, day) DO UPDATE SET amount = d.amount + EXCLUDED.amount;
  END IF;
  RETURN NULL;
END $$;

-- Created before the backfill: its lock keeps transfers out until this migration commits, so none is
-- counted twice or missed.
CREATE TRIGGER transactions_daily_outflows
  AFTER INSERT OR UPDATE OF type, status, amount, from_account_id, created_at ON transactions
  FOR EACH ROW EXECUTE FUNCTION daily_outflows_track();

INSERT INTO daily_outflows (account_id, day, amount)
SELECT from_account_id, (created_at AT TIME ZONE 'UTC')::date, sum(amount)
  FROM transactions
 WHERE type = 'transfer' AND status IN ('completed', 'pending_review')
 GROUP BY 1, 2;

-- The velocity rule's read: a sender's transfers that count, newest first. Its predicate is the
-- rule's, so the planner never has to guess how many rows the filter keeps (a table never analysed
-- made it read the sender's whole window and sort it, before taking the first p_velocity_count).
CREATE INDEX transactions_sender_counted_idx ON transactions (from_account_id, created_at DESC)
  WHERE type = 'transfer' AND status IN ('completed', 'pending_review');

-- A batch's first statement. Request i is (p_users[i], p_from[i], p_to[i]) with its idempotency key
-- p_keys[i] (null: none) on p_endpoints[i] with p_fingerprints[i]. In this order, so that batches and
-- single requests of other instances wait for each other instead of deadlocking:
--   1. claims the keys, in (user, endpoint, key) order; a key that already belongs to an earlier
--      request gives one row with ord = i and stored_* set, and that request takes no further part;
--   2. locks every account the other requests name, in id order, like every posting;
--   3. reads, under those locks, the history of each sender (an account named as a request's sender
--      that belongs to that request's user): what it sent today (daily_outflows), how many transfers
--      it sent in the velocity window, counted up to p_velocity_count (the rule only asks whether
--      there are that many, so a busy account's window is not read to its end), and which of the
--      batch's receivers of that sender it ever completed a transfer to (paid_to).
-- One row per locked account (ord null), the history null on accounts that send nothing in the batch.
-- The history is the state before the batch: the service adds the batch's own transfers as it checks
-- them in order.
CREATE FUNCTION transfer_batch_begin(
  p_users uuid[], p_from text[], p_to text[],
  p_keys text[], p_endpoints text[], p_fingerprints text[],
  p_velocity_minutes integer, p_velocity_count integer
) RETURNS TABLE (
  ord integer, stored_fingerprint text, stored_status integer, stored_response jsonb,
  id uuid, account_number text, user_id uuid, type text, currency text, balance bigint, held bigint,
  daily_limit bigint, status text, created_at timestamptz, updated_at timestamptz,
  sent_today bigint, recent_transfers bigint, paid_to uuid[], read_at timestamptz
) LANGUAGE plpgsql AS $$
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

-- A batch's second statement, once the service has checked its transfers in order. p_transfers holds
-- those that passed, each as transfer_finish's arguments by name; they are recorded and posted in that
-- order, and their answers returned in it. p_released holds the keys ({user, endpoint, key}) of the
-- requests that were refused: deleted, as the rollback of a lone refused transfer would have, so that a
-- repeat runs afresh.
CREATE FUNCTION transfer_batch_finish(p_transfers jsonb, p_released jsonb)
RETURNS SETOF jsonb LANGUAGE plpgsql AS $$
DECLARE
  item jsonb;
BEGIN
  FOR item IN SELECT value FROM jsonb_array_elements(p_released) LOOP
    DELETE FROM idempotency_keys
     WHERE user_id = (item->>'user')::uuid AND endpoint = item->>'endpoint' AND key = item->>'key';
  END LOOP;
  FOR item IN SELECT value FROM jsonb_array_elements(p_transfers) LOOP
    RETURN NEXT transfer_finish(
      (item->>'id')::uuid, item->>'status', ARRAY(SELECT jsonb_array_elements_text(item->'review_reasons')),
      (item->>'sender')::uuid, (item->>'receiver')::uuid, (item->>'amount')::bigint, item->>'currency', item->>'description',
      (item->>'user')::uuid, item->>'actor_role', item->>'ip', item->>'request_id', item->'audit_details',
      item->>'key', item->>'endpoint', item->'answer');
  END LOOP;
END $$;
