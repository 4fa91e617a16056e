-- Stores the answer of a request whose key this transaction claimed (idempotency_claim): its status and
-- response, or its refusal, p_problem_code and p_problem_detail, once the request's work is rolled back
-- to a savepoint taken after the claim (src/http/idempotency.ts). PL/pgSQL rather than SQL: PostgreSQL
-- before 18 plans a SQL function's body on every call.
CREATE OR REPLACE FUNCTION idempotency_store(p_user uuid, p_endpoint text, p_key text, p_status integer, p_response jsonb,
                                  p_problem_code text DEFAULT NULL, p_problem_detail text DEFAULT NULL)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  UPDATE idempotency_keys SET status_code = p_status, response = p_response, problem_code = p_problem_code, problem_detail = p_problem_detail
   WHERE user_id = p_user AND endpoint = p_endpoint AND key = p_key;
END $$;
