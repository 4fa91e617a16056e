import { randomUUID } from 'node:crypto';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { decodeJwt, SignJWT, type JWTPayload } from 'jose';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { ADMIN_EMAIL, ADMIN_PASSWORD, TEST_ENV, testApp, type Response, type TestApp } from './helpers/app.js';

const KEY = new TextEncoder().encode(TEST_ENV.JWT_SECRET);
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
// What Swagger UI's Authorize sends for a public client: Basic base64(":"), empty id and secret.
const SWAGGER_BASIC = { authorization: `Basic ${Buffer.from(':').toString('base64')}` };

/** Every response the app gives in this file, so one test can check them all for secrets. */
function recordResponses(app: FastifyInstance): LightMyRequestResponse[] {
  const seen: LightMyRequestResponse[] = [];
  const inject = app.inject.bind(app);
  app.inject = (async (options: InjectOptions | string) => {
    const response = await inject(options as never);
    seen.push(response);
    return response;
  }) as FastifyInstance['inject'];
  return seen;
}

function base64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

/** Signs claims with the app's own secret, so only the property under test makes a token invalid. */
function sign(claims: JWTPayload, alg = 'HS256'): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg, typ: 'JWT' }).sign(KEY);
}

function expectProblem(response: Response, status: number, code: string): void {
  expect(response.statusCode, response.body).toBe(status);
  expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(response.data).toMatchObject({ status, code, type: expect.any(String), title: expect.any(String), detail: expect.any(String) });
}

function expectUnauthorized(response: Response): void {
  expectProblem(response, 401, 'unauthorized');
  expect(response.headers['www-authenticate']).toBe('Bearer');
}

