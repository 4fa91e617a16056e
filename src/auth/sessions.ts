import { createHash, randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import type { DatabaseHandle } from '../db/connection.js';
import type { Role, Tx } from '../db/schema.js';

export function hashRefreshToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/**
 * A session lives while `credentialVersion` is its user's (src/auth/sql/bump_credential_version.sql): it must be the version read in
 * the same row as the password hash the login verified, so that a password change or a disable committed
 * after that read ends the session, even one opened after the change.
 */
export async function openSession(tx: Tx, userId: string, credentialVersion: number): Promise<string> {
  const session = await tx
    .insertInto('sessions')
    .values({ user_id: userId, credential_version: credentialVersion, revoked_at: null, revoked_reason: null })
    .returning('id')
    .executeTakeFirstOrThrow();
  return session.id;
}

/**
 * Moves a session to its user's new credential version: the caller's own, on its password change, in
 * the change's transaction. Only a session that was current moves, so one already ended by an earlier
 * change or a disable stays ended.
 */
export async function moveSessionToCredentialVersion(tx: Tx, sessionId: string, from: number, to: number): Promise<void> {
  await tx
    .updateTable('sessions')
    .set({ credential_version: to })
    .where('id', '=', sessionId)
    .where('credential_version', '=', from)
    .execute();
}

export async function registerAccessToken(
  tx: Tx,
  token: { jti: string; sessionId: string; userId: string; expiresInSeconds: number },
): Promise<void> {
  await tx
    .insertInto('access_tokens')
    .values({
      jti: token.jti,
      session_id: token.sessionId,
      user_id: token.userId,
      expires_at: sql<Date>`now() + make_interval(secs => ${token.expiresInSeconds})`,
      revoked_at: null,
    })
    .execute();
}

/** A new random refresh token (256 bits); only its hash is stored. */
export async function issueRefreshToken(tx: Tx, sessionId: string, lifetimeSeconds: number): Promise<string> {
  const token = randomBytes(32).toString('base64url');
  await tx
    .insertInto('refresh_tokens')
    .values({
      token_hash: hashRefreshToken(token),
      session_id: sessionId,
      expires_at: sql<Date>`now() + make_interval(secs => ${lifetimeSeconds})`,
      used_at: null,
    })
    .execute();
  return token;
}

export interface ActiveAccessToken {
  jti: string;
  user_id: string;
  session_id: string;
  role: Role;
  is_active: boolean;
}

/**
 * The lookup every authenticated request needs: each token's registration, its session and its user,
 * by primary keys, for the tokens (of concurrent requests) that are neither revoked nor in a revoked
 * session, nor in one opened against credentials that have changed since (src/auth/sql/bump_credential_version.sql). A function
 * (src/auth/sql/active_access_tokens.sql), so that PostgreSQL plans the join once per connection, called as a prepared
 * statement, so that the call itself is parsed and planned once per connection too.
 */
export async function findActiveAccessTokens(database: DatabaseHandle, jtis: readonly string[]): Promise<ActiveAccessToken[]> {
  return database.withSession((session) =>
    session.query<ActiveAccessToken>('SELECT * FROM active_access_tokens($1::uuid[])', [[...jtis]], { prepared: true }),
  );
}

export type RefreshOutcome =
  { kind: 'ok'; sessionId: string; userId: string } | { kind: 'unknown' } | { kind: 'reused'; sessionId: string };

/**
 * Spends a refresh token. The UPDATE ... WHERE used_at IS NULL makes it single-use even when two
 * requests present it at once: exactly one of them flips used_at. A token of a session whose credential
 * version is no longer its user's is not spent, and is answered as unknown.
 */
export async function spendRefreshToken(tx: Tx, token: string): Promise<RefreshOutcome> {
  const hash = hashRefreshToken(token);
  const spent = await tx
    .updateTable('refresh_tokens as r')
    .from(['sessions as s', 'users as u'])
    .set({ used_at: sql`now()` })
    .whereRef('s.id', '=', 'r.session_id')
    .whereRef('u.id', '=', 's.user_id')
    .whereRef('u.credential_version', '=', 's.credential_version')
    .where('r.token_hash', '=', hash)
    .where('r.used_at', 'is', null)
    .where('r.expires_at', '>', sql<Date>`now()`)
    .where('s.revoked_at', 'is', null)
    .returning(['r.session_id', 's.user_id'])
    .executeTakeFirst();
  if (spent) return { kind: 'ok', sessionId: spent.session_id, userId: spent.user_id };
  const known = await tx.selectFrom('refresh_tokens').select(['session_id', 'used_at']).where('token_hash', '=', hash).executeTakeFirst();
  return known?.used_at ? { kind: 'reused', sessionId: known.session_id } : { kind: 'unknown' };
}

export async function revokeSession(tx: Tx, sessionId: string, reason: string): Promise<void> {
  await tx
    .updateTable('sessions')
    .set({ revoked_at: sql`now()`, revoked_reason: reason })
    .where('id', '=', sessionId)
    .where('revoked_at', 'is', null)
    .execute();
}

/** Revokes every session of a user, but the one given (the caller's own, on a password change). */
export async function revokeUserSessions(tx: Tx, userId: string, reason: string, exceptSessionId?: string): Promise<number> {
  let query = tx
    .updateTable('sessions')
    .set({ revoked_at: sql`now()`, revoked_reason: reason })
    .where('user_id', '=', userId)
    .where('revoked_at', 'is', null);
  if (exceptSessionId) query = query.where('id', '<>', exceptSessionId);
  const result = await query.executeTakeFirst();
  return Number(result.numUpdatedRows);
}

export async function revokeAccessToken(tx: Tx, jti: string): Promise<void> {
  await tx
    .updateTable('access_tokens')
    .set({ revoked_at: sql`now()` })
    .where('jti', '=', jti)
    .execute();
}
