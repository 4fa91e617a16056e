-- A batch of transfers in one statement, its own database transaction (src/transfers/service.ts, group
-- commit). In order:
--   1. each request's access token must be active (active_access_tokens: issued, not revoked, its session
--      alive and of its user's credential version, its user active with the role the token claims);
--   2. a request whose key holds an answer gets it again (idempotency_stored; a transfer's answer is the
--      transfer as created: transfers_as_created), or 'idempotency_key_reused' when the key was used
--      with another request;
--   3. every account the other requests name is locked, in id order, like every posting;
--   4. each transfer is checked in order against what the batch's earlier ones left (the balance, the
--      daily limit, the risk rules: transfer_review_reasons) and refused, or recorded, posted
--      (ledger_post) and audited;
--   5. each keyed request's answer, a refusal as much as a transfer, is written under its key
--      (idempotency_record), keys last, in (user, endpoint, key) order.
-- So batches and single requests of other instances wait for each other instead of deadlocking. A key
-- that a concurrent statement stored after step 2 fails this one with 40001: the service runs the batch
-- again, and step 2 then replays that answer. Money moves once either way.
--
-- p_requests is a JSON array; request i is its i-th element:
--   {"user_id", "role", "jti", "from_account", "to_account", "amount" (minor units, a string),
--    "description", "key", "endpoint", "fingerprint", "ip", "request_id"}   (key: null when none).
-- p_risk holds the rules' settings: {"review_threshold", "new_payee_amount", "new_account_amount"
-- (minor units, strings), "new_account_hours", "velocity_count", "velocity_minutes"}.
-- p_now is the app's clock. The batch's instant (created_at, posted_at, the UTC day of the daily limit,
-- the risk rules' now) is p_now, or the latest posting of the locked accounts if that is later, so that
-- an account's entries never go back in time whatever the instances' clocks say (ledger_post refuses it).
--
-- One row per request, in no particular order: `problem` and `detail` for a refusal (replayed true when
-- it is the key's stored one); otherwise the transfer as created (replayed true when the key's).
--
-- It reads tables only through functions that each carry the planner settings their statement needs,
-- each setting with the test that fails without it (test/plans.test.ts); its own statements write, or
-- read what those returned. No statement of a transfer is compiled to machine code (jit = off;
-- ledger_post says why).
CREATE OR REPLACE FUNCTION transfer_batch(p_requests jsonb, p_risk jsonb, p_now timestamptz)
RETURNS TABLE (
  ord integer, replayed boolean, problem text, detail text,
  id uuid, status text, amount bigint, currency text, from_account text, to_account text, description text,
  created_by uuid, created_at timestamptz, review_reasons text[]
)
LANGUAGE plpgsql SET jit = off AS $$
#variable_conflict use_column
DECLARE
  review_threshold bigint := (p_risk ->> 'review_threshold')::bigint;
  new_payee_amount bigint := (p_risk ->> 'new_payee_amount')::bigint;
  new_account_amount bigint := (p_risk ->> 'new_account_amount')::bigint;
  new_account_hours integer := (p_risk ->> 'new_account_hours')::integer;
  velocity_count integer := (p_risk ->> 'velocity_count')::integer;
  velocity_minutes integer := (p_risk ->> 'velocity_minutes')::integer;
  -- The requests, a field an array: request i is element i of each.
  req_users uuid[];
  req_roles text[];
  req_jtis uuid[];
  req_from text[];
  req_to text[];
  req_amounts bigint[];
  req_descriptions text[];
  req_keys text[];
  req_endpoints text[];
  req_fingerprints text[];
  req_ips text[];
  req_request_ids text[];
  request_count integer;
  -- Per request: whether it is answered already (replayed, or refused), and the slots of its accounts.
  answered boolean[];
  sender_slot integer[];
  receiver_slot integer[];
  statuses text[];
  reasons text[];
  caller integer;
  stored record;
  refusal text;
  refusal_detail text;
  -- The answers that are not a new transfer: refusals, and replays of the keys' stored answers.
  refused_ords integer[] := '{}'::integer[];
  refused_replayed boolean[] := '{}'::boolean[];
  refused_problems text[] := '{}'::text[];
  refused_details text[] := '{}'::text[];
  replayed_ords integer[] := '{}'::integer[];
  replayed_ids uuid[] := '{}'::uuid[];
  -- user, endpoint and key of the batch's keyed requests checked so far, to find a key used twice.
  seen_keys text[] := '{}'::text[];
  account_numbers text[] := '{}'::text[];
  -- The locked accounts, in id order: a slot is an index into these.
  acct_ids uuid[];
  acct_numbers text[];
  acct_users uuid[];
  acct_currencies text[];
  acct_statuses text[];
  acct_opened timestamptz[];
  acct_balances bigint[];
  acct_helds bigint[];
  acct_limits bigint[];
  last_posted timestamptz;
  -- The senders' history, by slot, as the batch's earlier transfers leave it.
  sent_today bigint[];
  recent bigint[];
  -- Pairs (sender id || receiver id) with a completed transfer before the batch or in it.
  paid_pairs text[];
  posted_at timestamptz(3);
  today date;
  s integer;
  r integer;
  moved bigint;
  review text[];
  -- What the batch writes: its transfers that passed, in order.
  passed integer[] := '{}'::integer[];
  passed_ids uuid[] := '{}'::uuid[];
  passed_count integer := 0;
  held_accounts uuid[] := '{}'::uuid[];
  held_deltas bigint[] := '{}'::bigint[];
  entry_postings integer[] := '{}'::integer[];
  entry_accounts uuid[] := '{}'::uuid[];
  entry_amounts bigint[] := '{}'::bigint[];
  -- The answers to write under the requests' keys.
  key_answers idempotency_answer[] := '{}'::idempotency_answer[];
BEGIN
  SELECT coalesce(array_agg(q.user_id ORDER BY q.i), '{}'), array_agg(q.role ORDER BY q.i), array_agg(q.jti ORDER BY q.i),
         array_agg(q.from_account ORDER BY q.i), array_agg(q.to_account ORDER BY q.i), array_agg(q.amount ORDER BY q.i),
         array_agg(q.description ORDER BY q.i), array_agg(q.key ORDER BY q.i), array_agg(q.endpoint ORDER BY q.i),
         array_agg(q.fingerprint ORDER BY q.i), array_agg(q.ip ORDER BY q.i), array_agg(q.request_id ORDER BY q.i)
    INTO req_users, req_roles, req_jtis, req_from, req_to, req_amounts, req_descriptions, req_keys, req_endpoints,
         req_fingerprints, req_ips, req_request_ids
    FROM ROWS FROM (jsonb_to_recordset(p_requests) AS (user_id uuid, role text, jti uuid, from_account text, to_account text,
                    amount bigint, description text, key text, endpoint text, fingerprint text, ip text, request_id text))
         WITH ORDINALITY AS q(user_id, role, jti, from_account, to_account, amount, description, key, endpoint, fingerprint, ip,
                              request_id, i);
  request_count := cardinality(req_users);
  answered := array_fill(false, ARRAY[request_count]);
  sender_slot := array_fill(NULL::integer, ARRAY[request_count]);
  receiver_slot := array_fill(NULL::integer, ARRAY[request_count]);
  statuses := array_fill(NULL::text, ARRAY[request_count]);
  reasons := array_fill(NULL::text, ARRAY[request_count]);

  FOR caller IN SELECT k.i FROM generate_series(1, request_count) AS k(i)
                 LEFT JOIN active_access_tokens(req_jtis) a ON a.jti = req_jtis[k.i]
                WHERE a.jti IS NULL OR NOT a.is_active OR a.user_id <> req_users[k.i] OR a.role <> req_roles[k.i] LOOP
    answered[caller] := true;
    refused_ords := refused_ords || caller;
    refused_replayed := refused_replayed || false;
    refused_problems := refused_problems || 'unauthorized'::text;
    refused_details := refused_details || 'The access token is not valid'::text;
  END LOOP;

  FOR stored IN SELECT * FROM idempotency_stored(req_users, req_endpoints, req_keys) LOOP
    CONTINUE WHEN answered[stored.ord];
    answered[stored.ord] := true;
    IF stored.fingerprint <> req_fingerprints[stored.ord] THEN
      refused_ords := refused_ords || stored.ord;
      refused_replayed := refused_replayed || false;
      refused_problems := refused_problems || 'idempotency_key_reused'::text;
      refused_details := refused_details || 'This Idempotency-Key was used with a different request'::text;
    ELSIF stored.problem_code IS NOT NULL THEN
      refused_ords := refused_ords || stored.ord;
      refused_replayed := refused_replayed || true;
      refused_problems := refused_problems || stored.problem_code;
      refused_details := refused_details || stored.problem_detail;
    ELSE
      replayed_ords := replayed_ords || stored.ord;
      replayed_ids := replayed_ids || stored.transaction_id;
    END IF;
  END LOOP;

  -- Loops over arrays rather than queries where they will do: a query is an executor start each.
  FOR i IN 1 .. request_count LOOP
    IF NOT answered[i] THEN
      account_numbers := account_numbers || req_from[i] || req_to[i];
    END IF;
  END LOOP;

  SELECT l.ids, l.numbers, l.users, l.currencies, l.statuses, l.opened, l.balances, l.helds, l.limits, l.last_posted
    INTO acct_ids, acct_numbers, acct_users, acct_currencies, acct_statuses, acct_opened, acct_balances, acct_helds, acct_limits,
         last_posted
    FROM transfer_lock_accounts(account_numbers) l;
  posted_at := greatest(p_now, last_posted);
  today := (posted_at AT TIME ZONE 'UTC')::date;

  FOR i IN 1 .. request_count LOOP
    CONTINUE WHEN answered[i];
    s := array_position(acct_numbers, req_from[i]);
    IF s IS NOT NULL AND acct_users[s] = req_users[i] THEN
      sender_slot[i] := s;
    END IF;
    receiver_slot[i] := array_position(acct_numbers, req_to[i]);
  END LOOP;

  SELECT h.sent_today, h.recent, h.paid_pairs INTO sent_today, recent, paid_pairs
    FROM transfer_sender_history(acct_ids, sender_slot, receiver_slot, today, posted_at - make_interval(mins => velocity_minutes),
                                 CASE WHEN velocity_minutes > 0 THEN velocity_count ELSE 0 END) h;

  -- Each transfer in order, against the accounts as the earlier ones left them.
  FOR i IN 1 .. request_count LOOP
    CONTINUE WHEN answered[i];
    s := sender_slot[i];
    r := receiver_slot[i];
    moved := req_amounts[i];
    refusal := NULL;
    IF req_keys[i] IS NOT NULL THEN
      IF (req_users[i]::text || ' ' || req_endpoints[i] || ' ' || req_keys[i]) = ANY (seen_keys) THEN
        refusal := 'idempotency_in_progress'; refusal_detail := 'A request with this Idempotency-Key is still being processed';
      END IF;
      seen_keys := seen_keys || (req_users[i]::text || ' ' || req_endpoints[i] || ' ' || req_keys[i]);
    END IF;
    IF refusal IS NOT NULL THEN
      NULL;
    ELSIF s IS NULL THEN
      refusal := 'account_not_found'; refusal_detail := format('No account %s of yours', req_from[i]);
    ELSIF r IS NULL THEN
      refusal := 'account_not_found'; refusal_detail := format('No account %s', req_to[i]);
    ELSIF acct_statuses[s] <> 'active' THEN
      refusal := 'account_not_active'; refusal_detail := format('Account %s is %s', acct_numbers[s], acct_statuses[s]);
    ELSIF acct_statuses[r] <> 'active' THEN
      refusal := 'account_not_active'; refusal_detail := format('Account %s is %s', acct_numbers[r], acct_statuses[r]);
    ELSIF acct_currencies[s] <> acct_currencies[r] THEN
      refusal := 'currency_mismatch'; refusal_detail := format('Cannot move %s into a %s account', acct_currencies[s], acct_currencies[r]);
    ELSIF acct_balances[s] - acct_helds[s] < moved THEN
      refusal := 'insufficient_funds';
      refusal_detail := format('Available %s, needed %s', format_amount(acct_balances[s] - acct_helds[s]), format_amount(moved));
    ELSIF sent_today[s] + moved > acct_limits[s] THEN
      refusal := 'daily_limit_exceeded';
      refusal_detail := format('Daily limit %s; already sent today %s', format_amount(acct_limits[s]), format_amount(sent_today[s]));
    END IF;
    IF refusal IS NOT NULL THEN
      answered[i] := true;
      refused_ords := refused_ords || i;
      refused_replayed := refused_replayed || false;
      refused_problems := refused_problems || refusal;
      refused_details := refused_details || refusal_detail;
      -- A refusal is the key's answer; a key in use by an earlier request of the batch is not this one's to write.
      IF req_keys[i] IS NOT NULL AND refusal <> 'idempotency_in_progress' THEN
        key_answers := key_answers
          || ROW(req_users[i], req_endpoints[i], req_keys[i], req_fingerprints[i], NULL, NULL, refusal, refusal_detail)::idempotency_answer;
      END IF;
      CONTINUE;
    END IF;

    review := transfer_review_reasons(moved, acct_opened[s], posted_at,
                (acct_ids[s]::text || acct_ids[r]::text) = ANY (paid_pairs), recent[s],
                review_threshold, new_payee_amount, new_account_amount, new_account_hours, velocity_count, velocity_minutes);
    passed_count := passed_count + 1;
    passed[passed_count] := i;
    passed_ids[passed_count] := uuid_v7();
    reasons[i] := array_to_string(review, ',');
    statuses[i] := new_transfer_status(review);
    IF req_keys[i] IS NOT NULL THEN
      key_answers := key_answers
        || ROW(req_users[i], req_endpoints[i], req_keys[i], req_fingerprints[i], NULL, passed_ids[passed_count], NULL, NULL)::idempotency_answer;
    END IF;
    IF statuses[i] = 'completed' THEN
      acct_balances[s] := acct_balances[s] - moved;
      acct_balances[r] := acct_balances[r] + moved;
      paid_pairs := paid_pairs || (acct_ids[s]::text || acct_ids[r]::text);
      held_accounts[passed_count] := NULL;
      held_deltas[passed_count] := 0;
      entry_postings := entry_postings || passed_count || passed_count;
      entry_accounts := entry_accounts || acct_ids[s] || acct_ids[r];
      entry_amounts := entry_amounts || -moved || moved;
    ELSE
      acct_helds[s] := acct_helds[s] + moved;
      held_accounts[passed_count] := acct_ids[s];
      held_deltas[passed_count] := moved;
    END IF;
    sent_today[s] := sent_today[s] + moved;
    recent[s] := recent[s] + 1;
  END LOOP;

  IF passed_count > 0 THEN
    INSERT INTO transactions (id, type, status, amount, currency, from_account_id, to_account_id,
                              description, created_by, review_reasons, created_at)
    SELECT passed_ids[x.n], 'transfer', statuses[x.i], req_amounts[x.i], acct_currencies[sender_slot[x.i]],
           acct_ids[sender_slot[x.i]], acct_ids[receiver_slot[x.i]], req_descriptions[x.i], req_users[x.i],
           string_to_array(reasons[x.i], ','), posted_at
      FROM unnest(passed) WITH ORDINALITY AS x(i, n)
     ORDER BY x.n;

    PERFORM ledger_post(passed_ids, held_accounts, held_deltas, entry_postings, entry_accounts, entry_amounts, posted_at);

    INSERT INTO audit_log (actor_id, actor_role, action, target_type, target_id, ip, request_id, details)
    SELECT req_users[x.i], req_roles[x.i], 'transfer.created', 'transaction', passed_ids[x.n]::text, req_ips[x.i], req_request_ids[x.i],
           jsonb_build_object('from_account', req_from[x.i], 'to_account', req_to[x.i], 'amount', format_amount(req_amounts[x.i]),
                              'currency', acct_currencies[sender_slot[x.i]], 'status', statuses[x.i])
           || CASE WHEN reasons[x.i] = '' THEN '{}'::jsonb ELSE jsonb_build_object('review_reasons', string_to_array(reasons[x.i], ',')) END
      FROM unnest(passed) WITH ORDINALITY AS x(i, n)
     ORDER BY x.n;
  END IF;

  IF cardinality(key_answers) > 0 THEN
    PERFORM idempotency_record(key_answers);
  END IF;

  RETURN QUERY
  SELECT x.ord, x.replayed, x.problem, x.detail, NULL::uuid, NULL::text, NULL::bigint, NULL::text, NULL::text, NULL::text, NULL::text,
         NULL::uuid, NULL::timestamptz, NULL::text[]
    FROM unnest(refused_ords, refused_replayed, refused_problems, refused_details) AS x(ord, replayed, problem, detail);
  RETURN QUERY
  SELECT x.ord, true, NULL::text, NULL::text, t.id, t.status, t.amount, t.currency, t.from_account, t.to_account, t.description,
         t.created_by, t.created_at, t.review_reasons
    FROM unnest(replayed_ords, replayed_ids) AS x(ord, transaction_id)
    JOIN transfers_as_created(replayed_ids) t ON t.id = x.transaction_id;
  RETURN QUERY
  SELECT x.i, false, NULL::text, NULL::text, passed_ids[x.n], statuses[x.i], req_amounts[x.i], acct_currencies[sender_slot[x.i]],
         req_from[x.i], req_to[x.i], req_descriptions[x.i], req_users[x.i], posted_at::timestamptz, string_to_array(reasons[x.i], ',')
    FROM unnest(passed) WITH ORDINALITY AS x(i, n);
END $$;
