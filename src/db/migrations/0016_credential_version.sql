-- Sessions end for good when the credentials they were opened against change. Revoking the sessions
-- that exist when a password changes or a user is disabled is not enough at READ COMMITTED: a login
-- that read the old password hash (or the user still active) before that change committed opens its
-- session after the revocation has run, which does not see it. So each user carries a credential
-- version, and each session the version its login read in the same row as the hash it verified; a
-- token or refresh token works only while its session's version is its user's (bump_credential_version
-- and active_access_tokens, src/auth/sql/).
ALTER TABLE users ADD COLUMN credential_version integer NOT NULL DEFAULT 0;
-- Existing sessions start at the version their users start at, and keep working.
ALTER TABLE sessions ADD COLUMN credential_version integer NOT NULL DEFAULT 0;
