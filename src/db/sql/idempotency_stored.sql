-- The answers stored under the keys of some requests (src/http/idempotency.ts, transfer_batch): one row
-- per request i that carries a key (p_keys[i] not null) and whose key (p_users[i], p_endpoints[i],
-- p_keys[i]) holds an answer, with that answer and the fingerprint of the request that stored it, which
-- the caller compares with its own. A key being written by a transaction that has not committed is not
-- seen: that request's idempotency_record finds it.
--
-- One probe of the primary key per request (LATERAL ... LIMIT 1), by a generic plan made on the
-- connection's first call whatever the table held then: enable_seqscan off keeps that plan an index
-- probe when it is made over a table of a few rows, where a new key would otherwise be looked for in
-- every row; jit off, ledger_post says why (each setting's test: test/plans.test.ts).
CREATE OR REPLACE FUNCTION idempotency_stored(p_users uuid[], p_endpoints text[], p_keys text[])
RETURNS TABLE (ord integer, fingerprint text, response jsonb, transaction_id uuid, problem_code text, problem_detail text)
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET jit = off AS $$
BEGIN
  RETURN QUERY
  SELECT k.i, s.fingerprint, s.response, s.transaction_id, s.problem_code, s.problem_detail
    FROM generate_subscripts(p_keys, 1) AS k(i)
   CROSS JOIN LATERAL (SELECT x.fingerprint, x.response, x.transaction_id, x.problem_code, x.problem_detail
                         FROM idempotency_keys x
                        WHERE x.user_id = p_users[k.i] AND x.endpoint = p_endpoints[k.i] AND x.key = p_keys[k.i]
                        LIMIT 1) s
   WHERE p_keys[k.i] IS NOT NULL;
END $$;
