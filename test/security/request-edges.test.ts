/**
 * What an outside probe found answered 500, moved money it should not have, or told a newcomer
 * nothing useful: forged cursors and out-of-range dates, tokens whose claims have the wrong type,
 * bodies that are not JSON, the Bearer scheme in other letter cases, JSON numbers that a double
 * rounds, and the messages of the mistakes people make first.
 */
import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { testApp, type Customer, type TestApp } from '../helpers/app.js';
import { base64url, bearer, expectProblem, expectUnauthorized, ledgerSnapshot, sign } from './support.js';

let bank: TestApp;
let alice: Customer;
let bob: Customer;

beforeAll(async () => {
  bank = await testApp();
  alice = await bank.customer('500.00');
  bob = await bank.customer();
});

const transferBody = (amount: string) =>
  `{"from_account":"${alice.account.account_number}","to_account":"${bob.account.account_number}","amount":${amount}}`;

describe('cursors the service did not issue', () => {
  const lists = ['/users', '/accounts/', '/transactions/', '/transactions/flagged', '/audit-logs', '/loans'];
  const forged = [
    base64url(['2026-01-01T00:00:00.000Z', '-'.repeat(36)]),
    base64url(['2026-01-01T00:00:00.000Z', '0123456789abcdef0123456789abcdef0123']),
    base64url(['-271821-04-20T00:00:00.000Z', randomUUID()]),
    base64url(['+275760-09-13T00:00:00.000Z', randomUUID()]),
    base64url(['0000-01-01T00:00:00.000Z', randomUUID()]),
    base64url(['2026-01-01', randomUUID()]),
    base64url(['2026-01-01T00:00:00.000Z', randomUUID().toUpperCase()]),
    base64url(['2026-01-01T00:00:00.000Z', randomUUID(), 'extra']),
    base64url({ at: '2026-01-01T00:00:00.000Z', id: randomUUID() }),
    base64url(null),
    'not-base64-at-all!',
  ];

  it.each(lists)('%s answers 422 validation_error for each forged cursor', async (list) => {
    for (const cursor of forged) {
      const response = await bank.admin.get(`${list}?cursor=${encodeURIComponent(cursor)}`);
      expectProblem(response, 422, 'validation_error');
      expect(response.data.errors).toEqual([{ field: 'cursor', message: 'is not a cursor this service issued' }]);
    }
  });

  it('still follows the cursors it issued', async () => {
    const first = await bank.admin.get('/audit-logs?limit=1');
    expect(first.statusCode).toBe(200);
    const second = await bank.admin.get(`/audit-logs?limit=1&cursor=${first.data.next_cursor}`);
    expect(second.statusCode, second.body).toBe(200);
    expect(second.data.items[0].id).not.toBe(first.data.items[0].id);
  });
});

describe('dates and instants outside what the database holds', () => {
  it.each(['/transactions/', '/audit-logs'])('%s refuses from/to of 0000-01-01 with 422', async (list) => {
    for (const query of ['from=0000-01-01', 'to=0000-01-01', 'from=0000-01-01&to=2026-01-01']) {
      expectProblem(await bank.admin.get(`${list}?${query}`), 422, 'validation_error');
    }
  });

  it('refuses a statement period starting in year 0000, or ending in year 10000, with 422', async () => {
    expectProblem(await alice.get(`/accounts/${alice.account.id}/statement?from=0000-01-01&to=0000-01-31`), 422, 'validation_error');
    for (const format of ['json', 'csv', 'pdf']) {
      const response = await alice.get(`/accounts/${alice.account.id}/statement?from=9999-12-31&to=9999-12-31&format=${format}`);
      expectProblem(response, 422, 'validation_error');
      expect(response.data.errors).toEqual([{ field: 'to', message: 'must be 9999-12-30 or earlier' }]);
    }
  });

  it('answers a path parameter that is not UTF-8, or too long, with problem+json', async () => {
    for (const [segment, status] of [
      ['%ED%A0%80', 400],
      ['%FF%FE', 400],
      ['a'.repeat(5000), 422],
    ] as const) {
      const response = await bank.admin.get(`/accounts/${segment}`);
      expect(response.statusCode).toBe(status);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.headers['x-request-id']).toEqual(expect.any(String));
    }
  });

  it('refuses a leap second and instants outside years 0001 to 9999 in balance?at=', async () => {
    for (const at of ['2016-12-31T23:59:60Z', '0000-01-01T00:00:00Z', '0001-01-01T00:00:00+14:00']) {
      const response = await alice.get(`/accounts/${alice.account.id}/balance?at=${encodeURIComponent(at)}`);
      expectProblem(response, 422, 'validation_error');
      expect(response.data.errors[0].field).toBe('at');
    }
    expect((await alice.get(`/accounts/${alice.account.id}/balance?at=2016-12-31T23:59:59Z`)).statusCode).toBe(200);
  });
});

