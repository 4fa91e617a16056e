/**
 * OWASP API2 (broken authentication) under concurrency, over HTTP: a burst of logins for one email
 * against the lockout, and logins in flight while a password change or a disable commits. On one
 * instance, and on two sharing one database: on PostgreSQL the second opens a connection pool of its
 * own, as another server would (PGlite has one session, which both share).
 */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { openDatabase } from '../../src/db/connection.js';
import { Client, TEST_REDIS_URL, testApp, testConfig, type Customer, type Response } from '../helpers/app.js';
import { engine } from '../helpers/database.js';
import { sleep } from '../helpers/server-process.js';
import { bearer, expectProblem, expectUnauthorized } from './support.js';

const MAX_FAILURES = 5;
// Checking a password takes tens of milliseconds, as in production: a burst is counted long before any
// of its passwords has been checked.
const LOCKOUT_ENV = { LOGIN_MAX_FAILURES: String(MAX_FAILURES), LOGIN_LOCKOUT_MINUTES: '1', BCRYPT_COST: '10' };
// Concurrent logins with the right password all get through, and no transfer is stopped by the rate
// limit before its token is checked.
const SESSION_ENV = { LOGIN_MAX_FAILURES: '1000', RATE_LIMIT_TRANSFERS_PER_MINUTE: '100000' };
const ROUNDS = 4;
// Enough logins at once to straddle the change's commit, few enough that they never queue up behind it.
const LOGINS_IN_FLIGHT = 8;

interface Pair {
  access_token: string;
  refresh_token: string;
}

const bank = await testApp();
const closers: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/**
 * `count` instances of the service on the bank's database, each called as an anonymous client. With
 * `redis`, their lockout counters are in Redis under one key prefix of their own, else in the database.
 */
async function startInstances(count: number, env: Record<string, string>, redis: boolean): Promise<Client[]> {
  const prefix = `test:login-races:${randomBytes(6).toString('hex')}:`;
  const clients: Client[] = [];
  for (let i = 0; i < count; i++) {
    const database =
      i > 0 && engine === 'postgres'
        ? await openDatabase({ databaseUrl: bank.database.url!, dataDir: '', poolSize: 20 })
        : bank.database.handle;
    const redisClient = redis ? new Redis(TEST_REDIS_URL, { keyPrefix: prefix, maxRetriesPerRequest: 1 }) : undefined;
    const app: FastifyInstance = await buildApp({
      config: testConfig(env),
      database,
      logger: false,
      ...(redisClient ? { redis: redisClient } : {}),
    });
    closers.push(async () => {
      await app.close();
      if (database !== bank.database.handle) await database.close();
      redisClient?.disconnect();
    });
    clients.push(new Client(app, undefined));
  }
  if (redis) {
    closers.push(async () => {
      const cleaner = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
      const [, keys] = await cleaner.scan('0', 'MATCH', `${prefix}*`, 'COUNT', 100_000);
      if (keys.length > 0) await cleaner.del(...keys);
      cleaner.disconnect();
    });
  }
  return clients;
}

function statusCounts(answers: Response[]): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const answer of answers) counts[answer.statusCode] = (counts[answer.statusCode] ?? 0) + 1;
  return counts;
}

