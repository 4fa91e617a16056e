import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { record, SYSTEM_ACTOR, type Actor } from '../audit/record.js';
import type { DatabaseHandle } from '../db/connection.js';
import type { Role, UserRow } from '../db/schema.js';
import { withTransaction } from '../db/transaction.js';
import { DomainError, validationError } from '../http/errors.js';
import { adminExists, findUserByEmail, findUserById } from '../users/repository.js';
import { createUser, toUserView, type UserView } from '../users/service.js';
import { passwordProblem, type PasswordHasher } from './passwords.js';
import { InvalidTokenError, type TokenService } from './tokens.js';

export interface TokenResponse {
  access_token: string;
  token_type: 'bearer';
  expires_in: number;
  user: UserView;
}

/** The authenticated caller as every request sees it, re-read from the users table each time. */
export interface AuthenticatedUser {
  id: string;
  role: Role;
  jti: string;
}

/**
 * Login and registration hash passwords, which takes tens of milliseconds of CPU: they run bcrypt
 * outside any database transaction and open one only to write, so PGlite's single session and
 * PostgreSQL's row locks are never held across a hash.
 */
export class AuthService {
  constructor(
    private readonly database: DatabaseHandle,
    private readonly hasher: PasswordHasher,
    private readonly tokens: TokenService,
  ) {}

  async login(meta: Actor, email: string, password: string): Promise<TokenResponse> {
    const user = await findUserByEmail(this.database.db, email);
    const passwordMatches = await this.hasher.verify(password, user?.password_hash);
    if (!user || !passwordMatches || !user.is_active) {
      await withTransaction(this.database, (tx) =>
        record(tx, { ...meta, id: user?.id ?? null, role: user?.role ?? null }, {
          action: 'auth.login_failed',
          targetType: 'user',
          targetId: user?.id ?? null,
          details: { email: email.toLowerCase(), reason: !user ? 'unknown_email' : !user.is_active ? 'disabled' : 'wrong_password' },
        }),
      );
      throw new DomainError('invalid_credentials', 'Email or password is wrong');
    }
    const issued = await this.tokens.issueAccessToken(user.id, user.role);
    await withTransaction(this.database, (tx) =>
      record(tx, { ...meta, id: user.id, role: user.role }, { action: 'auth.login', targetType: 'user', targetId: user.id, details: { jti: issued.jti } }),
    );
    return this.tokenResponse(issued.token, issued.expiresIn, user);
  }

  async register(actor: Actor, input: { name: string; email: string; password: string; role: Role }): Promise<TokenResponse> {
    const problem = passwordProblem(input.password);
    if (problem) throw validationError('password', problem);
    const passwordHash = await this.hasher.hash(input.password);
    const user = await withTransaction(this.database, (tx) =>
      createUser(tx, actor, { name: input.name, email: input.email, passwordHash, role: input.role }),
    );
    const issued = await this.tokens.issueAccessToken(user.id, user.role);
    return this.tokenResponse(issued.token, issued.expiresIn, user);
  }

  /** Verifies the bearer token and re-reads the user, so a role change or a disabled user takes effect at once. */
  async authenticate(token: string): Promise<AuthenticatedUser> {
    let claims;
    try {
      claims = await this.tokens.verifyAccessToken(token);
    } catch (error) {
      if (error instanceof InvalidTokenError) throw new DomainError('unauthorized', 'The access token is not valid');
      throw error;
    }
    const user = await this.database.db
      .selectFrom('users')
      .select(['id', 'role', 'is_active'])
      .where('id', '=', claims.sub)
      .executeTakeFirst();
    if (!user || !user.is_active) throw new DomainError('unauthorized', 'The access token is not valid');
    return { id: user.id, role: user.role, jti: claims.jti };
  }

  async me(userId: string): Promise<UserView> {
    const user = await findUserById(this.database.db, userId);
    if (!user) throw new DomainError('unauthorized', 'The access token is not valid');
    return toUserView(user);
  }

  /**
   * Makes the first admin when none exists. Returns the generated password when it made one, so the
   * caller prints it once; it is never stored anywhere but as a bcrypt hash.
   */
  async bootstrapAdmin(email: string | undefined, password: string | undefined): Promise<{ email: string; generatedPassword?: string } | undefined> {
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

  private tokenResponse(token: string, expiresIn: number, user: UserRow): TokenResponse {
    return { access_token: token, token_type: 'bearer', expires_in: expiresIn, user: toUserView(user) };
  }
}
