-- Sessions end for good when the credentials they were opened against change. Revoking the sessions
-- that exist when a password changes or a user is disabled is not enough at READ COMMITTED: a login
-- that read the old password hash (or the user still active) before that change committed opens its
-- session after the revocation has run, which does not see it. So each user carries a credential
-- version, and each session the version its login read in the same row as the hash it verified; a
-- token or refresh token works only while its session's version is its user's. A session opened
-- against credentials that have since changed is dead, however its login and the change interleave.
ALTER TABLE users ADD COLUMN credential_version integer NOT NULL DEFAULT 0;
-- Existing sessions start at the version their users start at, and keep working.
ALTER TABLE sessions ADD COLUMN credential_version integer NOT NULL DEFAULT 0;

-- A new password and a disable bump the version, whatever code path writes them; re-enabling does not,
-- so it brings no session back. A password change keeps its caller's session by moving it to the new
-- version in the same transaction (src/auth/service.ts).
CREATE FUNCTION bump_credential_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.credential_version := OLD.credential_version + 1;
  RETURN NEW;
END $$;
CREATE TRIGGER users_credential_change_bumps_version BEFORE UPDATE OF password_hash, is_active ON users
  FOR EACH ROW WHEN (NEW.password_hash IS DISTINCT FROM OLD.password_hash OR (OLD.is_active AND NOT NEW.is_active))
  EXECUTE FUNCTION bump_credential_version();

-- The token lookup of every request (src/auth/sessions.ts) and of every transfer (transfer_batch, which
-- calls it) refuses a token whose session's credential version is not its user's. CREATE OR REPLACE
-- replaces the SET clauses too, so all of them are stated again (migrations 0011 and 0015 say why).
CREATE OR REPLACE FUNCTION active_access_tokens(p_jtis uuid[])
RETURNS TABLE (jti uuid, user_id uuid, session_id uuid, role text, is_active boolean)
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
SET jit = off AS $$
BEGIN
  RETURN QUERY
  SELECT t.jti, t.user_id, t.session_id, u.role, u.is_active
    FROM access_tokens t
    JOIN sessions s ON s.id = t.session_id
    JOIN users u ON u.id = t.user_id
   WHERE t.jti = ANY (p_jtis) AND t.revoked_at IS NULL AND s.revoked_at IS NULL
     AND s.credential_version = u.credential_version;
END $$;
