-- Claims an idempotency key for a request, or returns what is stored under it. Returns NULL when the
-- key is now this transaction's (it commits with the request's effects and answer); otherwise the
-- stored row, whose fingerprint the caller compares. A concurrent claim of the same key waits on the
-- unique index until the first transaction ends (bounded by lock_timeout).
CREATE OR REPLACE FUNCTION idempotency_claim(p_user uuid, p_endpoint text, p_key text, p_fingerprint text)
RETURNS idempotency_keys LANGUAGE plpgsql AS $$
DECLARE
  stored idempotency_keys;
BEGIN
  -- Again when the row it conflicted with is gone by the time it is read (the purge of expired keys).
  LOOP
    INSERT INTO idempotency_keys (user_id, endpoint, key, fingerprint) VALUES (p_user, p_endpoint, p_key, p_fingerprint)
    ON CONFLICT (user_id, endpoint, key) DO NOTHING;
    EXIT WHEN FOUND;
    SELECT * INTO stored FROM idempotency_keys WHERE user_id = p_user AND endpoint = p_endpoint AND key = p_key;
    IF FOUND THEN
      RETURN stored;
    END IF;
  END LOOP;
  RETURN NULL;
END $$;
