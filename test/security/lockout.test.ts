/**
 * OWASP API2 (broken authentication) and API4 (unrestricted resource consumption) at the front door:
 * the per-email login lockout, with its counters in the database and in Redis, shared by instances, and
 * the same answer whether the email exists or not.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { TEST_REDIS_URL, testApp, testConfig, type Customer, type TestApp } from '../helpers/app.js';
import { expectNoLeak, expectProblem, recordResponses } from './support.js';

const LOCKOUT_ENV = { LOGIN_MAX_FAILURES: '3', LOGIN_LOCKOUT_MINUTES: '1' };
const tally = { attempts: 0, refused: 0 };

function json(response: LightMyRequestResponse): any {
  return JSON.parse(response.body);
}

function loginTo(app: FastifyInstance, email: string, password: string): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'POST', url: '/auth/login', payload: { email, password } });
}

function expectInvalidCredentials(response: LightMyRequestResponse): void {
  tally.attempts++;
  expectProblem(response, 401, 'invalid_credentials');
  tally.refused++;
}

/** 429 too_many_attempts, problem+json, with a Retry-After of whole seconds within the lockout. */
function expectLocked(response: LightMyRequestResponse): number {
  tally.attempts++;
  expectProblem(response, 429, 'too_many_attempts');
  const retryAfter = String(response.headers['retry-after']);
  expect(retryAfter).toMatch(/^\d+$/);
  expect(Number(retryAfter)).toBeGreaterThan(0);
  expect(Number(retryAfter)).toBeLessThanOrEqual(60);
  tally.refused++;
  return Number(retryAfter);
}

/** The headers a client sees, less those that differ on every answer. */
function headerNames(response: LightMyRequestResponse): string[] {
  return Object.keys(response.headers)
    .filter((name) => !['date', 'x-request-id', 'content-length'].includes(name))
    .sort();
}

// One database (and app, counting in it) serves every describe but the Redis one: each database costs seconds.
const databaseBank = await testApp(LOCKOUT_ENV);

