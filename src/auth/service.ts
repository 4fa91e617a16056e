import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { record, SYSTEM_ACTOR, type Actor } from '../audit/record.js';
import { BatchQueue } from '../db/batch-queue.js';
import type { DatabaseHandle } from '../db/connection.js';
import type { Role, Tx, UserRow } from '../db/schema.js';
import { withTransaction } from '../db/transaction.js';
import { DomainError, validationError } from '../errors.js';
import { adminExists, createUser, findUserByEmail, findUserById, toUserView, type UserView } from '../users/service.js';
import type { LoginThrottle } from './lockout.js';
import { passwordProblem, type PasswordHasher } from './passwords.js';
import {
  findActiveAccessTokens,
  type ActiveAccessToken,
  issueRefreshToken,
  moveSessionToCredentialVersion,
  openSession,
  registerAccessToken,
  revokeAccessToken,
  revokeSession,
  revokeUserSessions,
  spendRefreshToken,
} from './sessions.js';
import { InvalidTokenError, type TokenService } from './tokens.js';

export interface TokenResponse {
  access_token: string;
  token_type: 'bearer';
  expires_in: number;
  refresh_token?: string;
  user: UserView;
}

/** What a verified access token says of its holder: signature, expiry and claims checked, nothing looked up yet. */
export interface TokenHolder {
  id: string;
  role: Role;
  jti: string;
}

/** The authenticated caller as every request sees it: role and state re-read from the database each time. */
export interface AuthenticatedUser extends TokenHolder {
  sessionId: string;
}

const UNAUTHORIZED = 'The access token is not valid';

/**
 * Login and registration hash passwords, which takes tens of milliseconds of CPU: bcrypt runs outside
 * any database transaction, which opens only to write, so PGlite's single session and PostgreSQL's row
 * locks are never held across a hash.
 */
export class AuthService {
  /**
   * Every authenticated request reads its token's registration: the lookups of concurrent requests are
   * made together, in one query while others are under way, instead of a query and a commit each.
   */
  private readonly tokenLookups: BatchQueue<string, ActiveAccessToken | undefined>;

  constructor(
    private readonly database: DatabaseHandle,
    private readonly hasher: PasswordHasher,
    private readonly tokens: TokenService,
    private readonly throttle: LoginThrottle,
    private readonly refreshLifetimeSeconds: number,
  ) {
    this.tokenLookups = new BatchQueue({
      run: async (jtis) => {
        const found = new Map((await findActiveAccessTokens(database, jtis)).map((token) => [token.jti, token]));
        return jtis.map((jti) => ({ ok: true, value: found.get(jti.toLowerCase()) }));
      },
      maxBatch: 64,
      concurrency: 2,
      startNextFirst: database.engine === 'postgres',
    });
  }

  async login(meta: Actor, rawEmail: string, password: string): Promise<TokenResponse> {
    const email = rawEmail.toLowerCase();
    // Counted before the password is checked, so that concurrent attempts count too: of a burst for one
    // email, no more than LOGIN_MAX_FAILURES reach the hash.
    const attempt = await this.throttle.reserveAttempt(email);
    if (!attempt.allowed) {
      await withTransaction(this.database, (tx) =>
        record(tx, meta, {
          action: 'auth.login_locked',
          targetType: 'email',
          targetId: email,
          details: { retry_after_seconds: attempt.retryAfterSeconds },
        }),
      );
      throw new DomainError('too_many_attempts', 'Too many failed logins for this email; try again later', {
        retryAfterSeconds: attempt.retryAfterSeconds,
      });
    }
    // One row read: the session is stamped with the credential version read with the hash verified here.
    const user = await findUserByEmail(this.database.db, email);
    // Always one bcrypt comparison (against a dummy hash for an unknown email): every refusal takes as long.
    const passwordMatches = await this.hasher.verify(password, user?.password_hash);
    if (!user || !passwordMatches || !user.is_active) {
      await withTransaction(this.database, (tx) =>
        record(
          tx,
          { ...meta, id: user?.id ?? null, role: user?.role ?? null },
          {
            action: 'auth.login_failed',
            targetType: 'user',
            targetId: user?.id ?? null,
            details: {
              email,
              reason: !user ? 'unknown_email' : !passwordMatches ? 'wrong_password' : 'disabled',
              ...(attempt.lockoutSeconds ? { locked_for_seconds: attempt.lockoutSeconds } : {}),
            },
          },
        ),
      );
      throw new DomainError('invalid_credentials', 'Email or password is wrong');
    }
    await this.throttle.reset(email);
    return withTransaction(this.database, async (tx) => {
      const response = await this.startSession(tx, user, true);
      await record(tx, { ...meta, id: user.id, role: user.role }, { action: 'auth.login', targetType: 'user', targetId: user.id });
      return response;
    });
  }

