-- Disabling a user ends its sessions in the same statement, whatever code path disables it.
CREATE OR REPLACE TRIGGER users_disable_ends_sessions AFTER UPDATE OF is_active ON users
  FOR EACH ROW WHEN (OLD.is_active AND NOT NEW.is_active) EXECUTE FUNCTION revoke_sessions_of_disabled_user();

-- A new password and a disable move the user to a new credential version, whatever code path writes
-- them; re-enabling does not, so it brings no session back.
CREATE OR REPLACE TRIGGER users_credential_change_bumps_version BEFORE UPDATE OF password_hash, is_active ON users
  FOR EACH ROW WHEN (NEW.password_hash IS DISTINCT FROM OLD.password_hash OR (OLD.is_active AND NOT NEW.is_active))
  EXECUTE FUNCTION bump_credential_version();