async function auditCount(action: string, targetId: string): Promise<number> {
  const row = await bank.database.handle.db
    .selectFrom('audit_log')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('action', '=', action)
    .where('target_id', '=', targetId)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

describe.each([
  ['one instance', 1],
  ['two instances on one database', 2],
])('%s', (_topology, instanceCount) => {
  describe.each([
    ['the database', false],
    ['Redis', true],
  ])('a burst of logins for one email, the lockout counted in %s', (_where, redis) => {
    let clients: Client[];
    beforeAll(async () => {
      clients = await startInstances(instanceCount, LOCKOUT_ENV, redis);
    });
    /** Every password sent at once, spread over the instances in turn: one answer each. */
    const burst = (email: string, passwords: string[]) =>
      passwords.map((password, i) => clients[i % clients.length]!.post('/auth/login', { email, password }));
    /** A customer registered through these instances, so that its password hash has their (slow) cost. */
    const register = async () => {
      const email = `burst-${randomBytes(6).toString('hex')}@bank.test`;
      const password = 'the-right-password';
      const answer = await clients[0]!.post('/auth/register', { name: 'Burst', email, password }, bearer(bank.admin.token!));
      expect(answer.statusCode, answer.body).toBe(201);
      return { id: answer.data.user.id as string, email, password };
    };
    const wrongPasswords = Array.from({ length: 30 }, (_, i) => `wrong-password-${i}`);

    it(`checks ${MAX_FAILURES} of 30 wrong passwords sent at once (401) and refuses the others unchecked (429)`, async () => {
      const customer = await register();
      const answers = await Promise.all(burst(customer.email, wrongPasswords));
      expect(statusCounts(answers)).toEqual({ 401: MAX_FAILURES, 429: 30 - MAX_FAILURES });
      for (const answer of answers) {
        if (answer.statusCode === 401) expectProblem(answer, 401, 'invalid_credentials');
        else {
          expectProblem(answer, 429, 'too_many_attempts');
          expect(Number(answer.headers['retry-after'])).toBeGreaterThan(0);
          expect(Number(answer.headers['retry-after'])).toBeLessThanOrEqual(60);
        }
      }
      // A refusal after a check of the hash is audited as a failure, one without as a locked attempt.
      expect(await auditCount('auth.login_failed', customer.id)).toBe(MAX_FAILURES);
      expect(await auditCount('auth.login_locked', customer.email)).toBe(30 - MAX_FAILURES);
      expectProblem(
        await clients[0]!.post('/auth/login', { email: customer.email, password: customer.password }),
        429,
        'too_many_attempts',
      );
    });

    it('never lets in the right password sent amid a burst of wrong ones still being answered, once it has used up the count', async () => {
      const customer = await register();
      const wrong = burst(customer.email, wrongPasswords);
      // The first answer of the burst comes after it has used up the count: a 429 says so, and a 401
      // comes only after a check of the hash, which takes far longer than counting the whole burst.
      await Promise.race(wrong);
      const mixed = Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? customer.password : `wrong-again-${i}`));
      const answers = await Promise.all(burst(customer.email, mixed));
      for (const answer of answers) expectProblem(answer, 429, 'too_many_attempts');
      expect(statusCounts(await Promise.all(wrong))).toEqual({ 401: MAX_FAILURES, 429: 30 - MAX_FAILURES });
      expect(await auditCount('auth.login', customer.id)).toBe(0);
    });
  });

  describe('logins with the old credentials in flight while they change', () => {
    let clients: Client[];
    let receiver: Customer;
    beforeAll(async () => {
      clients = await startInstances(instanceCount, SESSION_ENV, false);
      receiver = await bank.customer();
    });

    const login = async (client: Client, email: string, password: string): Promise<Pair> => {
      const answer = await client.post('/auth/login', { email, password });
      expect(answer.statusCode, answer.body).toBe(200);
      return answer.data;
    };
    const on = (i: number) => clients[i % clients.length]!;
    const me = (token: string, i = 0) => on(i).get('/auth/me', bearer(token));
    const refresh = (token: string, i = 0) => on(i).post('/auth/refresh', { refresh_token: token });
    const transfer = (token: string, from: Customer, i = 0) =>
      on(i).post(
        '/transactions/transfer',
        { from_account: from.account.account_number, to_account: receiver.account.account_number, amount: '1.00' },
        bearer(token),
      );

    /**
     * Logins with the customer's password, on each instance in turn, a few at a time without pause from
     * before `change` is sent until it has answered. Returns the change's answer, the token pairs of
     * the logins answered 200, and how many of those were answered after the change was.
     */
    async function loginsWhile(
      customer: Customer,
      change: () => Promise<Response>,
    ): Promise<{ changed: Response; issued: Pair[]; late: number }> {
      let changeAnswered = false;
      let inFlight = 0;
      const startLogin = (i: number) => {
        inFlight++;
        return on(i)
          .post('/auth/login', { email: customer.user.email, password: customer.password })
          .then((answer) => ({ answer, late: changeAnswered }))
          .finally(() => inFlight--);
      };
      const logins = Array.from({ length: LOGINS_IN_FLIGHT }, (_, i) => startLogin(i));
      const changing = change().finally(() => {
        changeAnswered = true;
      });
      while (!changeAnswered) {
        if (inFlight < LOGINS_IN_FLIGHT) logins.push(startLogin(logins.length));
        await sleep(1);
      }
      const changed = await changing;
      const answered = (await Promise.all(logins)).filter(({ answer }) => answer.statusCode === 200);
      return { changed, issued: answered.map(({ answer }) => answer.data as Pair), late: answered.filter(({ late }) => late).length };
    }

    /** Each pair's access token answers 401 on /auth/me and on a transfer, on either instance; with `refreshToo`, its refresh token answers 401. */
    async function expectAllRefused(issued: Pair[], owner: Customer, refreshToo: boolean): Promise<void> {
      for (const [i, pair] of issued.entries()) {
        expectUnauthorized(await me(pair.access_token, i));
        expectUnauthorized(await transfer(pair.access_token, owner, i + 1));
        if (refreshToo) expectUnauthorized(await refresh(pair.refresh_token, i));
      }
    }

    it('ends, once the password change has answered 204, every session those logins opened; the caller’s stays', async () => {
      let late = 0;
      let issued = 0;
      for (let round = 0; round < ROUNDS; round++) {
        const customer = await bank.customer('10.00');
        const caller = await login(on(0), customer.user.email, customer.password);
        const newPassword = `new-password-${round}`;
        const race = await loginsWhile(customer, () =>
          on(0).post(
            '/auth/change-password',
            { current_password: customer.password, new_password: newPassword },
            bearer(caller.access_token),
          ),
        );
        late += race.late;
        issued += race.issued.length;
        expect(race.changed.statusCode, race.changed.body).toBe(204);
        await expectAllRefused(race.issued, customer, true);

        // The session that changed the password goes on, its refresh token included, on either instance.
        expect((await me(caller.access_token, 1)).statusCode).toBe(200);
        expect((await transfer(caller.access_token, customer, 1)).statusCode).toBe(201);
        const rotated = await refresh(caller.refresh_token, 1);
        expect(rotated.statusCode, rotated.body).toBe(200);
        expect((await me(rotated.data.access_token)).statusCode).toBe(200);
        await login(on(1), customer.user.email, newPassword);
      }
      // Some logins checked the old password before the change committed and answered after it did:
      // without them, this test would prove nothing.
      console.info(`password change (${instanceCount} instances): ${late} of ${issued} logins answered 200 after it`);
      expect(late).toBeGreaterThan(0);
    });

    it('ends, once the disable has answered, every session those logins opened, and re-enabling brings none back', async () => {
      let late = 0;
      let issued = 0;
      for (let round = 0; round < ROUNDS; round++) {
        const customer = await bank.customer('10.00');
        const patchActive = (isActive: boolean, i: number) =>
          on(i).patch(`/users/${customer.user.id}`, { is_active: isActive }, bearer(bank.admin.token!));
        const race = await loginsWhile(customer, () => patchActive(false, 0));
        late += race.late;
        issued += race.issued.length;
        expect(race.changed.statusCode, race.changed.body).toBe(200);
        await expectAllRefused(race.issued, customer, true);

        expect((await patchActive(true, 1)).statusCode).toBe(200);
        await expectAllRefused(race.issued, customer, true);
        // The user itself is back: a new login works.
        expect((await me((await login(on(1), customer.user.email, customer.password)).access_token)).statusCode).toBe(200);
      }
      console.info(`disable (${instanceCount} instances): ${late} of ${issued} logins answered 200 after it`);
      expect(late).toBeGreaterThan(0);
    });
  });
});