  async register(actor: Actor, input: { name: string; email: string; password: string; role: Role }): Promise<TokenResponse> {
    const problem = passwordProblem(input.password);
    if (problem) throw validationError('password', problem);
    const passwordHash = await this.hasher.hash(input.password);
    return withTransaction(this.database, async (tx) => {
      const user = await createUser(tx, actor, { name: input.name, email: input.email, passwordHash, role: input.role });
      return this.startSession(tx, user, false);
    });
  }

  /**
   * Rotates a refresh token: the presented one is spent and a new pair issued in the same session. A
   * spent token presented again means it was stolen or replayed: the whole session is revoked.
   */
  async refresh(meta: Actor, refreshToken: string): Promise<TokenResponse> {
    const outcome = await withTransaction(this.database, async (tx) => {
      const spent = await spendRefreshToken(tx, refreshToken);
      if (spent.kind === 'reused') {
        await revokeSession(tx, spent.sessionId, 'refresh_token_reused');
        await record(tx, meta, { action: 'auth.refresh_reused', targetType: 'session', targetId: spent.sessionId });
        return undefined;
      }
      if (spent.kind === 'unknown') return undefined;
      const user = await findUserById(tx, spent.userId);
      if (!user?.is_active) return undefined;
      const response = await this.issueTokens(tx, user, spent.sessionId, true);
      await record(
        tx,
        { ...meta, id: user.id, role: user.role },
        { action: 'auth.refreshed', targetType: 'session', targetId: spent.sessionId },
      );
      return response;
    });
    // The revocation above must commit, so the refusal is thrown only after the transaction.
    if (!outcome) throw new DomainError('unauthorized', 'The refresh token is not valid');
    return outcome;
  }

  /** Ends the caller's session: its refresh tokens and every access token issued in it, this one included. */
  async logout(actor: Actor, caller: AuthenticatedUser): Promise<void> {
    await withTransaction(this.database, async (tx) => {
      await revokeAccessToken(tx, caller.jti);
      await revokeSession(tx, caller.sessionId, 'logout');
      await record(tx, actor, { action: 'auth.logout', targetType: 'session', targetId: caller.sessionId });
    });
  }

  async changePassword(actor: Actor, caller: AuthenticatedUser, currentPassword: string, newPassword: string): Promise<void> {
    const problem = passwordProblem(newPassword);
    if (problem) throw validationError('new_password', problem);
    const user = await findUserById(this.database.db, caller.id);
    const wrongPassword = () => new DomainError('invalid_credentials', 'The current password is wrong');
    if (!user || !(await this.hasher.verify(currentPassword, user.password_hash))) throw wrongPassword();
    const passwordHash = await this.hasher.hash(newPassword);
    await withTransaction(this.database, async (tx) => {
      // Only if the password verified above is still the user's: a change or a disable committed since
      // has bumped the credential version (a trigger: src/auth/sql/triggers.sql), as this update does.
      const changed = await tx
        .updateTable('users')
        .set({ password_hash: passwordHash, updated_at: sql`now()` })
        .where('id', '=', caller.id)
        .where('credential_version', '=', user.credential_version)
        .returning('credential_version')
        .executeTakeFirst();
      if (!changed) throw wrongPassword();
      // Every session opened against the old password ends, logins still in flight included; the caller's stays.
      await moveSessionToCredentialVersion(tx, caller.sessionId, user.credential_version, changed.credential_version);
      // Revoked too, so that each says why it ended.
      const revoked = await revokeUserSessions(tx, caller.id, 'password_changed', caller.sessionId);
      await record(tx, actor, {
        action: 'auth.password_changed',
        targetType: 'user',
        targetId: caller.id,
        details: { sessions_revoked: revoked },
      });
    });
  }

