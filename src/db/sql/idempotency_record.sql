-- Writes each key once, with its answer, in the transaction of the work it answers (the last step of
-- the protocol in src/http/idempotency.ts; transfer_batch's too), in (user, endpoint, key) order so that
-- two transactions writing the same keys queue instead of deadlocking.
--
-- A key that another transaction is writing and has not committed makes this wait until that one ends.
-- If it commits, the key is already stored; if the wait outlasts lock_timeout, the other request is
-- still in progress. Each is an answer the caller acts on, told by SQLSTATE:
--   40001 (serialization_failure)  a key was stored after the caller looked it up: the caller's
--                                  transaction runs again, and finds and replays that answer;
--   IK001                          a request with the key is still being processed (the API's
--                                  idempotency_in_progress). A class of its own: classes starting
--                                  with I to Z are the implementation's, and PostgreSQL uses none
--                                  starting with I.
-- The block that turns the lock timeout into IK001 is a subtransaction: one a call, not one a key.
CREATE OR REPLACE FUNCTION idempotency_record(p_answers idempotency_answer[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  stored_count integer;
BEGIN
  BEGIN
    INSERT INTO idempotency_keys (user_id, endpoint, key, fingerprint, response, transaction_id, problem_code, problem_detail)
    SELECT a.user_id, a.endpoint, a.key, a.fingerprint, a.response, a.transaction_id, a.problem_code, a.problem_detail
      FROM unnest(p_answers) AS a
     ORDER BY a.user_id, a.endpoint, a.key
    ON CONFLICT (user_id, endpoint, key) DO NOTHING;
    GET DIAGNOSTICS stored_count = ROW_COUNT;
  EXCEPTION WHEN lock_not_available THEN
    RAISE EXCEPTION 'a request with this Idempotency-Key is still being processed' USING ERRCODE = 'IK001';
  END;
  IF stored_count < cardinality(p_answers) THEN
    RAISE EXCEPTION 'an Idempotency-Key of this transaction was stored by a concurrent one' USING ERRCODE = 'serialization_failure';
  END IF;
END $$;