describe.each([
  ['the database', false],
  ['Redis', true],
])('login lockout with its counters in %s', (_where, redis) => {
  let bank: TestApp;
  let responses: LightMyRequestResponse[];
  let inspector: Redis | undefined;
  const login = (email: string, password: string) => loginTo(bank.app, email, password);

  beforeAll(async () => {
    bank = redis ? await testApp(LOCKOUT_ENV, { redis }) : databaseBank;
    responses = recordResponses(bank.app);
    if (redis) inspector = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
  });
  afterAll(() => inspector?.disconnect());

  /** Ends a lockout early, as if its minute had passed. */
  async function expireLock(email: string): Promise<void> {
    if (inspector) {
      // The app's client prefixes its keys; the key ends with the (lower-cased) email, unique in this file.
      const [, keys] = await inspector.scan('0', 'MATCH', `*login:locked:${email}`, 'COUNT', 100_000);
      expect(keys).toHaveLength(1);
      await inspector.pexpire(keys[0]!, 1);
      await new Promise((resolve) => setTimeout(resolve, 20));
    } else {
      await bank.database.handle.db
        .updateTable('login_failures')
        .set({ locked_until: new Date(Date.now() - 1000), updated_at: new Date(Date.now() - 1000) })
        .where('email', '=', email)
        .execute();
    }
  }

  it('answers 401 to three wrong passwords, then 429 too_many_attempts with Retry-After even to the right one', async () => {
    const customer = await bank.customer();
    for (let i = 0; i < 3; i++) expectInvalidCredentials(await login(customer.user.email, `wrong-password-${i}`));
    const locked = await login(customer.user.email, customer.password);
    expectLocked(locked);
    expect(json(locked).detail).not.toMatch(/password/i);
    // Neither another casing of the email nor the OAuth2 form gets around it.
    expectLocked(await login(customer.user.email.toUpperCase(), customer.password));
    const form = await bank.app.inject({
      method: 'POST',
      url: '/auth/login',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ username: customer.user.email, password: customer.password, grant_type: 'password' }).toString(),
    });
    expectLocked(form);
    // Its existing sessions are untouched: the lockout is about guessing, not about the account.
    expect((await customer.get('/auth/me')).statusCode).toBe(200);
    const entry = await bank.database.handle.db
      .selectFrom('audit_log')
      .selectAll()
      .where('action', '=', 'auth.login_locked')
      .where('target_id', '=', customer.user.email)
      .executeTakeFirst();
    expect(entry).toBeDefined();
  });

  it('locks out an unknown email the same way, with answers of exactly the same shape', async () => {
    const known = await bank.customer();
    const unknownEmail = `nobody-${randomUUID()}@bank.test`;
    const knownFailures: LightMyRequestResponse[] = [];
    const unknownFailures: LightMyRequestResponse[] = [];
    for (let i = 0; i < 3; i++) {
      knownFailures.push(await login(known.user.email, `wrong-${i}-password`));
      unknownFailures.push(await login(unknownEmail, `wrong-${i}-password`));
    }
    for (const response of [...knownFailures, ...unknownFailures]) expectInvalidCredentials(response);
    const knownLocked = await login(known.user.email, known.password);
    const unknownLocked = await login(unknownEmail, 'any-password-1');
    expectLocked(knownLocked);
    expectLocked(unknownLocked);

    expect(json(unknownFailures[0]!)).toEqual(json(knownFailures[0]!));
    expect(headerNames(unknownFailures[0]!)).toEqual(headerNames(knownFailures[0]!));
    expect(json(unknownLocked)).toEqual(json(knownLocked));
    expect(headerNames(unknownLocked)).toEqual(headerNames(knownLocked));
  });

  it('resets the count on a successful login before the limit', async () => {
    const customer = await bank.customer();
    for (let round = 0; round < 3; round++) {
      expectInvalidCredentials(await login(customer.user.email, 'wrong-password-a'));
      expectInvalidCredentials(await login(customer.user.email, 'wrong-password-b'));
      expect((await login(customer.user.email, customer.password)).statusCode).toBe(200);
    }
    // Counting starts again after the success: three more failures do lock.
    for (let i = 0; i < 3; i++) expectInvalidCredentials(await login(customer.user.email, 'wrong-password-c'));
    expectLocked(await login(customer.user.email, customer.password));
  });

  it('locks one email only: another user logs in meanwhile', async () => {
    const victim = await bank.customer();
    const bystander = await bank.customer();
    for (let i = 0; i < 3; i++) await login(victim.user.email, 'wrong-password-x');
    expectLocked(await login(victim.user.email, victim.password));
    expect((await login(bystander.user.email, bystander.password)).statusCode).toBe(200);
  });

  it('lets the email in again once the lockout has run out, and counts afresh', async () => {
    const customer = await bank.customer();
    for (let i = 0; i < 3; i++) await login(customer.user.email, 'wrong-password-y');
    expectLocked(await login(customer.user.email, customer.password));
    await expireLock(customer.user.email);
    expectInvalidCredentials(await login(customer.user.email, 'wrong-password-z'));
    expectInvalidCredentials(await login(customer.user.email, 'wrong-password-z'));
    expect((await login(customer.user.email, customer.password)).statusCode).toBe(200);
  });

  it('leaked no password hash and no stack trace in any answer', () => {
    expect(responses.length).toBeGreaterThan(30);
    for (const response of responses) expectNoLeak(response);
  });
});