describe('access tokens', () => {
  const claimsOf = (overrides: Record<string, unknown>) => {
    const now = Math.floor(Date.now() / 1000);
    return { sub: alice.user.id, role: 'customer', jti: randomUUID(), iat: now, exp: now + 600, ...overrides };
  };

  it('refuses, with 401 on every route, a correctly signed token whose claims have the wrong type', async () => {
    const forgeries = [
      { sub: 'not-a-uuid' },
      { sub: 12345 },
      { jti: 'not-a-uuid' },
      { jti: 7 },
      { role: 'superuser' },
      { role: ['customer'] },
      { iat: 'yesterday' },
    ];
    for (const overrides of forgeries) {
      const token = await sign(claimsOf(overrides));
      const transfer = await bank.anonymous.request('POST', '/transactions/transfer', transferBody('"1.00"'), {
        ...bearer(token),
        'content-type': 'application/json',
      });
      expectUnauthorized(transfer);
      expect(transfer.data.detail).toBe('The access token is malformed');
      expectUnauthorized(await bank.anonymous.get('/accounts/', bearer(token)));
    }
  });

  it('accepts the Bearer scheme in any letter case, and more than one space before the token (RFC 6750: 1*SP)', async () => {
    for (const header of [`bearer ${alice.token}`, `BEARER ${alice.token}`, `bEaReR ${alice.token}`, `Bearer  ${alice.token}`]) {
      const response = await bank.anonymous.get('/auth/me', { authorization: header });
      expect(response.statusCode, response.body).toBe(200);
    }
  });

  it('says what is wrong with the token, with the code unauthorized', async () => {
    const cases: Array<[Record<string, string>, string]> = [
      [{}, 'A bearer access token is required (Authorization: Bearer <token>)'],
      [{ authorization: `Basic ${Buffer.from('a:b').toString('base64')}` }, 'The Authorization header must use the Bearer scheme'],
      [{ authorization: 'Bearer abc' }, 'The access token is malformed'],
      [{ authorization: 'Bearer' }, 'The access token is malformed'],
      [{ authorization: 'Bearer a.b.c' }, 'The access token is malformed'],
    ];
    for (const [headers, detail] of cases) {
      const response = await bank.anonymous.get('/auth/me', headers);
      expectUnauthorized(response);
      expect(response.data.detail).toBe(detail);
    }
    const expired = await sign(claimsOf({ iat: 1_000_000, exp: 1_000_600 }));
    const response = await bank.anonymous.get('/auth/me', bearer(expired));
    expectUnauthorized(response);
    expect(response.data.detail).toBe('The access token has expired');
  });
});

