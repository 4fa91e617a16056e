-- Stores the answers of requests that carried an Idempotency-Key, in the transaction of the work they
-- answer, in (user, endpoint, key) order: key i with the answer p_responses[i] (of status p_status),
-- or, when p_problem_codes[i] is not null, with that refusal and its detail p_problem_details[i]. A
-- key that a concurrent transaction is writing makes this wait until it ends (lock_timeout bounds the
-- wait: the service answers 409 idempotency_in_progress); a key that is already stored means a request
-- with it committed after this transaction's snapshot read the keys, and the transaction must run
-- again to replay it: serialization_failure (40001).
CREATE OR REPLACE FUNCTION idempotency_record(p_users uuid[], p_endpoints text[], p_keys text[], p_fingerprints text[], p_status integer,
                                   p_responses jsonb[], p_problem_codes text[], p_problem_details text[])
RETURNS void LANGUAGE plpgsql SET jit = off AS $$
DECLARE
  stored_count integer;
BEGIN
  INSERT INTO idempotency_keys (user_id, endpoint, key, fingerprint, status_code, response, problem_code, problem_detail)
  SELECT k.user_id, k.endpoint, k.key, k.fingerprint, CASE WHEN k.problem_code IS NULL THEN p_status END, k.response,
         k.problem_code, k.problem_detail
    FROM unnest(p_users, p_endpoints, p_keys, p_fingerprints, p_responses, p_problem_codes, p_problem_details)
         AS k(user_id, endpoint, key, fingerprint, response, problem_code, problem_detail)
   ORDER BY k.user_id, k.endpoint, k.key
  ON CONFLICT (user_id, endpoint, key) DO NOTHING;
  GET DIAGNOSTICS stored_count = ROW_COUNT;
  IF stored_count < cardinality(p_keys) THEN
    RAISE EXCEPTION 'an Idempotency-Key of this transaction was stored by a concurrent one' USING ERRCODE = 'serialization_failure';
  END IF;
END $$;
