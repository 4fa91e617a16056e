-- A batch of transfers in one statement, its own database transaction (src/transfers/service.ts, group
-- commit): it checks each caller's access token (active_access_tokens: issued, not revoked, its session
-- alive and of its user's credential version, its user active with the role the token claims), reads
-- the keys' stored answers, locks the accounts, reads the senders' history, checks every transfer in
-- order against what the batch's earlier ones left (the balance, the daily limit, the risk rules:
-- transfer_review_reasons), and records, posts (ledger_post), audits and answers those that pass,
-- storing each keyed answer, refusals included, under its key (idempotency_record). One round trip.
--
-- A key is written once, with its answer, at the end. A concurrent request with the same key (another
-- instance's; one instance never batches one key twice nor runs it twice at once) that has not
-- committed makes that write wait until it ends; if it committed, this statement fails as a
-- serialization failure (40001), the service runs it again, and the second run finds that request's
-- answer and replays it. Money moves once either way.
--
-- Request i of the batch is p_users[i] (role p_roles[i], by access token p_jtis[i]) moving p_amounts[i]
-- from account number p_from[i] to p_to[i] with description p_descriptions[i] and, when p_keys[i] is
-- not null, that Idempotency-Key on p_endpoints[i] with request fingerprint p_fingerprints[i]. One row
-- per request, in no particular order:
--   a transfer that passed:  http_status 201, body its answer (the Transaction as JSON text);
--   a repeated key:          http_status and body the stored answer, or problem and detail the
--                            stored refusal, replayed true; or problem 'idempotency_key_reused' when
--                            the key was used with another request, 'idempotency_in_progress' when
--                            an earlier request of the batch has it (neither is stored);
--   a transfer refused:      problem (the API's error code) and detail, stored under its key when it
--                            has one, nothing else of it written; 'unauthorized' first of all when
--                            its token is not active, nothing of it written, its key included.
-- In this order, so that batches and single requests of other instances wait for each other instead
-- of deadlocking: every account the requests name is locked in id order, like every posting, and the
-- keys are written last, in (user, endpoint, key) order. The time of the batch (created_at, posted_at, the
-- UTC day of the daily limit, the risk rules' now) is read once the locks are held, so that the
-- entries of an account are stamped in the order they were posted.
--
-- No statement of a transfer is compiled to machine code (jit = off; ledger_post says why).
CREATE OR REPLACE FUNCTION transfer_batch(
  p_users uuid[], p_roles text[], p_jtis uuid[], p_from text[], p_to text[], p_amounts bigint[], p_descriptions text[],
  p_keys text[], p_endpoints text[], p_fingerprints text[], p_ips text[], p_request_ids text[],
  p_review_threshold bigint, p_new_payee_amount bigint, p_new_account_amount bigint, p_new_account_hours integer,
  p_velocity_count integer, p_velocity_minutes integer
) RETURNS TABLE (ord integer, http_status integer, replayed boolean, body text, problem text, detail text)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET enable_bitmapscan = off SET enable_hashjoin = off
SET enable_mergejoin = off SET jit = off AS $$
#variable_conflict use_column
DECLARE
  request_count integer := coalesce(cardinality(p_users), 0);
  -- Per request: whether it is answered already (replayed, or refused), and the slots of its accounts.
  answered boolean[] := array_fill(false, ARRAY[request_count]);
  sender_slot integer[] := array_fill(NULL::integer, ARRAY[request_count]);
  receiver_slot integer[] := array_fill(NULL::integer, ARRAY[request_count]);
  statuses text[] := array_fill(NULL::text, ARRAY[request_count]);
  reasons text[] := array_fill(NULL::text, ARRAY[request_count]);
  caller integer;
  stored record;
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
  -- The senders' history, by slot, as the batch's earlier transfers leave it.
  sent_today bigint[];
  recent bigint[];
  -- Pairs (sender id || receiver id) with a completed transfer before the batch or in it.
  paid_pairs text[];
  posted_at timestamptz(3);
  -- posted_at as the answers write it.
  posted_text text;
  today date;
  s integer;
  r integer;
  amount bigint;
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
  -- The answers of the transfers that passed, and the keys to store them and the refusals under.
  answers text[] := '{}'::text[];
  key_users uuid[] := '{}'::uuid[];
  key_endpoints text[] := '{}'::text[];
  key_keys text[] := '{}'::text[];
  key_fingerprints text[] := '{}'::text[];
  key_answers jsonb[] := '{}'::jsonb[];
  key_problem_codes text[] := '{}'::text[];
  key_problem_details text[] := '{}'::text[];
BEGIN
  FOR caller IN SELECT k.i FROM generate_series(1, request_count) AS k(i)
                 LEFT JOIN active_access_tokens(p_jtis) a ON a.jti = p_jtis[k.i]
                WHERE a.jti IS NULL OR NOT a.is_active OR a.user_id <> p_users[k.i] OR a.role <> p_roles[k.i] LOOP
    answered[caller] := true;
    ord := caller; http_status := NULL; replayed := false; body := NULL;
    problem := 'unauthorized'; detail := 'The access token is not valid';
    RETURN NEXT;
  END LOOP;

  -- Keys that earlier requests used: their answers are replayed, or refused with another request. One
  -- probe of the key per request (LATERAL ... LIMIT 1: never a join the planner could turn around into
  -- a walk over the table, which a plan made while the table was small would keep doing as it grows).
  FOR stored IN SELECT k.i AS request, s.fingerprint, s.status_code, s.response, s.problem_code, s.problem_detail
                  FROM generate_series(1, request_count) AS k(i)
                 CROSS JOIN LATERAL (SELECT x.fingerprint, x.status_code, x.response, x.problem_code, x.problem_detail FROM idempotency_keys x
                                      WHERE x.user_id = p_users[k.i] AND x.endpoint = p_endpoints[k.i] AND x.key = p_keys[k.i]
                                      LIMIT 1) s
                 WHERE p_keys[k.i] IS NOT NULL AND NOT answered[k.i] LOOP
    answered[stored.request] := true;
    ord := stored.request; http_status := NULL; replayed := false; body := NULL; problem := NULL; detail := NULL;
    IF stored.fingerprint <> p_fingerprints[stored.request] THEN
      problem := 'idempotency_key_reused'; detail := 'This Idempotency-Key was used with a different request';
    ELSIF stored.problem_code IS NOT NULL THEN
      problem := stored.problem_code; detail := stored.problem_detail; replayed := true;
    ELSIF stored.status_code IS NULL THEN
      -- Never committed so (a claim is answered in its own transaction); not replayed empty.
      problem := 'idempotency_in_progress'; detail := 'A request with this Idempotency-Key is still being processed';
    ELSE
      http_status := stored.status_code; replayed := true; body := stored.response::text;
    END IF;
    RETURN NEXT;
  END LOOP;

  -- Loops over arrays rather than queries where they will do: a query is an executor start each.
  FOR i IN 1 .. request_count LOOP
    IF NOT answered[i] THEN
      account_numbers := account_numbers || p_from[i] || p_to[i];
    END IF;
  END LOOP;

  -- ORDER BY ... FOR UPDATE locks the rows in the order it returns them: id order.
  SELECT coalesce(array_agg(a.id ORDER BY a.id), '{}'), array_agg(a.account_number ORDER BY a.id), array_agg(a.user_id ORDER BY a.id),
         array_agg(a.currency ORDER BY a.id), array_agg(a.status ORDER BY a.id), array_agg(a.created_at ORDER BY a.id),
         array_agg(a.balance ORDER BY a.id), array_agg(a.held ORDER BY a.id), array_agg(a.daily_limit ORDER BY a.id)
    INTO acct_ids, acct_numbers, acct_users, acct_currencies, acct_statuses, acct_opened, acct_balances, acct_helds, acct_limits
    FROM (SELECT * FROM accounts x WHERE x.account_number = ANY (account_numbers) ORDER BY x.id FOR UPDATE) a;
  posted_at := clock_timestamp();
  today := (posted_at AT TIME ZONE 'UTC')::date;
  posted_text := to_char(posted_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"');

  FOR i IN 1 .. request_count LOOP
    CONTINUE WHEN answered[i];
    s := array_position(acct_numbers, p_from[i]);
    IF s IS NOT NULL AND acct_users[s] = p_users[i] THEN
      sender_slot[i] := s;
    END IF;
    receiver_slot[i] := array_position(acct_numbers, p_to[i]);
  END LOOP;

  -- The senders' history, one index probe each (a sender's day in daily_outflows; its transfers in the
  -- velocity window newest first, counted only up to the rule's threshold), and whether each pair of
  -- the batch has a completed transfer already (one probe of the payee index per pair, stopping at the
  -- first row). Every read is bounded by an account, a pair, a day or the threshold, never by the size
  -- of the ledger.
  SELECT array_agg(CASE WHEN k.slot = ANY (sender_slot) THEN
                     coalesce((SELECT d.amount FROM daily_outflows d WHERE d.account_id = acct_ids[k.slot] AND d.day = today), 0)
                   END ORDER BY k.slot),
         array_agg(CASE WHEN k.slot = ANY (sender_slot) AND p_velocity_count > 0 AND p_velocity_minutes > 0 THEN
                     (SELECT count(*) FROM (
                        SELECT 1 FROM transactions t
                         WHERE t.from_account_id = acct_ids[k.slot]
                           AND t.created_at >= posted_at - make_interval(mins => p_velocity_minutes)
                           AND t.type = 'transfer' AND t.status IN ('completed', 'pending_review')
                         ORDER BY t.created_at DESC
                         LIMIT p_velocity_count) w)
                   ELSE 0 END ORDER BY k.slot)
    INTO sent_today, recent
    FROM generate_subscripts(acct_ids, 1) AS k(slot);

  SELECT coalesce(array_agg(DISTINCT p.pair), '{}') INTO paid_pairs
    FROM (SELECT sender_slot[k.i] AS s, receiver_slot[k.i] AS r, acct_ids[sender_slot[k.i]]::text || acct_ids[receiver_slot[k.i]]::text AS pair
            FROM generate_series(1, request_count) AS k(i)
           WHERE sender_slot[k.i] IS NOT NULL AND receiver_slot[k.i] IS NOT NULL) p
   WHERE (SELECT true FROM transactions x
           WHERE x.from_account_id = acct_ids[p.s] AND x.to_account_id = acct_ids[p.r]
             AND x.type = 'transfer' AND x.status = 'completed'
           LIMIT 1);

  -- Each transfer in order, against the accounts as the earlier ones left them.
  FOR i IN 1 .. request_count LOOP
    CONTINUE WHEN answered[i];
    s := sender_slot[i];
    r := receiver_slot[i];
    amount := p_amounts[i];
    problem := NULL;
    IF p_keys[i] IS NOT NULL THEN
      IF (p_users[i]::text || ' ' || p_endpoints[i] || ' ' || p_keys[i]) = ANY (seen_keys) THEN
        problem := 'idempotency_in_progress'; detail := 'A request with this Idempotency-Key is still being processed';
      END IF;
      seen_keys := seen_keys || (p_users[i]::text || ' ' || p_endpoints[i] || ' ' || p_keys[i]);
    END IF;
    IF problem IS NOT NULL THEN
      NULL;
    ELSIF s IS NULL THEN
      problem := 'account_not_found'; detail := format('No account %s of yours', p_from[i]);
    ELSIF r IS NULL THEN
      problem := 'account_not_found'; detail := format('No account %s', p_to[i]);
    ELSIF acct_statuses[s] <> 'active' THEN
      problem := 'account_not_active'; detail := format('Account %s is %s', acct_numbers[s], acct_statuses[s]);
    ELSIF acct_statuses[r] <> 'active' THEN
      problem := 'account_not_active'; detail := format('Account %s is %s', acct_numbers[r], acct_statuses[r]);
    ELSIF acct_currencies[s] <> acct_currencies[r] THEN
      problem := 'currency_mismatch'; detail := format('Cannot move %s into a %s account', acct_currencies[s], acct_currencies[r]);
    ELSIF acct_balances[s] - acct_helds[s] < amount THEN
      problem := 'insufficient_funds';
      detail := format('Available %s, needed %s', format_amount(acct_balances[s] - acct_helds[s]), format_amount(amount));
    ELSIF sent_today[s] + amount > acct_limits[s] THEN
      problem := 'daily_limit_exceeded';
      detail := format('Daily limit %s; already sent today %s', format_amount(acct_limits[s]), format_amount(sent_today[s]));
    END IF;
    IF problem IS NOT NULL THEN
      answered[i] := true;
      ord := i; http_status := NULL; replayed := false; body := NULL;
      RETURN NEXT;
      -- A refusal is the key's answer; a key in use by an earlier request of the batch is not this one's to store.
      IF p_keys[i] IS NOT NULL AND problem <> 'idempotency_in_progress' THEN
        key_users := key_users || p_users[i];
        key_endpoints := key_endpoints || p_endpoints[i];
        key_keys := key_keys || p_keys[i];
        key_fingerprints := key_fingerprints || p_fingerprints[i];
        key_answers := key_answers || NULL::jsonb;
        key_problem_codes := key_problem_codes || problem;
        key_problem_details := key_problem_details || detail;
      END IF;
      CONTINUE;
    END IF;

    review := transfer_review_reasons(amount, acct_opened[s], posted_at,
                (acct_ids[s]::text || acct_ids[r]::text) = ANY (paid_pairs), recent[s],
                p_review_threshold, p_new_payee_amount, p_new_account_amount, p_new_account_hours,
                p_velocity_count, p_velocity_minutes);
    passed_count := passed_count + 1;
    passed[passed_count] := i;
    passed_ids[passed_count] := uuid_v7();
    reasons[i] := array_to_string(review, ',');
    statuses[i] := CASE WHEN cardinality(review) = 0 THEN 'completed' ELSE 'pending_review' END;
    answers[passed_count] := json_build_object(
      'id', passed_ids[passed_count], 'transaction_id', passed_ids[passed_count], 'type', 'transfer', 'status', statuses[i],
      'amount', format_amount(amount), 'currency', acct_currencies[s], 'from_account', p_from[i], 'to_account', p_to[i],
      'description', p_descriptions[i], 'created_by', p_users[i], 'created_at', posted_text, 'review_reasons', review,
      'reviewed_by', NULL, 'reviewed_at', NULL, 'review_note', NULL, 'reverses', NULL, 'reversed_by', NULL)::text;
    IF p_keys[i] IS NOT NULL THEN
      key_users := key_users || p_users[i];
      key_endpoints := key_endpoints || p_endpoints[i];
      key_keys := key_keys || p_keys[i];
      key_fingerprints := key_fingerprints || p_fingerprints[i];
      key_answers := key_answers || answers[passed_count]::jsonb;
      key_problem_codes := key_problem_codes || NULL::text;
      key_problem_details := key_problem_details || NULL::text;
    END IF;
    IF statuses[i] = 'completed' THEN
      acct_balances[s] := acct_balances[s] - amount;
      acct_balances[r] := acct_balances[r] + amount;
      paid_pairs := paid_pairs || (acct_ids[s]::text || acct_ids[r]::text);
      held_accounts[passed_count] := NULL;
      held_deltas[passed_count] := 0;
      entry_postings := entry_postings || passed_count || passed_count;
      entry_accounts := entry_accounts || acct_ids[s] || acct_ids[r];
      entry_amounts := entry_amounts || -amount || amount;
    ELSE
      acct_helds[s] := acct_helds[s] + amount;
      held_accounts[passed_count] := acct_ids[s];
      held_deltas[passed_count] := amount;
    END IF;
    sent_today[s] := sent_today[s] + amount;
    recent[s] := recent[s] + 1;
  END LOOP;

  IF passed_count > 0 THEN
    INSERT INTO transactions (id, type, status, amount, currency, from_account_id, to_account_id,
                              description, created_by, review_reasons, created_at)
    SELECT passed_ids[x.n], 'transfer', statuses[x.i], p_amounts[x.i], acct_currencies[sender_slot[x.i]],
           acct_ids[sender_slot[x.i]], acct_ids[receiver_slot[x.i]], p_descriptions[x.i], p_users[x.i],
           string_to_array(reasons[x.i], ','), posted_at
      FROM unnest(passed) WITH ORDINALITY AS x(i, n)
     ORDER BY x.n;

    PERFORM ledger_post(passed_ids, held_accounts, held_deltas, entry_postings, entry_accounts, entry_amounts, posted_at);

    INSERT INTO audit_log (actor_id, actor_role, action, target_type, target_id, ip, request_id, details)
    SELECT p_users[x.i], p_roles[x.i], 'transfer.created', 'transaction', passed_ids[x.n]::text, p_ips[x.i], p_request_ids[x.i],
           jsonb_build_object('from_account', p_from[x.i], 'to_account', p_to[x.i], 'amount', format_amount(p_amounts[x.i]),
                              'currency', acct_currencies[sender_slot[x.i]], 'status', statuses[x.i])
           || CASE WHEN reasons[x.i] = '' THEN '{}'::jsonb ELSE jsonb_build_object('review_reasons', string_to_array(reasons[x.i], ',')) END
      FROM unnest(passed) WITH ORDINALITY AS x(i, n)
     ORDER BY x.n;
  END IF;

  IF key_keys <> '{}' THEN
    PERFORM idempotency_record(key_users, key_endpoints, key_keys, key_fingerprints, 201, key_answers,
                               key_problem_codes, key_problem_details);
  END IF;

  RETURN QUERY SELECT x.i, 201, false, x.answer, NULL::text, NULL::text FROM unnest(passed, answers) AS x(i, answer);
END $$;