describe('auth', () => {
  let bank: TestApp;
  let responses: LightMyRequestResponse[];
  const form = (fields: Record<string, string>, headers: Record<string, string> = {}) =>
    bank.anonymous.post('/auth/login', new URLSearchParams(fields).toString(), { ...FORM, ...headers });

  beforeAll(async () => {
    bank = await testApp();
    responses = recordResponses(bank.app);
  });

  describe('POST /auth/login', () => {
    it('logs in with a JSON body and answers a bearer token and the user', async () => {
      const response = await bank.anonymous.post('/auth/login', { email: ADMIN_EMAIL, password: ADMIN_PASSWORD });
      expect(response.statusCode).toBe(200);
      expect(response.data).toMatchObject({
        access_token: expect.any(String),
        token_type: 'bearer',
        expires_in: 3600,
        refresh_token: expect.any(String),
      });
      expect(response.data.user).toEqual({
        id: expect.any(String),
        name: 'Administrator',
        email: ADMIN_EMAIL,
        role: 'admin',
        is_active: true,
        created_at: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/),
      });
      const me = await bank.anonymous.get('/auth/me', bearer(response.data.access_token));
      expect(me.statusCode).toBe(200);
      expect(me.data.email).toBe(ADMIN_EMAIL);
    });

    it('compares the email case-insensitively', async () => {
      const customer = await bank.customer();
      const response = await bank.anonymous.post('/auth/login', { email: customer.user.email.toUpperCase(), password: customer.password });
      expect(response.statusCode).toBe(200);
      expect(response.data.user.id).toBe(customer.user.id);
    });

    it('accepts the OAuth2 password form exactly as Swagger UI sends it', async () => {
      const customer = await bank.customer();
      const response = await form(
        { username: customer.user.email, password: customer.password, grant_type: 'password', scope: '', client_id: '', client_secret: '' },
        SWAGGER_BASIC,
      );
      expect(response.statusCode, response.body).toBe(200);
      expect(response.data).toMatchObject({ token_type: 'bearer', user: { id: customer.user.id, role: 'customer' } });
      const me = await bank.anonymous.get('/auth/me', bearer(response.data.access_token));
      expect(me.data.id).toBe(customer.user.id);
    });

    it('accepts the form with only username and password', async () => {
      const customer = await bank.customer();
      const response = await form({ username: customer.user.email, password: customer.password });
      expect(response.statusCode, response.body).toBe(200);
      expect(response.data.user.id).toBe(customer.user.id);
    });

    it('answers the same 401 invalid_credentials for an unknown email, a wrong password and a disabled user', async () => {
      const customer = await bank.customer();
      const unknown = await bank.anonymous.post('/auth/login', { email: 'nobody@bank.test', password: 'whatever-password' });
      const wrong = await bank.anonymous.post('/auth/login', { email: customer.user.email, password: 'wrong-password' });
      const wrongForm = await form({ username: customer.user.email, password: 'wrong-password', grant_type: 'password' }, SWAGGER_BASIC);

      const disabled = await bank.customer();
      // PATCH /users/{id} is not there yet; disabling the row is what it will do.
      await bank.database.handle.db.updateTable('users').set({ is_active: false }).where('id', '=', disabled.user.id).execute();
      const disabledLogin = await bank.anonymous.post('/auth/login', { email: disabled.user.email, password: disabled.password });

      for (const response of [unknown, wrong, wrongForm, disabledLogin]) expectProblem(response, 401, 'invalid_credentials');
      // One answer for all three, so a caller cannot tell which emails exist or are disabled.
      expect(new Set([unknown, wrong, disabledLogin].map((r) => JSON.stringify({ ...r.data })))).toHaveProperty('size', 1);
    });

    it('refuses a disabled user’s existing token at once', async () => {
      const customer = await bank.customer();
      expect((await customer.get('/auth/me')).statusCode).toBe(200);
      await bank.database.handle.db.updateTable('users').set({ is_active: false }).where('id', '=', customer.user.id).execute();
      expectUnauthorized(await customer.get('/auth/me'));
    });

    it('answers 422 for missing fields, a malformed email or an unknown field', async () => {
      const empty = await bank.anonymous.post('/auth/login', {});
      expectProblem(empty, 422, 'validation_error');
      expect(empty.data.errors.map((e: { field: string }) => e.field).sort()).toEqual(['email', 'password']);

      const noPassword = await bank.anonymous.post('/auth/login', { email: ADMIN_EMAIL });
      expectProblem(noPassword, 422, 'validation_error');
      expect(noPassword.data.errors).toContainEqual(expect.objectContaining({ field: 'password' }));

      expectProblem(await bank.anonymous.post('/auth/login', { email: 'not-an-email', password: 'password-1' }), 422, 'validation_error');

      const extra = await bank.anonymous.post('/auth/login', { email: ADMIN_EMAIL, password: ADMIN_PASSWORD, remember: true });
      expectProblem(extra, 422, 'validation_error');
      expect(extra.data.errors).toContainEqual(expect.objectContaining({ field: 'remember' }));

      const formWithoutPassword = await form({ username: ADMIN_EMAIL, grant_type: 'password' });
      expectProblem(formWithoutPassword, 422, 'validation_error');
      expect(formWithoutPassword.data.errors).toContainEqual(expect.objectContaining({ field: 'password' }));
    });

    it('answers 415 problem+json for a body type it does not read, 422 for an empty JSON body, 400 for broken JSON', async () => {
      const response = await bank.anonymous.post('/auth/login', '<login/>', { 'content-type': 'application/xml' });
      expectProblem(response, 415, 'unsupported_media_type');
      // An empty body is no body: the fields it lacks are named.
      expectProblem(await bank.anonymous.post('/auth/login', '', { 'content-type': 'application/json' }), 422, 'validation_error');
      expectProblem(await bank.anonymous.post('/auth/login', '{"email":', { 'content-type': 'application/json' }), 400, 'bad_request');
    });

    it('records auth.login and auth.login_failed in the audit log, never with the password', async () => {
      const customer = await bank.customer();
      const ok = await bank.anonymous.post(
        '/auth/login',
        { email: customer.user.email, password: customer.password },
        { 'x-request-id': 'login-ok-1' },
      );
      expect(ok.statusCode).toBe(200);
      const failed = await bank.anonymous.post(
        '/auth/login',
        { email: customer.user.email, password: 'bad-guess-123' },
        { 'x-request-id': 'login-bad-1' },
      );
      expect(failed.statusCode).toBe(401);
      const unknown = await bank.anonymous.post(
        '/auth/login',
        { email: 'ghost@bank.test', password: 'bad-guess-456' },
        { 'x-request-id': 'login-bad-2' },
      );
      expect(unknown.statusCode).toBe(401);

      const entries = await bank.database.handle.db
        .selectFrom('audit_log')
        .selectAll()
        .where('request_id', 'in', ['login-ok-1', 'login-bad-1', 'login-bad-2'])
        .execute();
      const byRequest = new Map(entries.map((entry) => [entry.request_id, entry]));
      expect(byRequest.get('login-ok-1')).toMatchObject({
        action: 'auth.login',
        actor_id: customer.user.id,
        target_type: 'user',
        target_id: customer.user.id,
      });
      expect(byRequest.get('login-bad-1')).toMatchObject({ action: 'auth.login_failed', target_id: customer.user.id });
      expect(byRequest.get('login-bad-2')).toMatchObject({ action: 'auth.login_failed', actor_id: null });
      for (const entry of entries) {
        const details = JSON.stringify(entry.details);
        expect(details).not.toContain(customer.password);
        expect(details).not.toContain('bad-guess');
      }
    });
  });

  describe('POST /auth/register', () => {
    it('registers a customer by default and answers its token and user', async () => {
      const response = await bank.admin.post('/auth/register', { name: 'Carol', email: 'Carol@Example.com', password: 'carol-password' });
      expect(response.statusCode).toBe(201);
      expect(response.data).toMatchObject({ access_token: expect.any(String), token_type: 'bearer', expires_in: 3600 });
      expect(response.data.user).toEqual({
        id: expect.any(String),
        name: 'Carol',
        email: 'carol@example.com',
        role: 'customer',
        is_active: true,
        created_at: expect.any(String),
      });
      const me = await bank.anonymous.get('/auth/me', bearer(response.data.access_token));
      expect(me.data).toEqual(response.data.user);
      const login = await bank.anonymous.post('/auth/login', { email: 'carol@example.com', password: 'carol-password' });
      expect(login.statusCode).toBe(200);
    });

    it.each(['auditor', 'admin', 'customer'] as const)('registers a user with role %s', async (role) => {
      const response = await bank.admin.post('/auth/register', {
        name: `A ${role}`,
        email: `${role}-explicit@bank.test`,
        password: 'password-123',
        role,
      });
      expect(response.statusCode).toBe(201);
      expect(response.data.user.role).toBe(role);
      const me = await bank.anonymous.get('/auth/me', bearer(response.data.access_token));
      expect(me.data.role).toBe(role);
    });

    it('records user.created in the audit log with the admin as actor', async () => {
      const admin = (await bank.admin.get('/auth/me')).data;
      const response = await bank.admin.post('/auth/register', { name: 'Audited', email: 'audited@bank.test', password: 'password-123' });
      const entry = await bank.database.handle.db
        .selectFrom('audit_log')
        .selectAll()
        .where('action', '=', 'user.created')
        .where('target_id', '=', response.data.user.id)
        .executeTakeFirstOrThrow();
      expect(entry).toMatchObject({ actor_id: admin.id, actor_role: 'admin', target_type: 'user' });
    });

    it('is for admins only: 403 for a customer or an auditor, 401 without a valid token', async () => {
      const body = { name: 'Mallory', email: 'mallory@bank.test', password: 'password-123' };
      const customer = await bank.customer();
      const auditor = await bank.user('auditor');
      expectProblem(await customer.post('/auth/register', body), 403, 'forbidden');
      expectProblem(await auditor.post('/auth/register', body), 403, 'forbidden');
      expectUnauthorized(await bank.anonymous.post('/auth/register', body));
      expectUnauthorized(await bank.anonymous.post('/auth/register', body, bearer('not.a.token')));
      expectUnauthorized(await bank.anonymous.post('/auth/register', body, { authorization: 'Token abc' }));
      // An anonymous caller learns nothing from validation: 401 comes before the body is looked at.
      expectUnauthorized(await bank.anonymous.post('/auth/register', { nonsense: true }));
      const exists = await bank.database.handle.db
        .selectFrom('users')
        .select('id')
        .where('email', '=', 'mallory@bank.test')
        .executeTakeFirst();
      expect(exists).toBeUndefined();
    });

    it('answers 409 email_taken for an existing email, whatever its case', async () => {
      const first = await bank.admin.post('/auth/register', { name: 'Dup', email: 'dup@bank.test', password: 'password-123' });
      expect(first.statusCode).toBe(201);
      expectProblem(
        await bank.admin.post('/auth/register', { name: 'Dup', email: 'dup@bank.test', password: 'password-123' }),
        409,
        'email_taken',
      );
      expectProblem(
        await bank.admin.post('/auth/register', { name: 'Dup', email: 'DUP@Bank.Test', password: 'password-123' }),
        409,
        'email_taken',
      );
      expectProblem(
        await bank.admin.post('/auth/register', { name: 'Admin', email: ADMIN_EMAIL.toUpperCase(), password: 'password-123' }),
        409,
        'email_taken',
      );
    });

    it('takes passwords of 8 to 72 bytes, counting UTF-8 bytes, not characters', async () => {
      const attempt = (n: number, password: string) =>
        bank.admin.post('/auth/register', { name: 'Pw', email: `pw${n}@bank.test`, password });

      const seven = await attempt(1, 'a'.repeat(7));
      expectProblem(seven, 422, 'validation_error');
      expect(seven.data.errors).toContainEqual(expect.objectContaining({ field: 'password' }));
      expectProblem(await attempt(2, 'a'.repeat(73)), 422, 'validation_error');
      expect((await attempt(3, 'a'.repeat(8))).statusCode).toBe(201);

      const seventyTwo = await attempt(4, 'a'.repeat(72));
      expect(seventyTwo.statusCode).toBe(201);
      expect((await bank.anonymous.post('/auth/login', { email: 'pw4@bank.test', password: 'a'.repeat(72) })).statusCode).toBe(200);

      // 'é' is 2 bytes: 36 of them are 72 bytes (accepted), 37 are 74 bytes (refused though only 37 characters).
      expect((await attempt(5, 'é'.repeat(36))).statusCode).toBe(201);
      expectProblem(await attempt(6, 'é'.repeat(37)), 422, 'validation_error');
      // '€' is 3 bytes: three of them are 9 bytes, enough though only 3 characters.
      expect((await attempt(7, '€€€')).statusCode).toBe(201);
      expect((await bank.anonymous.post('/auth/login', { email: 'pw7@bank.test', password: '€€€' })).statusCode).toBe(200);
      // '😀' is 4 bytes: 18 are exactly 72 bytes; one more character is 76 bytes.
      expect((await attempt(8, '😀'.repeat(18))).statusCode).toBe(201);
      expectProblem(await attempt(9, '😀'.repeat(18) + 'a'), 422, 'validation_error');

      const refused = await bank.database.handle.db
        .selectFrom('users')
        .select('email')
        .where('email', 'in', ['pw1@bank.test', 'pw2@bank.test', 'pw6@bank.test', 'pw9@bank.test'])
        .execute();
      expect(refused).toEqual([]);
    });

    it('answers 422 naming an unknown field, and for a bad name, email or role', async () => {
      const unknown = await bank.admin.post('/auth/register', {
        name: 'X',
        email: 'x1@bank.test',
        password: 'password-123',
        is_admin: true,
      });
      expectProblem(unknown, 422, 'validation_error');
      expect(unknown.data.errors).toContainEqual(expect.objectContaining({ field: 'is_admin' }));

      const missing = await bank.admin.post('/auth/register', { email: 'x2@bank.test', password: 'password-123' });
      expectProblem(missing, 422, 'validation_error');
      expect(missing.data.errors).toContainEqual(expect.objectContaining({ field: 'name' }));

      expectProblem(
        await bank.admin.post('/auth/register', { name: '', email: 'x3@bank.test', password: 'password-123' }),
        422,
        'validation_error',
      );
      expectProblem(
        await bank.admin.post('/auth/register', { name: 'X', email: 'not-an-email', password: 'password-123' }),
        422,
        'validation_error',
      );
      const role = await bank.admin.post('/auth/register', {
        name: 'X',
        email: 'x4@bank.test',
        password: 'password-123',
        role: 'superuser',
      });
      expectProblem(role, 422, 'validation_error');
      expect(role.data.errors).toContainEqual(expect.objectContaining({ field: 'role' }));
      expectProblem(
        await bank.admin.post('/auth/register', { name: 'X', email: 'x5@bank.test', password: 12345678 }),
        422,
        'validation_error',
      );
    });
  });

  describe('GET /auth/me and the access token', () => {
    let customer: Awaited<ReturnType<TestApp['customer']>>;
    let token: string;
    let claims: JWTPayload;

    beforeAll(async () => {
      customer = await bank.customer();
      const login = await bank.anonymous.post('/auth/login', { email: customer.user.email, password: customer.password });
      token = login.data.access_token;
      claims = decodeJwt(token);
    });

    it('answers the caller', async () => {
      const me = await bank.anonymous.get('/auth/me', bearer(token));
      expect(me.statusCode).toBe(200);
      expect(me.data).toEqual(customer.user);
    });

    it('issues a JWT carrying sub, role, iat, exp and jti', async () => {
      const header = JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString('utf8'));
      expect(header.alg).toBe('HS256');
      expect(claims).toMatchObject({
        sub: customer.user.id,
        role: 'customer',
        iat: expect.any(Number),
        exp: expect.any(Number),
        jti: expect.any(String),
      });
      expect(claims.exp! - claims.iat!).toBe(3600);
      expect(Math.abs(claims.iat! - Date.now() / 1000)).toBeLessThan(120);
      const other = decodeJwt(
        (await bank.anonymous.post('/auth/login', { email: customer.user.email, password: customer.password })).data.access_token,
      );
      expect(other.jti).not.toBe(claims.jti);
    });

    it('accepts the same claims re-signed with the secret (the forgeries below differ only in what they test)', async () => {
      const me = await bank.anonymous.get('/auth/me', bearer(await sign(claims)));
      expect(me.statusCode).toBe(200);
      expect(me.data.id).toBe(customer.user.id);
    });

    it('refuses a missing or malformed Authorization header', async () => {
      expectUnauthorized(await bank.anonymous.get('/auth/me'));
      expectUnauthorized(await bank.anonymous.get('/auth/me', { authorization: token }));
      expectUnauthorized(await bank.anonymous.get('/auth/me', { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` }));
      expectUnauthorized(await bank.anonymous.get('/auth/me', bearer('garbage')));
      expectUnauthorized(await bank.anonymous.get('/auth/me', bearer('aaa.bbb.ccc')));
      expectUnauthorized(await bank.anonymous.get('/auth/me', bearer('')));
    });

    it('refuses a token with alg none', async () => {
      const unsigned = `${base64url({ alg: 'none', typ: 'JWT' })}.${base64url(claims)}.`;
      expectUnauthorized(await bank.anonymous.get('/auth/me', bearer(unsigned)));
    });

    it('refuses a token whose payload was tampered with', async () => {
      const [header, , signature] = token.split('.');
      const forged = `${header}.${base64url({ ...claims, role: 'admin' })}.${signature}`;
      expectUnauthorized(await bank.anonymous.get('/auth/me', bearer(forged)));
      const otherUser = `${header}.${base64url({ ...claims, sub: randomUUID() })}.${signature}`;
      expectUnauthorized(await bank.anonymous.get('/auth/me', bearer(otherUser)));
    });

    it('refuses a token signed with another secret or another algorithm', async () => {
      const otherKey = new TextEncoder().encode('another-secret-that-is-at-least-32-bytes!!');
      const foreign = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(otherKey);
      expectUnauthorized(await bank.anonymous.get('/auth/me', bearer(foreign)));
      expectUnauthorized(await bank.anonymous.get('/auth/me', bearer(await sign(claims, 'HS512'))));
    });

    it('refuses an expired token', async () => {
      const now = Math.floor(Date.now() / 1000);
      const expired = await sign({ ...claims, iat: now - 7200, exp: now - 3600 });
      expectUnauthorized(await bank.anonymous.get('/auth/me', bearer(expired)));
    });

    it('refuses a token from the second its exp is reached, though it was accepted before (verified tokens are remembered)', async () => {
      const now = Math.floor(Date.now() / 1000);
      const shortLived = await sign({ ...claims, iat: now, exp: now + 60 });
      expect((await bank.anonymous.get('/auth/me', bearer(shortLived))).statusCode).toBe(200);
      vi.useFakeTimers({ toFake: ['Date'] });
      try {
        vi.setSystemTime((now + 59) * 1000 + 999);
        expect((await bank.anonymous.get('/auth/me', bearer(shortLived))).statusCode).toBe(200);
        vi.setSystemTime((now + 60) * 1000);
        expectUnauthorized(await bank.anonymous.get('/auth/me', bearer(shortLived)));
        vi.setSystemTime((now + 61) * 1000);
        expectUnauthorized(await bank.anonymous.get('/auth/me', bearer(shortLived)));
      } finally {
        vi.useRealTimers();
      }
    });

    it.each(['sub', 'role', 'iat', 'exp', 'jti'] as const)('refuses a token lacking %s', async (claim) => {
      const { [claim]: _dropped, ...rest } = claims;
      expectUnauthorized(await bank.anonymous.get('/auth/me', bearer(await sign(rest))));
    });

    it('refuses a correctly signed token whose jti was never issued', async () => {
      expectUnauthorized(await bank.anonymous.get('/auth/me', bearer(await sign({ ...claims, jti: randomUUID() }))));
    });

    it('refuses a token with an unknown role or for a user that does not exist', async () => {
      expectUnauthorized(await bank.anonymous.get('/auth/me', bearer(await sign({ ...claims, role: 'root' }))));
      expectUnauthorized(await bank.anonymous.get('/auth/me', bearer(await sign({ ...claims, sub: randomUUID() }))));
    });
  });

  it('never answers a password hash, in any response of this file', () => {
    expect(responses.length).toBeGreaterThan(50);
    for (const response of responses) {
      expect(response.body).not.toContain('password_hash');
      expect(response.body).not.toContain('$2b$');
      expect(response.body).not.toContain('$2a$');
    }
  });
});

describe('login with a body that is not JSON or a form', () => {
  let bank: TestApp;
  beforeAll(async () => {
    bank = await testApp();
  });

  it('answers 422 for no body and 415 for text/plain, never 500', async () => {
    const empty = await bank.app.inject({ method: 'POST', url: '/auth/login' });
    expect(empty.statusCode).toBe(422);
    expect(JSON.parse(empty.body).code).toBe('validation_error');
    const text = await bank.app.inject({
      method: 'POST',
      url: '/auth/login',
      headers: { 'content-type': 'text/plain' },
      payload: 'email=x',
    });
    expect(text.statusCode).toBe(415);
    expect(JSON.parse(text.body).code).toBe('unsupported_media_type');
  });
});
