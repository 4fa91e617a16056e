/**
 * The rest of the OWASP API Security Top 10 (2023) that an HTTP client can probe: API1 (BOLA), API2
 * (forged tokens), API4 (body and page sizes), API5 (BFLA), API8 (security misconfiguration: headers,
 * CORS, error details), and hostile input everywhere (property-based, with fast-check): never a 500,
 * and a refused request moves no money.
 */
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { decodeJwt, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { testApp, testConfig, type Client, type Customer, type Response } from '../helpers/app.js';
import {
  base64url,
  bearer,
  expectNoLeak,
  expectProblem,
  expectUnauthorized,
  ledgerSnapshot,
  NOBODY,
  recordResponses,
  sign,
} from './support.js';

const tally: Record<string, { attempts: number; refused: number }> = {};
function count(category: string, refused: boolean): void {
  tally[category] ??= { attempts: 0, refused: 0 };
  tally[category].attempts++;
  if (refused) tally[category].refused++;
}

/** Bytes, percent-encoded one by one: any string (lone surrogates included) becomes a path segment. */
function segment(value: string): string {
  return [...Buffer.from(value, 'utf8')].map((byte) => `%${byte.toString(16).padStart(2, '0')}`).join('');
}

const bank = await testApp({
  RATE_LIMIT_TRANSFERS_PER_MINUTE: '100000',
  RISK_VELOCITY_COUNT: '0',
  RISK_NEW_PAYEE_AMOUNT: '0',
  RISK_NEW_ACCOUNT_AMOUNT: '0',
  REVIEW_THRESHOLD: '500.00',
});
const responses = recordResponses(bank.app);

describe('hardening', () => {
  let alice: Customer;
  let bob: Customer;
  let auditor: Client & { user: { id: string } };
  let bobTransfer: string;
  let pendingTransfer: string;

  beforeAll(async () => {
    alice = await bank.customer('5000.00');
    bob = await bank.customer('5000.00');
    auditor = await bank.user('auditor');
    // Bob's own transfer, between his two accounts: alice has no part in it.
    const second = await bank.admin.post(`/accounts/?user_id=${bob.user.id}`, {});
    const own = await bob.post('/transactions/transfer', {
      from_account: bob.account.account_number,
      to_account: second.data.account_number,
      amount: '10.00',
    });
    expect(own.statusCode, own.body).toBe(201);
    bobTransfer = own.data.id;
    const held = await bob.post('/transactions/transfer', {
      from_account: bob.account.account_number,
      to_account: alice.account.account_number,
      amount: '600.00',
    });
    expect(held.data.status).toBe('pending_review');
    pendingTransfer = held.data.id;
  });

  describe('request sizes (API4)', () => {
    const big = (bytes: number) => JSON.stringify({ email: 'a@bank.test', password: 'x'.repeat(bytes) });

    it('answers 413 payload_too_large problem+json to a 3 MB body and to a 70 KB one (the limit is 64 KiB)', async () => {
      for (const size of [3 * 1024 * 1024, 70 * 1024]) {
        const response = await bank.anonymous.post('/auth/login', big(size), { 'content-type': 'application/json' });
        expectProblem(response, 413, 'payload_too_large');
        count('body size', true);
        const form = await bank.anonymous.post('/auth/login', `username=a%40bank.test&password=${'x'.repeat(size)}`, {
          'content-type': 'application/x-www-form-urlencoded',
        });
        expectProblem(form, 413, 'payload_too_large');
        count('body size', true);
      }
      // Just under the limit the body is read, and refused for what it says.
      expectProblem(
        await bank.anonymous.post('/auth/login', big(60 * 1024), { 'content-type': 'application/json' }),
        422,
        'validation_error',
      );
    });

    it('refuses an oversized transfer body with 413 and moves nothing', async () => {
      const before = await ledgerSnapshot(bank);
      const body = {
        from_account: alice.account.account_number,
        to_account: bob.account.account_number,
        amount: '1.00',
        description: 'd'.repeat(70 * 1024),
      };
      expectProblem(await alice.post('/transactions/transfer', body), 413, 'payload_too_large');
      count('body size', true);
      // Anonymous: the token is checked before the body is read.
      const anonymous = await bank.anonymous.post('/transactions/transfer', body);
      expect([401, 413]).toContain(anonymous.statusCode);
      count('body size', true);
      expect(await ledgerSnapshot(bank)).toEqual(before);
    });

    it('survives deeply nested JSON inside the limit', async () => {
      const depth = 20_000;
      const nested = `{"from_account":"${alice.account.account_number}","to_account":"${bob.account.account_number}","amount":${'['.repeat(depth)}${']'.repeat(depth)}}`;
      const response = await alice.post('/transactions/transfer', nested, { 'content-type': 'application/json' });
      expect([400, 422], response.body).toContain(response.statusCode);
      count('body size', true);
    });

    it('refuses a page size above 100 (and below 1) with 422 on every list', async () => {
      for (const list of ['/users', '/accounts/', '/transactions/', '/transactions/flagged', '/audit-logs']) {
        for (const limit of ['101', '0', '-1', '1000000000', '1.5', 'abc']) {
          expectProblem(await bank.admin.get(`${list}?limit=${limit}`), 422, 'validation_error');
          count('page size', true);
        }
        expect((await bank.admin.get(`${list}?limit=100`)).statusCode).toBe(200);
      }
    });
  });

  describe('forged and misplaced tokens (API2)', () => {
    let claims: JWTPayload;
    let adminClaims: JWTPayload;
    let forgeries: Array<[string, string]>;
    beforeAll(async () => {
      claims = decodeJwt(alice.token!);
      adminClaims = decodeJwt(bank.admin.token!);
      const [header, payload, signature] = bank.admin.token!.split('.') as [string, string, string];
      const now = Math.floor(Date.now() / 1000);
      const attackerKey = new TextEncoder().encode('attacker-chosen-secret-at-least-32-bytes!');
      const without = (claim: string) => Object.fromEntries(Object.entries(adminClaims).filter(([key]) => key !== claim));
      forgeries = [
        ['alg none', `${base64url({ alg: 'none', typ: 'JWT' })}.${payload}.`],
        ['alg None', `${base64url({ alg: 'None', typ: 'JWT' })}.${payload}.`],
        ['alg NONE, kept signature', `${base64url({ alg: 'NONE', typ: 'JWT' })}.${payload}.${signature}`],
        ['customer payload under the admin signature', `${header}.${alice.token!.split('.')[1]}.${signature}`],
        [
          'role raised, old signature',
          `${alice.token!.split('.')[0]}.${base64url({ ...claims, role: 'admin' })}.${alice.token!.split('.')[2]}`,
        ],
        ['empty signature', `${header}.${payload}.`],
        ['wrong secret', await sign(adminClaims, 'HS256', attackerKey)],
        [
          'wrong secret, jwk header',
          await sign(adminClaims, 'HS256', attackerKey, { jwk: { kty: 'oct', k: Buffer.from(attackerKey).toString('base64url') } }),
        ],
        ['wrong secret, kid path traversal', await sign(adminClaims, 'HS256', attackerKey, { kid: '../../../../dev/null' })],
        ['HS512 with the right secret', await sign(adminClaims, 'HS512')],
        ['expired', await sign({ ...adminClaims, iat: now - 7200, exp: now - 3600 })],
        ['not before in the future', await sign({ ...adminClaims, nbf: now + 3600 })],
        ['without jti', await sign(without('jti'))],
        ['without role', await sign(without('role'))],
        ['without sub', await sign(without('sub'))],
        ['without exp', await sign(without('exp'))],
        ['unknown role', await sign({ ...adminClaims, role: 'superadmin' })],
        ['jti never issued', await sign({ ...adminClaims, jti: randomUUID() })],
        ['garbage', 'garbage'],
        ['three empty parts', '..'],
        ['huge', `${header}.${base64url({ ...adminClaims, pad: 'x'.repeat(6000) })}.${signature}`],
      ];
    });

    it('refuses every forgery with 401 on every kind of endpoint, and nothing changes', async () => {
      const before = await ledgerSnapshot(bank);
      const users = (await bank.database.handle.db.selectFrom('users').select('id').execute()).length;
      const targets: Array<[string, string, unknown]> = [
        ['GET', '/auth/me', undefined],
        ['GET', '/users', undefined],
        ['GET', '/audit-logs', undefined],
        [
          'POST',
          '/auth/register',
          { name: 'Mallory', email: `mallory-${randomUUID()}@bank.test`, password: 'mallory-password', role: 'admin' },
        ],
        ['PATCH', `/users/${bob.user.id}`, { is_active: false }],
        ['POST', `/accounts/${alice.account.id}/deposit`, { amount: '1000.00' }],
        ['POST', `/transactions/${pendingTransfer}/approve`, {}],
        [
          'POST',
          '/transactions/transfer',
          { from_account: bob.account.account_number, to_account: alice.account.account_number, amount: '1.00' },
        ],
      ];
      for (const [name, token] of forgeries) {
        for (const [method, url, body] of targets) {
          const response = await bank.anonymous.request(method as 'GET', url, body, bearer(token));
          expect(response.statusCode, `${name}: ${method} ${url}: ${response.body}`).toBe(401);
          expectUnauthorized(response);
          count('forged token', true);
        }
      }
      expect(await ledgerSnapshot(bank)).toEqual(before);
      expect((await bank.database.handle.db.selectFrom('users').select('id').execute()).length).toBe(users);
      expect((await bank.admin.get(`/users/${bob.user.id}`)).data.is_active).toBe(true);
    });

    it('trusts the role in the database, not the claim: a customer’s real token re-signed with role admin is still a customer', async () => {
      const raised = await sign({ ...claims, role: 'admin' });
      expect((await bank.anonymous.get('/auth/me', bearer(raised))).data.role).toBe('customer');
      expectProblem(await bank.anonymous.get('/users', bearer(raised)), 403, 'forbidden');
      expectProblem(
        await bank.anonymous.post(`/accounts/${alice.account.id}/deposit`, { amount: '1000.00' }, bearer(raised)),
        403,
        'forbidden',
      );
      count('forged token', true);
      count('forged token', true);
    });

    it('takes the token only from the Authorization header, as a Bearer', async () => {
      const token = bank.admin.token!;
      const attempts: Array<[string, Record<string, string>]> = [
        [`/users?access_token=${token}`, {}],
        ['/users', { cookie: `access_token=${token}; token=${token}` }],
        ['/users', { authorization: token }],
        ['/users', { authorization: `Token ${token}` }],
        ['/users', { authorization: `Basic ${Buffer.from(`admin:${token}`).toString('base64')}` }],
        ['/users', { authorization: `Bearer ${token} ${token}` }],
        ['/users', { 'x-access-token': token }],
      ];
      for (const [url, headers] of attempts) {
        expectUnauthorized(await bank.anonymous.get(url, headers));
        count('forged token', true);
      }
    });
  });

  describe('security headers and CORS (API8)', () => {
    const preflight = (app: FastifyInstance, origin: string) =>
      app.inject({
        method: 'OPTIONS',
        url: '/transactions/transfer',
        headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
      });

    it('sends no CORS headers by default, whatever the Origin', async () => {
      for (const origin of ['https://evil.example.com', 'https://app.example.com', 'null']) {
        const simple = await bank.app.inject({ method: 'GET', url: '/health', headers: { origin } });
        expect(simple.statusCode).toBe(200);
        expect(simple.headers['access-control-allow-origin']).toBeUndefined();
        expect(simple.headers['access-control-allow-credentials']).toBeUndefined();
        const withToken = await bank.app.inject({ method: 'GET', url: '/auth/me', headers: { origin, ...bearer(alice.token!) } });
        expect(withToken.headers['access-control-allow-origin']).toBeUndefined();
        const pre = await preflight(bank.app, origin);
        expect(pre.headers['access-control-allow-origin']).toBeUndefined();
        expect(pre.headers['access-control-allow-methods']).toBeUndefined();
        count('cors', true);
      }
    });

    // Fixed bug: @fastify/cors's preflight route OPTIONS * declared no config.access, and the access
    // rules' onRoute hook refused it, so the app did not start with CORS_ORIGINS set.
    it('with CORS_ORIGINS allows exactly the listed origin', async () => {
      const corsApp = await buildApp({
        config: testConfig({ CORS_ORIGINS: 'https://app.example.com' }),
        database: bank.database.handle,
        logger: false,
      });
      try {
        const allowed = await corsApp.inject({
          method: 'GET',
          url: '/auth/me',
          headers: { origin: 'https://app.example.com', ...bearer(alice.token!) },
        });
        expect(allowed.statusCode).toBe(200);
        expect(allowed.headers['access-control-allow-origin']).toBe('https://app.example.com');
        expect(String(allowed.headers.vary)).toMatch(/origin/i);
        expectSecurityHeaders(allowed);
        const pre = await preflight(corsApp, 'https://app.example.com');
        expect(pre.statusCode).toBe(204);
        expect(pre.headers['access-control-allow-origin']).toBe('https://app.example.com');
        for (const origin of [
          'https://evil.example.com',
          'http://app.example.com',
          'https://app.example.com.evil.com',
          'https://evil-app.example.com',
          'https://app.example.com:8443',
          'null',
          'https://APP.EXAMPLE.COM.evil.com',
        ]) {
          for (const response of [
            await corsApp.inject({ method: 'GET', url: '/health', headers: { origin } }),
            await preflight(corsApp, origin),
          ]) {
            const echoed = response.headers['access-control-allow-origin'];
            expect(echoed === undefined || echoed === 'https://app.example.com', `${origin}: ${String(echoed)}`).toBe(true);
            expect(response.headers['access-control-allow-credentials']).toBeUndefined();
          }
        }
      } finally {
        await corsApp.close();
      }
    });

    // Fixed bug: the access hook ran before helmet's and threw first, so its 401 and 403 lacked the headers.
    it('puts the security headers on 401 and 403 answers too', async () => {
      expectSecurityHeaders(await bank.anonymous.get('/users'));
      expectSecurityHeaders(await bank.anonymous.get('/users', bearer('a.b.c')));
      expectSecurityHeaders(await alice.get('/users'));
    });

    it('sends Strict-Transport-Security in production only, on every answer, with the same policy for every request', async () => {
      expect((await bank.anonymous.get('/health')).headers['strict-transport-security']).toBeUndefined();
      const productionApp = await buildApp({
        config: testConfig({ NODE_ENV: 'production' }),
        database: bank.database.handle,
        logger: false,
      });
      try {
        const answers = [
          await productionApp.inject({ method: 'GET', url: '/health' }),
          await productionApp.inject({ method: 'GET', url: '/users' }),
          await productionApp.inject({ method: 'GET', url: '/no-such-path' }),
          await productionApp.inject({ method: 'GET', url: '/health' }),
        ];
        expect(answers.map((answer) => answer.statusCode)).toEqual([200, 401, 404, 200]);
        for (const answer of answers) {
          expectSecurityHeaders(answer);
          expect(answer.headers['strict-transport-security']).toMatch(/^max-age=\d+; includeSubDomains$/);
          expect(answer.headers['content-security-policy']).toBe(answers[0]!.headers['content-security-policy']);
        }
      } finally {
        await productionApp.close();
      }
    });
  });

  describe('hostile input, property-based (never a 500; a refusal moves nothing)', () => {
    const RUNS = { numRuns: 100 };

    /** Calls, then checks: below 500, and when refused, not a cent or a row of the ledger changed. */
    async function mutating(category: string, call: () => Promise<Response>): Promise<void> {
      const before = await ledgerSnapshot(bank);
      const response = await call();
      expect(response.statusCode, response.body).toBeLessThan(500);
      const after = await ledgerSnapshot(bank);
      expect(after.sum).toBe(0n);
      if (response.statusCode >= 300) expect(after).toEqual(before);
      count(category, response.statusCode >= 400);
    }

    async function reading(category: string, call: () => Promise<Response>): Promise<void> {
      const response = await call();
      expect(response.statusCode, response.body).toBeLessThan(500);
      count(category, response.statusCode >= 400);
    }

    const anyString = fc.oneof(
      fc.string(),
      fc.string({ unit: 'binary' }),
      fc.string({ unit: 'grapheme' }),
      fc.string({ unit: 'binary-ascii', maxLength: 64 }),
    );
    const amounts = fc.oneof(
      fc.jsonValue(),
      anyString,
      fc.double(),
      fc.integer(),
      fc.stringMatching(/^-?\d{0,15}(\.\d{0,4})?$/),
      fc.constantFrom(
        '1e2',
        '0x10',
        '１２',
        '12.5 ',
        '+1',
        '.5',
        '5.',
        '1_000',
        '999999999999.99',
        '1000000000000',
        'NaN',
        'Infinity',
        '-0',
        '0.001',
      ),
    );
    const ids = fc.oneof(
      anyString,
      fc.uuid(),
      fc.uuid().map((id) => id.toUpperCase()),
      fc.constantFrom(
        '../users',
        '..%2f..%2fetc%2fpasswd',
        "' OR '1'='1",
        '00000000-0000-0000-0000-000000000000',
        '{00000000-0000-0000-0000-000000000000}',
        '%00',
        'null',
        '[]',
      ),
    );
    const accountNumbers = fc.oneof(
      anyString,
      fc.stringMatching(/^\d{10}$/),
      fc.stringMatching(/^\d{9,11}$/),
      fc.constantFrom(NOBODY, ' 1234567890', '１２３４５６７８９０'),
    );

    it('arbitrary amounts in a transfer', async () => {
      await fc.assert(
        fc.asyncProperty(amounts, async (amount) => {
          await mutating('hostile amount', () =>
            alice.post('/transactions/transfer', {
              from_account: alice.account.account_number,
              to_account: bob.account.account_number,
              amount,
            }),
          );
        }),
        RUNS,
      );
    });

    it('arbitrary amounts in a teller deposit and withdrawal', async () => {
      await fc.assert(
        fc.asyncProperty(amounts, fc.boolean(), async (amount, deposit) => {
          await mutating('hostile amount', () =>
            bank.admin.post(`/accounts/${alice.account.id}/${deposit ? 'deposit' : 'withdraw'}`, { amount }),
          );
        }),
        RUNS,
      );
    });

    it('arbitrary principals and terms in a loan application, and amounts in a repayment', async () => {
      if (!bank.app.hasRoute({ method: 'POST', url: '/loans' })) return;
      const loans = async () =>
        (
          await bank.database.handle.db
            .selectFrom('loans' as never)
            .select('id' as never)
            .execute()
        ).length;
      await fc.assert(
        fc.asyncProperty(amounts, fc.oneof(fc.jsonValue(), fc.integer({ min: -5, max: 400 })), async (principal, term) => {
          const before = await loans();
          const response = await alice.post('/loans', { account_id: alice.account.id, principal, term_months: term });
          expect(response.statusCode, response.body).toBeLessThan(500);
          if (response.statusCode >= 300) expect(await loans()).toBe(before);
          count('hostile amount', response.statusCode >= 400);
        }),
        RUNS,
      );
      const applied = await alice.post('/loans', { account_id: alice.account.id, principal: '1000.00', term_months: 12 });
      expect(applied.statusCode, applied.body).toBe(201);
      expect((await bank.admin.post(`/loans/${applied.data.id}/approve`, {})).statusCode).toBe(200);
      await fc.assert(
        fc.asyncProperty(amounts, async (amount) => {
          await mutating('hostile amount', () => alice.post(`/loans/${applied.data.id}/repay`, { amount }));
        }),
        RUNS,
      );
    });

    it('arbitrary JSON as the whole transfer body', async () => {
      await fc.assert(
        fc.asyncProperty(fc.jsonValue(), async (body) => {
          await mutating('hostile body', () =>
            alice.post('/transactions/transfer', JSON.stringify(body), { 'content-type': 'application/json' }),
          );
        }),
        RUNS,
      );
    });

    it('arbitrary account numbers on either side of a transfer', async () => {
      await fc.assert(
        fc.asyncProperty(accountNumbers, fc.boolean(), async (number, asSender) => {
          const body = asSender
            ? { from_account: number, to_account: bob.account.account_number, amount: '1.00' }
            : { from_account: alice.account.account_number, to_account: number, amount: '1.00' };
          await mutating('hostile account number', () => alice.post('/transactions/transfer', body));
        }),
        RUNS,
      );
    });

    it('arbitrary ids in paths, for reads (customer and admin)', async () => {
      const paths: Array<(id: string) => string> = [(id) => `/accounts/${id}`, (id) => `/transactions/${id}`, (id) => `/users/${id}`];
      if (bank.app.hasRoute({ method: 'GET', url: '/loans/:id' })) paths.push((id) => `/loans/${id}`);
      for (const extra of ['balance', 'statement']) {
        if (bank.app.hasRoute({ method: 'GET', url: `/accounts/:id/${extra}` })) paths.push((id) => `/accounts/${id}/${extra}`);
      }
      await fc.assert(
        fc.asyncProperty(ids, fc.constantFrom(...paths), fc.boolean(), async (id, path, asAdmin) => {
          await reading('hostile id', () => (asAdmin ? bank.admin : alice).get(path(segment(id))));
        }),
        RUNS,
      );
    });

    it('arbitrary ids in paths and queries, for changes (admin)', async () => {
      await fc.assert(
        fc.asyncProperty(ids, fc.integer({ min: 0, max: 5 }), async (id, which) => {
          const calls = [
            () => bank.admin.post(`/accounts/${segment(id)}/deposit`, { amount: '1.00' }),
            () => bank.admin.post(`/accounts/${segment(id)}/withdraw`, { amount: '1.00' }),
            () => bank.admin.patch(`/accounts/${segment(id)}`, { status: 'frozen' }),
            () => bank.admin.patch(`/users/${segment(id)}`, { is_active: false }),
            () => bank.admin.post(`/transactions/${segment(id)}/reverse`, { reason: 'fuzz' }),
            () => bank.admin.post(`/accounts/?user_id=${segment(id)}`, { initial_deposit: '1.00' }),
          ];
          await mutating('hostile id', calls[which]!);
        }),
        RUNS,
      );
      // None of them froze or disabled what exists.
      expect((await alice.get(`/accounts/${alice.account.id}`)).data.status).toBe('active');
      expect((await alice.get('/auth/me')).statusCode).toBe(200);
    });

    const queries = () => {
      const list = [
        '/transactions/?account_id=',
        '/accounts/?user_id=',
        '/users?cursor=',
        '/transactions/?cursor=',
        '/transactions/?from=',
        '/users?limit=',
        '/audit-logs?action=',
        '/audit-logs?target_id=',
        '/audit-logs?from=',
      ];
      if (bank.app.hasRoute({ method: 'GET', url: '/loans' })) list.push('/loans?status=', '/loans?cursor=');
      if (bank.app.hasRoute({ method: 'GET', url: '/accounts/:id/balance' })) list.push(`/accounts/${alice.account.id}/balance?at=`);
      if (bank.app.hasRoute({ method: 'GET', url: '/accounts/:id/statement' })) {
        list.push(
          `/accounts/${alice.account.id}/statement?from=`,
          `/accounts/${alice.account.id}/statement?to=`,
          `/accounts/${alice.account.id}/statement?format=`,
        );
      }
      return list;
    };

    it('arbitrary query values on the lists', async () => {
      await fc.assert(
        fc.asyncProperty(anyString, fc.constantFrom(...queries()), async (value, list) => {
          await reading('hostile query', () => bank.admin.get(`${list}${segment(value)}`));
        }),
        RUNS,
      );
    });

    it('arbitrary descriptions and names', async () => {
      await fc.assert(
        fc.asyncProperty(anyString, async (value) => {
          await mutating('hostile text', () =>
            alice.post('/transactions/transfer', {
              from_account: alice.account.account_number,
              to_account: bob.account.account_number,
              amount: '0.01',
              description: value,
            }),
          );
          const renamed = await bank.admin.patch(`/users/${bob.user.id}`, { name: value });
          expect(renamed.statusCode, renamed.body).toBeLessThan(500);
          if (renamed.statusCode === 200) expect(renamed.data.name).toBe(value);
        }),
        RUNS,
      );
    });

    // Fixed bugs: a NUL reached PostgreSQL (which refuses it in text) and a urn:uuid: id passed the uuid
    // format; both answered 500.
    it('refuses a NUL character in a text field or query with 422', async () => {
      expect((await bank.admin.post(`/accounts/${alice.account.id}/deposit`, { amount: '1.00', description: 'a\u0000b' })).statusCode).toBe(
        422,
      );
      expect((await bank.admin.patch(`/users/${bob.user.id}`, { name: 'a\u0000b' })).statusCode).toBe(422);
      expect(
        (await bank.admin.post('/auth/register', { name: 'a\u0000b', email: 'nul@bank.test', password: 'password-123' })).statusCode,
      ).toBe(422);
      expect((await bank.admin.get('/audit-logs?target_id=a%00b')).statusCode).toBe(422);
    });

    // Fixed bug: a lone UTF-16 surrogate in a transfer's description reached PostgreSQL's jsonb input
    // (the stored answer, the audit details), which refuses it: a 500.
    it('refuses text that is not well-formed Unicode (a lone surrogate) with 422, moving nothing', async () => {
      for (const description of ['\ud800', 'a\udc00b', 'end\ud83d']) {
        const withKey: Record<string, string> = { 'idempotency-key': `lone-surrogate-${description.length}-${Math.random()}` };
        for (const headers of [{}, withKey]) {
          const before = await ledgerSnapshot(bank);
          const refused = await alice.post(
            '/transactions/transfer',
            { from_account: alice.account.account_number, to_account: bob.account.account_number, amount: '0.01', description },
            headers,
          );
          expect(refused.statusCode, refused.body).toBe(422);
          expect(refused.data).toMatchObject({ code: 'validation_error' });
          expect(await ledgerSnapshot(bank)).toEqual(before);
        }
      }
      expect((await bank.admin.patch(`/users/${bob.user.id}`, { name: 'x\ud800' })).statusCode).toBe(422);
      expect((await bank.admin.get('/audit-logs?target_id=%ED%A0%80')).statusCode).toBeLessThan(500);
    });

    it('refuses an id of the form urn:uuid:<uuid> with 422', async () => {
      expect((await bank.admin.get(`/accounts/urn:uuid:${alice.account.id}`)).statusCode).toBe(422);
      expect((await bank.admin.get(`/users/urn:uuid:${alice.user.id}`)).statusCode).toBe(422);
      expect((await bank.admin.get(`/transactions/urn:uuid:${bobTransfer}`)).statusCode).toBe(422);
    });
  });

  describe('object-level authorization (API1)', () => {
    it('answers another customer’s account, transaction and user 404, exactly like ones that do not exist', async () => {
      const probes: Array<[string, string]> = [
        [`/accounts/${bob.account.id}`, `/accounts/${randomUUID()}`],
        [`/accounts/${bob.account.id.toUpperCase()}`, `/accounts/${randomUUID()}`],
        [`/transactions/${bobTransfer}`, `/transactions/${randomUUID()}`],
        [`/transactions/${bobTransfer.toUpperCase()}`, `/transactions/${randomUUID()}`],
        [`/users/${bob.user.id}`, `/users/${randomUUID()}`],
        [`/transactions/?account_id=${bob.account.id}`, `/transactions/?account_id=${randomUUID()}`],
      ];
      for (const extra of ['balance', 'statement']) {
        if (bank.app.hasRoute({ method: 'GET', url: `/accounts/:id/${extra}` })) {
          probes.push([`/accounts/${bob.account.id}/${extra}`, `/accounts/${randomUUID()}/${extra}`]);
        }
      }
      for (const [foreign, missing] of probes) {
        const theirs = await alice.get(foreign);
        const nobodys = await alice.get(missing);
        expectProblem(theirs, 404, 'not_found');
        expect(theirs.data, foreign).toEqual({ ...nobodys.data, detail: theirs.data.detail });
        expect(theirs.data.detail.replace(/[0-9a-f-]{36}/gi, 'ID')).toBe(nobodys.data.detail.replace(/[0-9a-f-]{36}/gi, 'ID'));
        count('BOLA', true);
      }
      // Sending from bob's account by its number.
      const before = await ledgerSnapshot(bank);
      const stolen = await alice.post('/transactions/transfer', {
        from_account: bob.account.account_number,
        to_account: alice.account.account_number,
        amount: '100.00',
      });
      expectProblem(stolen, 404, 'account_not_found');
      const fake = await alice.post('/transactions/transfer', {
        from_account: NOBODY,
        to_account: alice.account.account_number,
        amount: '100.00',
      });
      // The detail names the number the caller sent, and nothing else differs.
      const numberless = (data: Record<string, unknown>) => ({ ...data, detail: String(data.detail).replace(/\d{10}/g, 'N') });
      expect(numberless(stolen.data)).toEqual(numberless(fake.data));
      count('BOLA', true);
      expect(await ledgerSnapshot(bank)).toEqual(before);
      if (bank.app.hasRoute({ method: 'POST', url: '/loans' })) {
        const loan = await bob.post('/loans', { account_id: bob.account.id, principal: '100.00', term_months: 6 });
        expect(loan.statusCode, loan.body).toBe(201);
        const theirs = await alice.get(`/loans/${loan.data.id}`);
        expectProblem(theirs, 404, 'not_found');
        expect(theirs.data).toEqual((await alice.get(`/loans/${randomUUID()}`)).data);
        expectProblem(await alice.post(`/loans/${loan.data.id}/repay`, { amount: '1.00' }), 404, 'not_found');
        const onBobsAccount = await alice.post('/loans', { account_id: bob.account.id, principal: '100.00', term_months: 6 });
        expectProblem(onBobsAccount, 404, 'account_not_found');
        const list = await alice.get('/loans?limit=100');
        expect(list.data.items.map((l: { id: string }) => l.id)).not.toContain(loan.data.id);
        for (let i = 0; i < 4; i++) count('BOLA', true);
      }
      // Bob's things are not in alice's lists either.
      const list = await alice.get('/transactions/?limit=100');
      expect(list.data.items.map((t: { id: string }) => t.id)).not.toContain(bobTransfer);
      const accounts = await alice.get(`/accounts/?user_id=${bob.user.id}`);
      expect(accounts.data.items.every((a: { user_id: string }) => a.user_id === alice.user.id)).toBe(true);
      count('BOLA', true);
    });
  });

  describe('function-level authorization (API5)', () => {
    it('refuses a customer and an auditor every admin change, on real objects with valid bodies, and nothing changes', async () => {
      const before = await ledgerSnapshot(bank);
      const usersBefore = await bank.database.handle.db.selectFrom('users').selectAll().orderBy('id').execute();
      const accountsBefore = await bank.database.handle.db.selectFrom('accounts').selectAll().orderBy('id').execute();
      const calls: Array<[string, string, unknown]> = [
        [
          'POST',
          '/auth/register',
          { name: 'Shadow Admin', email: `shadow-${randomUUID()}@bank.test`, password: 'shadow-password', role: 'admin' },
        ],
        ['PATCH', `/users/${alice.user.id}`, { name: 'Self Renamed' }],
        ['PATCH', `/users/${bob.user.id}`, { is_active: false }],
        ['POST', `/accounts/?user_id=${alice.user.id}`, { initial_deposit: '1000000.00' }],
        ['PATCH', `/accounts/${alice.account.id}`, { daily_limit: '999999999.00' }],
        ['PATCH', `/accounts/${bob.account.id}`, { status: 'frozen' }],
        ['POST', `/accounts/${alice.account.id}/deposit`, { amount: '1000.00' }],
        ['POST', `/accounts/${bob.account.id}/withdraw`, { amount: '1000.00' }],
        ['POST', `/transactions/${pendingTransfer}/approve`, { note: 'self-approved' }],
        ['POST', `/transactions/${pendingTransfer}/reject`, { reason: 'self-rejected' }],
        ['POST', `/transactions/${bobTransfer}/reverse`, { reason: 'give it back' }],
      ];
      for (const action of ['approve', 'reject']) {
        if (bank.app.hasRoute({ method: 'POST', url: `/loans/:id/${action}` }))
          calls.push(['POST', `/loans/${randomUUID()}/${action}`, { reason: 'x' }]);
      }
      for (const caller of [alice, auditor, bob]) {
        for (const [method, url, body] of calls) {
          const response = await caller.request(method as 'POST', url, body, { 'idempotency-key': randomUUID() });
          expectProblem(response, 403, 'forbidden');
          count('BFLA', true);
        }
      }
      expect(await ledgerSnapshot(bank)).toEqual(before);
      expect(await bank.database.handle.db.selectFrom('users').selectAll().orderBy('id').execute()).toEqual(usersBefore);
      expect(await bank.database.handle.db.selectFrom('accounts').selectAll().orderBy('id').execute()).toEqual(accountsBefore);
      expect((await bank.admin.get(`/transactions/${pendingTransfer}`)).data.status).toBe('pending_review');
    });
  });

  it('never answered a password hash or a stack trace, in any of the answers of this file', () => {
    expect(responses.length).toBeGreaterThan(500);
    for (const response of responses) expectNoLeak(response);
  });

  it('put the security headers on every answer of this file, errors included', () => {
    const statuses = new Set(responses.map((r) => r.statusCode));
    for (const status of [200, 201, 401, 403, 404, 413, 422]) expect(statuses).toContain(status);
    expect(responses.length).toBeGreaterThan(500);
    for (const response of responses) expectSecurityHeaders(response);
  });
});

function expectSecurityHeaders(response: LightMyRequestResponse): void {
  const where = `${response.statusCode} ${response.body.slice(0, 120)}`;
  const csp = String(response.headers['content-security-policy'] ?? '');
  expect(csp, where).toMatch(/default-src 'self'/);
  expect(csp, where).toMatch(/object-src 'none'/);
  expect(response.headers['x-content-type-options'], where).toBe('nosniff');
  const framing = response.headers['x-frame-options'] !== undefined || /frame-ancestors 'none'/.test(csp);
  expect(framing, where).toBe(true);
  expect(response.headers['referrer-policy'], where).toBeDefined();
  expect(response.headers['x-powered-by'], where).toBeUndefined();
  expect(response.headers['x-request-id'], where).toBeDefined();
}

afterAll(() => {
  const lines = Object.entries(tally).map(([category, { attempts, refused }]) => `  ${category}: ${attempts} tried, ${refused} refused`);
  console.info(`hardening:\n${lines.join('\n')}`);
});
