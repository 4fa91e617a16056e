-- The token lookup of every authenticated request (src/auth/sessions.ts) and of every transfer
-- (transfer_batch): each token's registration, its session and its user, for the tokens that are
-- neither revoked nor in a revoked session nor in a session of an older credential version. PL/pgSQL,
-- so that the three-table join is planned once per connection instead of on every call (pgbench, one
-- client, three tokens a call: 0.18 ms a lookup as a query, 0.12 as this function).
--
-- One probe per token (LATERAL ... LIMIT 1): the token by its key, then its session and its user by
-- theirs; over all the tokens at once (jti = ANY) the planner may walk every token of every session
-- instead. The plan is generic, made on the connection's first call whatever the tables held then, and
-- kept as they grow: enable_seqscan off keeps each probe an index probe when that plan is made over
-- tables of a few rows; jit off, ledger_post says why (each setting's test: test/plans.test.ts).
CREATE OR REPLACE FUNCTION active_access_tokens(p_jtis uuid[])
RETURNS TABLE (jti uuid, user_id uuid, session_id uuid, role text, is_active boolean)
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET jit = off AS $$
BEGIN
  RETURN QUERY
  SELECT x.jti, x.user_id, x.session_id, x.role, x.is_active
    FROM unnest(p_jtis) AS k(jti)
   CROSS JOIN LATERAL (SELECT t.jti, t.user_id, t.session_id, u.role, u.is_active
                         FROM access_tokens t
                         JOIN sessions s ON s.id = t.session_id
                         JOIN users u ON u.id = t.user_id
                        WHERE t.jti = k.jti AND t.revoked_at IS NULL AND s.revoked_at IS NULL
                          AND s.credential_version = u.credential_version
                        LIMIT 1) x;
END $$;
