-- A session is one login: the family of refresh tokens that rotate from it and the access tokens they
-- were issued with. Revoking a session (logout, reuse of a spent refresh token, password change,
-- disabling the user) stops all of them at once.
CREATE TABLE sessions (
  id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id        uuid NOT NULL REFERENCES users (id),
  created_at     timestamptz(3) NOT NULL DEFAULT now(),
  revoked_at     timestamptz(3),
  revoked_reason text
);
CREATE INDEX sessions_user_idx ON sessions (user_id) WHERE revoked_at IS NULL;

-- Every access token's jti is registered at issue, so a token that was never issued (a forged one
-- signed with a leaked key, say) or was revoked is refused with one primary-key lookup.
CREATE TABLE access_tokens (
  jti        uuid PRIMARY KEY,
  session_id uuid NOT NULL REFERENCES sessions (id),
  user_id    uuid NOT NULL REFERENCES users (id),
  expires_at timestamptz(3) NOT NULL,
  revoked_at timestamptz(3)
);
CREATE INDEX access_tokens_session_idx ON access_tokens (session_id);
CREATE INDEX access_tokens_expires_idx ON access_tokens (expires_at);

-- Refresh tokens are random and stored only as SHA-256 hashes; each may be used once.
CREATE TABLE refresh_tokens (
  token_hash text PRIMARY KEY,
  session_id uuid NOT NULL REFERENCES sessions (id),
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  expires_at timestamptz(3) NOT NULL,
  used_at    timestamptz(3)
);
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);

-- Consecutive failed logins per email, for the brute-force lockout when no Redis is configured.
CREATE TABLE login_failures (
  email        text PRIMARY KEY,
  failures     integer NOT NULL,
  locked_until timestamptz(3),
  updated_at   timestamptz(3) NOT NULL DEFAULT now()
);

-- Disabling a user ends its sessions in the same statement, whatever code path disables it, so that
-- enabling it again does not bring old tokens back to life.
CREATE FUNCTION revoke_sessions_of_disabled_user() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE sessions SET revoked_at = now(), revoked_reason = 'user_disabled' WHERE user_id = NEW.id AND revoked_at IS NULL;
  RETURN NULL;
END $$;
CREATE TRIGGER users_disable_ends_sessions AFTER UPDATE OF is_active ON users
  FOR EACH ROW WHEN (OLD.is_active AND NOT NEW.is_active) EXECUTE FUNCTION revoke_sessions_of_disabled_user();
