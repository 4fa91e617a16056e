/**
 * OWASP API2 (broken authentication): sessions end when they should, and a stolen token is worth as
 * little as possible. Refresh rotation with reuse detection, logout, password change, disabling a user,
 * and access tokens that were never issued.
 */
import { randomUUID } from 'node:crypto';
import { decodeJwt } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_EMAIL, testApp, type Customer, type Response, type TestApp } from '../helpers/app.js';
import { bearer, expectNoLeak, expectProblem, expectUnauthorized, recordResponses, sign } from './support.js';

interface Pair {
  access_token: string;
  refresh_token: string;
}

describe('sessions', () => {
  let bank: TestApp;
  let responses: ReturnType<typeof recordResponses>;
  const tally = { attempts: 0, refused: 0 };

  const login = async (email: string, password: string): Promise<Pair> => {
    const response = await bank.anonymous.post('/auth/login', { email, password });
    expect(response.statusCode, response.body).toBe(200);
    return response.data;
  };
  const refresh = (token: string) => bank.anonymous.post('/auth/refresh', { refresh_token: token });
  const me = (token: string) => bank.anonymous.get('/auth/me', bearer(token));
  /** An attack that must be refused with 401 unauthorized. */
  const refused = (response: Response) => {
    tally.attempts++;
    expectUnauthorized(response);
    tally.refused++;
  };

  beforeAll(async () => {
    bank = await testApp();
    responses = recordResponses(bank.app);
  });

  describe('refresh rotation', () => {
    let customer: Customer;
    beforeAll(async () => {
      customer = await bank.customer();
    });

    it('exchanges a refresh token for a new pair, both new and working', async () => {
      const first = await login(customer.user.email, customer.password);
      const rotated = await refresh(first.refresh_token);
      expect(rotated.statusCode, rotated.body).toBe(200);
      expect(rotated.data).toMatchObject({
        token_type: 'bearer',
        access_token: expect.any(String),
        refresh_token: expect.any(String),
        user: { id: customer.user.id },
      });
      expect(rotated.data.access_token).not.toBe(first.access_token);
      expect(rotated.data.refresh_token).not.toBe(first.refresh_token);
      expect(decodeJwt(rotated.data.access_token).jti).not.toBe(decodeJwt(first.access_token).jti);
      expect((await me(rotated.data.access_token)).statusCode).toBe(200);
      // The next rotation works from the new refresh token.
      expect((await refresh(rotated.data.refresh_token)).statusCode).toBe(200);
    });

    it('refuses a refresh token the second time (401) and then revokes the whole family', async () => {
      const first = await login(customer.user.email, customer.password);
      const second: Pair = (await refresh(first.refresh_token)).data;
      const third: Pair = (await refresh(second.refresh_token)).data;
      expect((await me(third.access_token)).statusCode).toBe(200);
      // Another login of the same user is another family: it must survive.
      const bystander = await login(customer.user.email, customer.password);

      // The thief (or the victim) replays a spent token.
      refused(await refresh(first.refresh_token));

      // Every token of that login stops at once: the newest refresh token, and every access token.
      refused(await refresh(third.refresh_token));
      for (const pair of [first, second, third]) refused(await me(pair.access_token));
      refused(await refresh(second.refresh_token));

      expect((await me(bystander.access_token)).statusCode).toBe(200);
      expect((await refresh(bystander.refresh_token)).statusCode).toBe(200);

      const entry = await bank.database.handle.db
        .selectFrom('audit_log')
        .selectAll()
        .where('action', '=', 'auth.refresh_reused')
        .executeTakeFirst();
      expect(entry).toBeDefined();
    });

    it('refuses an unknown, malformed or access-token-as-refresh-token value, and a refresh token as a bearer token', async () => {
      const pair = await login(customer.user.email, customer.password);
      refused(await refresh('x'.repeat(43)));
      refused(await refresh(pair.access_token.slice(0, 200)));
      tally.attempts++;
      expectProblem(await bank.anonymous.post('/auth/refresh', { refresh_token: '' }), 422, 'validation_error');
      tally.refused++;
      refused(await me(pair.refresh_token));
      // None of these spent or revoked the real one.
      expect((await refresh(pair.refresh_token)).statusCode).toBe(200);
    });

    it('lets exactly one of two concurrent uses of one refresh token through', async () => {
      const pair = await login(customer.user.email, customer.password);
      const answers = await Promise.all([refresh(pair.refresh_token), refresh(pair.refresh_token)]);
      tally.attempts++;
      expect(answers.map((a) => a.statusCode).sort()).toEqual([200, 401]);
      tally.refused++;
    });
  });

  describe('logout', () => {
    it('kills the access token it was called with at once, and its refresh token', async () => {
      const customer = await bank.customer();
      const pair = await login(customer.user.email, customer.password);
      const other = await login(customer.user.email, customer.password);

      const out = await bank.anonymous.post('/auth/logout', undefined, bearer(pair.access_token));
      expect(out.statusCode, out.body).toBe(204);
      expect(out.body).toBe('');

      refused(await me(pair.access_token));
      refused(await bank.anonymous.post('/auth/logout', undefined, bearer(pair.access_token)));
      refused(await refresh(pair.refresh_token));
      // The user's other session is not this one.
      expect((await me(other.access_token)).statusCode).toBe(200);
    });

    it('also ends the access tokens rotated into that session', async () => {
      const customer = await bank.customer();
      const first = await login(customer.user.email, customer.password);
      const second: Pair = (await refresh(first.refresh_token)).data;
      expect((await bank.anonymous.post('/auth/logout', undefined, bearer(second.access_token))).statusCode).toBe(204);
      refused(await me(first.access_token));
      refused(await refresh(second.refresh_token));
    });

    it('tells each of many concurrent requests apart, though their tokens are looked up together', async () => {
      const customer = await bank.customer();
      // One after another: logins sent at once beyond LOGIN_MAX_FAILURES would be refused, as counted before their check.
      const pairs: Pair[] = [];
      for (let i = 0; i < 6; i++) pairs.push(await login(customer.user.email, customer.password));
      const loggedOut = pairs.filter((_, i) => i % 2 === 1);
      for (const pair of loggedOut)
        expect((await bank.anonymous.post('/auth/logout', undefined, bearer(pair.access_token))).statusCode).toBe(204);
      const answers = await Promise.all(Array.from({ length: 4 }, () => pairs.map((pair) => me(pair.access_token))).flat());
      answers.forEach((answer, i) => {
        if (i % 2 === 1) refused(answer);
        else expect(answer.statusCode, answer.body).toBe(200);
      });
    });
  });

  describe('POST /auth/change-password', () => {
    it('ends the other sessions, keeps the caller’s, and only the new password logs in', async () => {
      const customer = await bank.customer();
      const mine = await login(customer.user.email, customer.password);
      const thief = await login(customer.user.email, customer.password);

      const changed = await bank.anonymous.post(
        '/auth/change-password',
        { current_password: customer.password, new_password: 'brand-new-password' },
        bearer(mine.access_token),
      );
      expect(changed.statusCode, changed.body).toBe(204);

      refused(await me(thief.access_token));
      refused(await refresh(thief.refresh_token));
      // The signup token (another session) is gone too.
      refused(await customer.get('/auth/me'));

      expect((await me(mine.access_token)).statusCode).toBe(200);
      const rotated = await refresh(mine.refresh_token);
      expect(rotated.statusCode).toBe(200);
      expect((await me(rotated.data.access_token)).statusCode).toBe(200);

      tally.attempts++;
      expectProblem(
        await bank.anonymous.post('/auth/login', { email: customer.user.email, password: customer.password }),
        401,
        'invalid_credentials',
      );
      tally.refused++;
      expect((await bank.anonymous.post('/auth/login', { email: customer.user.email, password: 'brand-new-password' })).statusCode).toBe(
        200,
      );
    });

    it('answers 401 invalid_credentials for a wrong current password and changes nothing', async () => {
      const customer = await bank.customer();
      const mine = await login(customer.user.email, customer.password);
      const other = await login(customer.user.email, customer.password);
      tally.attempts++;
      const wrong = await bank.anonymous.post(
        '/auth/change-password',
        { current_password: 'not-my-password', new_password: 'attacker-password' },
        bearer(mine.access_token),
      );
      expectProblem(wrong, 401, 'invalid_credentials');
      tally.refused++;
      // The session that asked is not ended by a wrong guess, nor is any other.
      expect((await me(mine.access_token)).statusCode).toBe(200);
      expect((await me(other.access_token)).statusCode).toBe(200);
      expect((await bank.anonymous.post('/auth/login', { email: customer.user.email, password: 'attacker-password' })).statusCode).toBe(
        401,
      );
      expect((await bank.anonymous.post('/auth/login', { email: customer.user.email, password: customer.password })).statusCode).toBe(200);
    });

    it('answers 422 for a new password outside 8..72 bytes, a missing field or an unknown one', async () => {
      const customer = await bank.customer();
      const change = (body: unknown) => customer.post('/auth/change-password', body);
      for (const body of [
        { current_password: customer.password, new_password: 'short' },
        { current_password: customer.password, new_password: 'é'.repeat(37) },
        { current_password: customer.password, new_password: 'a'.repeat(73) },
        { current_password: customer.password },
        { current_password: customer.password, new_password: 'long-enough-1', user_id: randomUUID() },
        { current_password: customer.password, new_password: 12345678 },
      ]) {
        tally.attempts++;
        expectProblem(await change(body), 422, 'validation_error');
        tally.refused++;
      }
      expect((await bank.anonymous.post('/auth/login', { email: customer.user.email, password: customer.password })).statusCode).toBe(200);
    });

    it('needs a token: an anonymous caller gets 401 even with the right current password', async () => {
      const customer = await bank.customer();
      refused(await bank.anonymous.post('/auth/change-password', { current_password: customer.password, new_password: 'anonymous-pw-1' }));
    });
  });

  describe('disabling a user (PATCH /users/{id})', () => {
    it('stops its tokens at once; its login answers exactly like a wrong password; re-enabling revives nothing', async () => {
      const customer = await bank.customer('10.00');
      const pair = await login(customer.user.email, customer.password);
      const wrongPassword = await bank.anonymous.post('/auth/login', { email: customer.user.email, password: 'wrong-password-1' });

      const disabled = await bank.admin.patch(`/users/${customer.user.id}`, { is_active: false });
      expect(disabled.statusCode, disabled.body).toBe(200);
      expect(disabled.data.is_active).toBe(false);

      refused(await me(pair.access_token));
      refused(await customer.get(`/accounts/${customer.account.id}`));
      refused(await refresh(pair.refresh_token));

      tally.attempts++;
      const blocked = await bank.anonymous.post('/auth/login', { email: customer.user.email, password: customer.password });
      expectProblem(blocked, 401, 'invalid_credentials');
      tally.refused++;
      expect(blocked.data).toEqual(wrongPassword.data);
      const headersOf = (r: Response) =>
        Object.keys(r.headers)
          .filter((h) => !['date', 'x-request-id', 'content-length'].includes(h))
          .sort();
      expect(headersOf(blocked)).toEqual(headersOf(wrongPassword));

      const enabled = await bank.admin.patch(`/users/${customer.user.id}`, { is_active: true });
      expect(enabled.statusCode).toBe(200);
      refused(await me(pair.access_token));
      refused(await customer.get('/auth/me'));
      refused(await refresh(pair.refresh_token));
      // A fresh login works again.
      const again = await login(customer.user.email, customer.password);
      expect((await me(again.access_token)).statusCode).toBe(200);
    });

    it('stops a disabled admin’s power at once', async () => {
      const admin = await bank.user('admin');
      expect((await admin.get('/users')).statusCode).toBe(200);
      expect((await bank.admin.patch(`/users/${admin.user.id}`, { is_active: false })).statusCode).toBe(200);
      refused(await admin.get('/users'));
      refused(await admin.post('/auth/register', { name: 'Sleeper', email: 'sleeper@bank.test', password: 'sleeper-password' }));
    });
  });

  describe('access tokens the server never issued', () => {
    it('refuses a well-formed token with valid claims, signed with the right secret, whose jti was never issued', async () => {
      const admin = (await bank.admin.get('/auth/me')).data;
      expect(admin.email).toBe(ADMIN_EMAIL);
      const now = Math.floor(Date.now() / 1000);
      const forged = await sign({ sub: admin.id, role: 'admin', iat: now, exp: now + 600, jti: randomUUID() });
      refused(await me(forged));
      refused(await bank.anonymous.get('/users', bearer(forged)));
      refused(
        await bank.anonymous.post(
          '/auth/register',
          { name: 'Eve', email: 'eve@bank.test', password: 'eve-password', role: 'admin' },
          bearer(forged),
        ),
      );
      const eve = await bank.database.handle.db.selectFrom('users').select('id').where('email', '=', 'eve@bank.test').executeTakeFirst();
      expect(eve).toBeUndefined();
    });

    it('refuses a real jti presented under another user’s sub', async () => {
      const customer = await bank.customer();
      const admin = (await bank.admin.get('/auth/me')).data;
      const claims = decodeJwt(customer.token!);
      refused(await me(await sign({ ...claims, sub: admin.id, role: 'admin' })));
    });

    it('refuses a jti that is not a UUID', async () => {
      const customer = await bank.customer();
      const claims = decodeJwt(customer.token!);
      for (const jti of ["' OR '1'='1", 'x'.repeat(500), '00000000-0000-0000-0000-000000000000'])
        refused(await me(await sign({ ...claims, jti })));
    });
  });

  describe('a transfer, whose own statement checks the token (transfer_batch)', () => {
    const transfer = (token: string, from: Customer, to: Customer, amount: string, headers: Record<string, string> = {}) =>
      bank.anonymous.post(
        '/transactions/transfer',
        { from_account: from.account.account_number, to_account: to.account.account_number, amount },
        {
          ...bearer(token),
          ...headers,
        },
      );
    const balanceOf = async (customer: Customer) => (await bank.admin.get(`/accounts/${customer.account.id}`)).data.balance;

    it('refuses a logged-out token with 401, moves nothing, and leaves its Idempotency-Key unclaimed', async () => {
      const alice = await bank.customer('50.00');
      const bob = await bank.customer();
      const pair = await login(alice.user.email, alice.password);
      expect((await bank.anonymous.post('/auth/logout', undefined, bearer(pair.access_token))).statusCode).toBe(204);
      refused(await transfer(pair.access_token, alice, bob, '10.00', { 'idempotency-key': 'after-logout' }));
      expect(await balanceOf(alice)).toBe('50.00');
      // The key was never claimed: the same request with a live token runs, once.
      const fresh = await login(alice.user.email, alice.password);
      for (let i = 0; i < 2; i++)
        expect((await transfer(fresh.access_token, alice, bob, '10.00', { 'idempotency-key': 'after-logout' })).statusCode).toBe(201);
      expect(await balanceOf(alice)).toBe('40.00');
    });

    it('refuses the token of a disabled user, of a session ended by a password change, never issued, or presented under another sub', async () => {
      const alice = await bank.customer('50.00');
      const bob = await bank.customer('50.00');
      const carol = await bank.customer('50.00');
      const now = Math.floor(Date.now() / 1000);
      const other = await login(carol.user.email, carol.password);
      expect(
        (await carol.post('/auth/change-password', { current_password: carol.password, new_password: 'carol-new-password' })).statusCode,
      ).toBe(204);
      const attempts: Array<[string, string, Customer]> = [
        ['never issued', await sign({ sub: alice.user.id, role: 'customer', iat: now, exp: now + 600, jti: randomUUID() }), alice],
        ['another sub', await sign({ ...decodeJwt(alice.token!), sub: bob.user.id }), bob],
        ['ended by a password change', other.access_token, carol],
      ];
      for (const [name, token, from] of attempts) {
        const answer = await transfer(token, from, alice === from ? bob : alice, '5.00');
        expect(answer.statusCode, `${name}: ${answer.body}`).toBe(401);
        refused(answer);
      }
      expect((await bank.admin.patch(`/users/${bob.user.id}`, { is_active: false })).statusCode).toBe(200);
      refused(await transfer(bob.token!, bob, alice, '5.00'));
      expect([await balanceOf(alice), await balanceOf(bob), await balanceOf(carol)]).toEqual(['50.00', '50.00', '50.00']);
      // The live ones still work.
      expect((await transfer(alice.token!, alice, carol, '5.00')).statusCode).toBe(201);
    });

    it('still answers 403 to a role that may not transfer, judged by the database, and 401 to an unknown token claiming one', async () => {
      const alice = await bank.customer('50.00');
      const bob = await bank.customer();
      const admin = (await bank.admin.get('/auth/me')).data;
      const now = Math.floor(Date.now() / 1000);
      expectProblem(await transfer(bank.admin.token!, alice, bob, '1.00'), 403, 'forbidden');
      refused(
        await transfer(await sign({ sub: admin.id, role: 'admin', iat: now, exp: now + 600, jti: randomUUID() }), alice, bob, '1.00'),
      );
      // A customer's real token re-signed with role admin is still a customer's, and transfers as one.
      expect((await transfer(await sign({ ...decodeJwt(alice.token!), role: 'admin' }), alice, bob, '1.00')).statusCode).toBe(201);
    });

    it('reads the body of a revoked token before refusing it: a malformed one is 422, as for anyone, and changes nothing', async () => {
      const alice = await bank.customer('50.00');
      const pair = await login(alice.user.email, alice.password);
      expect((await bank.anonymous.post('/auth/logout', undefined, bearer(pair.access_token))).statusCode).toBe(204);
      const answer = await bank.anonymous.post(
        '/transactions/transfer',
        { from_account: alice.account.account_number, amount: 'ten' },
        bearer(pair.access_token),
      );
      expectProblem(answer, 422, 'validation_error');
      expect(await balanceOf(alice)).toBe('50.00');
    });
  });

  it('leaked no password hash and no stack trace in any answer of this file', () => {
    expect(responses.length).toBeGreaterThan(50);
    for (const response of responses) expectNoLeak(response);
    console.info(`sessions: ${tally.attempts} attacks tried, ${tally.refused} refused`);
  });
});
