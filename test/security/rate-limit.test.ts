/**
 * OWASP API4 (unrestricted resource consumption) and API6 (unrestricted access to a sensitive business
 * flow): transfers are limited per user and minute, in process memory or in Redis.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { TEST_REDIS_URL, testApp, type Customer, type TestApp } from '../helpers/app.js';
import { bearer, expectNoLeak, expectProblem, ledgerSnapshot, recordResponses } from './support.js';

const LIMIT = 5;
const tally = { attempts: 0, refused: 0 };

function expectRateLimited(response: LightMyRequestResponse): void {
  tally.attempts++;
  expectProblem(response, 429, 'rate_limited');
  const retryAfter = String(response.headers['retry-after']);
  expect(retryAfter).toMatch(/^\d+$/);
  expect(Number(retryAfter)).toBeGreaterThan(0);
  expect(Number(retryAfter)).toBeLessThanOrEqual(60);
  tally.refused++;
}

function transferVia(app: FastifyInstance, from: Customer, to: Customer, headers: Record<string, string> = {}, token = from.token!) {
  return app.inject({
    method: 'POST',
    url: '/transactions/transfer',
    headers: { ...bearer(token), ...headers },
    payload: { from_account: from.account.account_number, to_account: to.account.account_number, amount: '1.00' },
  });
}

const ENV = { RATE_LIMIT_TRANSFERS_PER_MINUTE: String(LIMIT), RISK_VELOCITY_COUNT: '0' };
// Serves the in-memory describe and the two-instance one: each database costs seconds.
const memoryBank = await testApp(ENV);

describe.each([
  ['in process memory', false],
  ['in Redis', true],
])('transfer rate limit counted %s', (_where, redis) => {
  let bank: TestApp;
  let responses: LightMyRequestResponse[];

  beforeAll(async () => {
    bank = redis ? await testApp(ENV, { redis }) : memoryBank;
    responses = recordResponses(bank.app);
  });

  it(`answers the ${LIMIT + 1}th transfer of a minute 429 rate_limited with Retry-After, and moves nothing`, async () => {
    const alice = await bank.customer('100.00');
    const carol = await bank.customer();
    for (let i = 0; i < LIMIT; i++) {
      const response = await transferVia(bank.app, alice, carol);
      expect(response.statusCode, response.body).toBe(201);
    }
    const before = await ledgerSnapshot(bank);
    expectRateLimited(await transferVia(bank.app, alice, carol));
    expect(await ledgerSnapshot(bank)).toEqual(before);
    expect((await alice.get(`/accounts/${alice.account.id}`)).data.balance).toBe(`${100 - LIMIT}.00`);

    // Not around it: a new login of the same user, a forged X-Forwarded-For, an Idempotency-Key.
    const relogin = await bank.anonymous.post('/auth/login', { email: alice.user.email, password: alice.password });
    expectRateLimited(await transferVia(bank.app, alice, carol, {}, relogin.data.access_token));
    expectRateLimited(await transferVia(bank.app, alice, carol, { 'x-forwarded-for': '203.0.113.7', 'x-real-ip': '203.0.113.8' }));
    expectRateLimited(await transferVia(bank.app, alice, carol, { 'idempotency-key': `fresh-${randomBytes(4).toString('hex')}` }));
    expect(await ledgerSnapshot(bank)).toEqual(before);

    // Only transfers are limited: reading goes on.
    expect((await alice.get('/accounts/')).statusCode).toBe(200);
  });

  it('limits each user alone: another user (same client address) still transfers', async () => {
    const alice = await bank.customer('100.00');
    const bob = await bank.customer('100.00');
    const carol = await bank.customer();
    for (let i = 0; i < LIMIT; i++) expect((await transferVia(bank.app, alice, carol)).statusCode).toBe(201);
    expectRateLimited(await transferVia(bank.app, alice, carol));
    for (let i = 0; i < LIMIT; i++) expect((await transferVia(bank.app, bob, carol)).statusCode).toBe(201);
    expectRateLimited(await transferVia(bank.app, bob, carol));
  });

  it('leaked no password hash and no stack trace in any answer', () => {
    for (const response of responses) expectNoLeak(response);
  });
});

describe('two instances sharing one Redis (the same key prefix)', () => {
  const bank = memoryBank;
  let apps: FastifyInstance[];
  let clients: Redis[];
  const prefix = `test:rate-shared:${randomBytes(6).toString('hex')}:`;

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

  it('share one budget per user: transfers through both add up', async () => {
    const [a, b] = apps as [FastifyInstance, FastifyInstance];
    const alice = await bank.customer('100.00');
    const carol = await bank.customer();
    for (let i = 0; i < LIMIT; i++) {
      const response = await transferVia(i % 2 === 0 ? a : b, alice, carol);
      expect(response.statusCode, response.body).toBe(201);
    }
    expectRateLimited(await transferVia(a, alice, carol));
    expectRateLimited(await transferVia(b, alice, carol));
  });
});

afterAll(() => {
  console.info(`rate limit: ${tally.attempts} attacks tried, ${tally.refused} refused`);
});