describe('two instances', () => {
  describe('on one database (database counters)', () => {
    const bank = databaseBank;
    let second: FastifyInstance;
    beforeAll(async () => {
      second = await buildApp({ config: bank.config, database: bank.database.handle, logger: false });
    });
    afterAll(() => second.close());

    it('share the lockout: failures on both add up, and both refuse the right password', async () => {
      const customer: Customer = await bank.customer();
      expectInvalidCredentials(await loginTo(bank.app, customer.user.email, 'wrong-password-1'));
      expectInvalidCredentials(await loginTo(second, customer.user.email, 'wrong-password-2'));
      expectInvalidCredentials(await loginTo(bank.app, customer.user.email, 'wrong-password-3'));
      expectLocked(await loginTo(second, customer.user.email, customer.password));
      expectLocked(await loginTo(bank.app, customer.user.email, customer.password));
    });

    it('share the reset: a success on one clears failures counted on the other', async () => {
      const customer: Customer = await bank.customer();
      expectInvalidCredentials(await loginTo(bank.app, customer.user.email, 'wrong-password-1'));
      expectInvalidCredentials(await loginTo(bank.app, customer.user.email, 'wrong-password-2'));
      expect((await loginTo(second, customer.user.email, customer.password)).statusCode).toBe(200);
      expectInvalidCredentials(await loginTo(bank.app, customer.user.email, 'wrong-password-3'));
      expectInvalidCredentials(await loginTo(second, customer.user.email, 'wrong-password-4'));
      expect((await loginTo(bank.app, customer.user.email, customer.password)).statusCode).toBe(200);
    });
  });

  describe('sharing one Redis (the same key prefix)', () => {
    const bank = databaseBank;
    let apps: FastifyInstance[];
    let clients: Redis[];
    const prefix = `test:lockout-shared:${randomBytes(6).toString('hex')}:`;

    beforeAll(async () => {
      clients = [0, 1].map(() => new Redis(TEST_REDIS_URL, { keyPrefix: prefix, maxRetriesPerRequest: 1 }));
      apps = await Promise.all(
        clients.map((redis) => buildApp({ config: bank.config, database: bank.database.handle, redis, logger: false })),
      );
    });
    afterAll(async () => {
      await Promise.all(apps.map((app) => app.close()));
      const cleaner = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
      const [, keys] = await cleaner.scan('0', 'MATCH', `${prefix}*`, 'COUNT', 100_000);
      if (keys.length > 0) await cleaner.del(...keys);
      cleaner.disconnect();
      for (const client of clients) client.disconnect();
    });

    it('share the lockout, which lives in Redis and not in the database', async () => {
      const [a, b] = apps as [FastifyInstance, FastifyInstance];
      const customer: Customer = await bank.customer();
      expectInvalidCredentials(await loginTo(a, customer.user.email, 'wrong-password-1'));
      expectInvalidCredentials(await loginTo(b, customer.user.email, 'wrong-password-2'));
      expectInvalidCredentials(await loginTo(a, customer.user.email, 'wrong-password-3'));
      expectLocked(await loginTo(b, customer.user.email, customer.password));
      expectLocked(await loginTo(a, customer.user.email, customer.password));

      const ttl = await clients[0]!.ttl(`login:locked:${customer.user.email}`);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(60);
      const row = await bank.database.handle.db
        .selectFrom('login_failures')
        .selectAll()
        .where('email', '=', customer.user.email)
        .executeTakeFirst();
      expect(row).toBeUndefined();
      // The app that testApp built on the same database counts in the database: it does not see the Redis lock.
      expect((await loginTo(bank.app, customer.user.email, customer.password)).statusCode).toBe(200);
    });
  });
});

describe('refusal timing', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    // No lockout in the way, and a bcrypt cost at which a skipped comparison would show (cost 4 takes
    // about a millisecond, less than the database round trips, so it would hide one).
    app = await buildApp({
      config: testConfig({ LOGIN_MAX_FAILURES: '1000', BCRYPT_COST: '8' }),
      database: databaseBank.database.handle,
      logger: false,
    });
  });
  afterAll(() => app.close());

  it('takes about as long for an unknown email, a wrong password and a disabled user', async () => {
    // Registered through this app, so that their hashes have its cost, like its dummy hash.
    const register = async (email: string) => {
      const response = await app.inject({
        method: 'POST',
        url: '/auth/register',
        headers: { authorization: `Bearer ${databaseBank.admin.token}` },
        payload: { name: 'Timed', email, password: 'timed-password-1' },
      });
      expect(response.statusCode, response.body).toBe(201);
      return json(response).user as { id: string; email: string };
    };
    const active = await register(`timed-active-${randomUUID()}@bank.test`);
    const disabled = await register(`timed-disabled-${randomUUID()}@bank.test`);
    expect((await databaseBank.admin.patch(`/users/${disabled.id}`, { is_active: false })).statusCode).toBe(200);
    const kinds = {
      unknown: () => loginTo(app, `ghost-${randomUUID()}@bank.test`, 'some-password-1'),
      wrong: () => loginTo(app, active.email, 'some-password-1'),
      disabled: () => loginTo(app, disabled.email, 'timed-password-1'),
    };
    const times: Record<keyof typeof kinds, number[]> = { unknown: [], wrong: [], disabled: [] };
    const names = Object.keys(kinds) as Array<keyof typeof kinds>;
    for (const name of names) await kinds[name](); // warm-up
    for (let i = 0; i < 15; i++) {
      // Interleaved, in a rotating order, so that a slow spell of the machine hits every kind alike.
      for (let j = 0; j < names.length; j++) {
        const name = names[(i + j) % names.length]!;
        const started = performance.now();
        const response = await kinds[name]();
        times[name].push(performance.now() - started);
        expectInvalidCredentials(response);
      }
    }
    const median = (values: number[]) => [...values].sort((x, y) => x - y)[Math.floor(values.length / 2)]!;
    const medians = Object.fromEntries(names.map((name) => [name, Math.round(median(times[name]) * 100) / 100]));
    console.info(`login refusal medians (ms, BCRYPT_COST=8): ${JSON.stringify(medians)}`);
    const values = Object.values(medians);
    expect(Math.max(...values) / Math.min(...values)).toBeLessThan(5);
  });
});

afterAll(() => {
  console.info(`lockout: ${tally.attempts} attacks tried, ${tally.refused} refused`);
});
