-- Moves a user to a new credential version (users_credential_change_bumps_version): each session carries
-- the version its login read with the password hash it verified, and a token works only while the two
-- are equal (active_access_tokens), so no login that checked the old password, however it interleaved
-- with the change, keeps a working session. A password change keeps its caller's session by moving it
-- to the new version in the same transaction (src/auth/service.ts).
CREATE OR REPLACE FUNCTION bump_credential_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.credential_version := OLD.credential_version + 1;
  RETURN NEW;
END $$;
