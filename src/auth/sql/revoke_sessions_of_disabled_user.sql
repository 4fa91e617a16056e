-- Ends every session of a user that is being disabled (users_disable_ends_sessions), whatever code path
-- disables it.
CREATE OR REPLACE FUNCTION revoke_sessions_of_disabled_user() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE sessions SET revoked_at = now(), revoked_reason = 'user_disabled' WHERE user_id = NEW.id AND revoked_at IS NULL;
  RETURN NULL;
END $$;