  /**
   * Verifies the bearer token, then one lookup by primary key: the jti was issued and is not revoked,
   * its session is alive, and the user is active, with its current role.
   */
  async authenticate(token: string): Promise<AuthenticatedUser> {
    const holder = await this.verifyToken(token);
    const active = await this.tokenLookups.submit(holder.jti);
    if (!active || active.user_id !== holder.id || !active.is_active) throw new DomainError('unauthorized', UNAUTHORIZED);
    return { id: active.user_id, role: active.role, jti: holder.jti, sessionId: active.session_id };
  }

  /**
   * The token's signature, algorithm, expiry and claims, without the lookup: for a route whose own
   * statement checks, with its work, what authenticate looks up (the transfer: transfer_batch).
   */
  async verifyToken(token: string): Promise<TokenHolder> {
    let claims;
    try {
      claims = await this.tokens.verifyAccessToken(token);
    } catch (error) {
      if (error instanceof InvalidTokenError) throw new DomainError('unauthorized', error.message);
      throw error;
    }
    return { id: claims.sub, role: claims.role, jti: claims.jti };
  }

  async me(userId: string): Promise<UserView> {
    const user = await findUserById(this.database.db, userId);
    if (!user) throw new DomainError('unauthorized', UNAUTHORIZED);
    return toUserView(user);
  }

  /**
   * Makes the first admin when none exists. Returns the generated password when it made one, so the
   * caller prints it once; it is kept nowhere but as a bcrypt hash.
   */
  async bootstrapAdmin(
    email: string | undefined,
    password: string | undefined,
  ): Promise<{ email: string; generatedPassword?: string } | undefined> {
    if (await adminExists(this.database.db)) return undefined;
    const adminEmail = email ?? 'admin@bank.local';
    const generatedPassword = password === undefined ? randomBytes(18).toString('base64url') : undefined;
    const passwordHash = await this.hasher.hash(password ?? generatedPassword!);
    const created = await withTransaction(this.database, async (tx) => {
      // Instances starting together: the first one creates the admin, the others find it.
      await sql`SELECT pg_advisory_xact_lock(7311902118)`.execute(tx);
      if (await adminExists(tx)) return false;
      await createUser(tx, SYSTEM_ACTOR, { name: 'Administrator', email: adminEmail, passwordHash, role: 'admin' });
      return true;
    });
    return created ? { email: adminEmail, ...(generatedPassword ? { generatedPassword } : {}) } : undefined;
  }

  private async startSession(tx: Tx, user: UserRow, withRefreshToken: boolean): Promise<TokenResponse> {
    return this.issueTokens(tx, user, await openSession(tx, user.id, user.credential_version), withRefreshToken);
  }

  private async issueTokens(tx: Tx, user: UserRow, sessionId: string, withRefreshToken: boolean): Promise<TokenResponse> {
    const issued = await this.tokens.issueAccessToken(user.id, user.role);
    await registerAccessToken(tx, { jti: issued.jti, sessionId, userId: user.id, expiresInSeconds: issued.expiresIn });
    const refreshToken = withRefreshToken ? await issueRefreshToken(tx, sessionId, this.refreshLifetimeSeconds) : undefined;
    return {
      access_token: issued.token,
      token_type: 'bearer',
      expires_in: issued.expiresIn,
      ...(refreshToken ? { refresh_token: refreshToken } : {}),
      user: toUserView(user),
    };
  }
}