describe('media types', () => {
  it('refuses a form-encoded transfer with 415 and moves nothing', async () => {
    const before = await ledgerSnapshot(bank);
    const response = await bank.anonymous.request(
      'POST',
      '/transactions/transfer',
      `from_account=${alice.account.account_number}&to_account=${bob.account.account_number}&amount=1.00`,
      { ...bearer(alice.token!), 'content-type': 'application/x-www-form-urlencoded' },
    );
    expectProblem(response, 415, 'unsupported_media_type');
    expect(response.data.detail).toBe(
      'The body is application/x-www-form-urlencoded; this endpoint takes JSON (content-type: application/json)',
    );
    expect(await ledgerSnapshot(bank)).toEqual(before);
  });

  it('refuses form-encoded bodies on every route but login', async () => {
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    expectProblem(await bank.admin.post('/auth/register', 'name=x&email=x%40y.z&password=password-1', form), 415, 'unsupported_media_type');
    expectProblem(await bank.admin.post(`/accounts/${alice.account.id}/deposit`, 'amount=1.00', form), 415, 'unsupported_media_type');
    expectProblem(await bank.anonymous.post('/auth/refresh', 'refresh_token=x', form), 415, 'unsupported_media_type');
    const login = await bank.anonymous.post(
      '/auth/login',
      `username=${encodeURIComponent(alice.user.email)}&password=${alice.password}`,
      form,
    );
    expect(login.statusCode, login.body).toBe(200);
  });

  it('says so when a body comes without a content-type', async () => {
    const response = await bank.app.inject({
      method: 'POST',
      url: '/transactions/transfer',
      headers: bearer(alice.token!),
      payload: Buffer.from(transferBody('"1.00"')),
    });
    expectProblem(response, 415, 'unsupported_media_type');
    expect(JSON.parse(response.body).detail).toBe(
      'The request has a body but no content-type; send it as JSON with content-type: application/json',
    );
  });
});

describe('JSON numbers', () => {
  const transfer = (amount: string) => alice.post('/transactions/transfer', transferBody(amount), { 'content-type': 'application/json' });

  it('judges an amount written as a JSON number by its digits, not by the double it rounds to', async () => {
    const before = await ledgerSnapshot(bank);
    for (const [amount, message] of [
      ['10.000000000000000001', 'must have at most two decimal places'],
      ['9.999999999999999999', 'must have at most two decimal places'],
      ['12345678901234567890', 'must not exceed 999999999999.99'],
      ['1234567890123456789012345678901', 'must not exceed 999999999999.99'],
    ]) {
      const response = await transfer(amount!);
      expectProblem(response, 422, 'validation_error');
      expect(response.data.errors).toEqual([{ field: 'amount', message }]);
    }
    expect(await ledgerSnapshot(bank)).toEqual(before);
  });

  it('takes a JSON number that a double holds exactly', async () => {
    const response = await transfer('1.25');
    expect(response.statusCode, response.body).toBe(201);
    expect(response.data.amount).toBe('1.25');
  });

  it('refuses an integer field given more digits than a double holds', async () => {
    const response = await alice.post(
      '/loans',
      `{"account_id":"${alice.account.id}","principal":"100.00","term_months":12000000000000000001}`,
      {
        'content-type': 'application/json',
      },
    );
    expectProblem(response, 422, 'validation_error');
  });

  it('answers 400 for a body that is not JSON, or nests too deeply', async () => {
    expectProblem(await transfer('"1.00",'), 400, 'bad_request');
    const depth = 20_000;
    expectProblem(await transfer(`${'['.repeat(depth)}${']'.repeat(depth)}`), 400, 'bad_request');
  });
});

describe('messages for the first mistakes', () => {
  const transfer = (amount: unknown) =>
    alice.post('/transactions/transfer', { from_account: alice.account.account_number, to_account: bob.account.account_number, amount });

  it('says that an amount above the maximum is above the maximum', async () => {
    const response = await transfer('1000000000000.00');
    expectProblem(response, 422, 'validation_error');
    expect(response.data.detail).toBe('amount must not exceed 999999999999.99');
  });

  it('gives a 31-digit amount one message', async () => {
    const response = await transfer(`${'9'.repeat(31)}.00`);
    expect(response.data.errors).toEqual([{ field: 'amount', message: 'must not exceed 999999999999.99' }]);
  });

  it('gives a value of neither accepted type one message', async () => {
    for (const amount of [true, [], {}, null]) {
      const response = await transfer(amount);
      expectProblem(response, 422, 'validation_error');
      expect(response.data.errors).toEqual([{ field: 'amount', message: 'must be a string or a number' }]);
      expect(response.data.detail).toBe('amount must be a string or a number');
    }
  });
});
