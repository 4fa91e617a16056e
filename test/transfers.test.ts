import { randomUUID } from 'node:crypto';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { sql } from 'kysely';
import { beforeAll, describe, expect, it } from 'vitest';
import { luhnCheckDigit } from '../src/accounts/account-number.js';
import { testApp, type Client, type Customer, type Response, type TestApp } from './helpers/app.js';

const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;
// A valid Luhn number that no account has: generated numbers never start with 0.
const NOBODY = `000000001${luhnCheckDigit('000000001')}`;

/** Every response the app gives in this file, so the last tests can check their common properties. */
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

function expectProblem(response: Response, status: number, code: string): void {
  expect(response.statusCode, response.body).toBe(status);
  expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(response.data).toMatchObject({ status, code, type: expect.any(String), title: expect.any(String), detail: expect.any(String) });
}

function fieldsOf(response: Response): string[] {
  return (response.data.errors ?? []).map((error: { field: string }) => error.field);
}

/** The same number with a wrong check digit. */
function breakLuhn(number: string): string {
  return number.slice(0, 9) + String((Number(number[9]) + 1) % 10);
}

describe('transfers', () => {
  let bank: TestApp;
  let responses: LightMyRequestResponse[];
  let auditor: Client & { user: { id: string } };

  const balanceOf = async (customer: Customer) => (await customer.get(`/accounts/${customer.account.id}`)).data.balance as string;
  const send = (from: Customer, to: { account: { account_number: string } }, amount: unknown, extra: Record<string, unknown> = {}) =>
    from.post('/transactions/transfer', {
      from_account: from.account.account_number,
      to_account: to.account.account_number,
      amount,
      ...extra,
    });
  const countTransactions = async () => (await bank.database.handle.db.selectFrom('transactions').select('id').execute()).length;

  beforeAll(async () => {
    bank = await testApp();
    responses = recordResponses(bank.app);
    auditor = await bank.user('auditor');
  });

  describe('POST /transactions/transfer', () => {
    it('moves money and answers the Transaction with transaction_id equal to id', async () => {
      const alice = await bank.customer('100.00');
      const bob = await bank.customer('5.00');
      const response = await send(alice, bob, '40.10', { description: 'dinner' });
      expect(response.statusCode).toBe(201);
      // Every field docs/api.md names for a Transaction; later features may add more.
      expect(response.data).toMatchObject({
        id: expect.any(String),
        transaction_id: response.data.id,
        type: 'transfer',
        status: 'completed',
        amount: '40.10',
        currency: 'USD',
        from_account: alice.account.account_number,
        to_account: bob.account.account_number,
        description: 'dinner',
        created_by: alice.user.id,
        created_at: expect.stringMatching(ISO_UTC),
        review_reasons: [],
        reviewed_by: null,
        reviewed_at: null,
        review_note: null,
      });
      expect(await balanceOf(alice)).toBe('59.90');
      expect(await balanceOf(bob)).toBe('45.10');
      expect((await alice.get(`/accounts/${alice.account.id}`)).data.available_balance).toBe('59.90');
    });

    it('gives transactions time-ordered ids (UUIDv7): each later one sorts after the one before', async () => {
      const alice = await bank.customer('10.00');
      const bob = await bank.customer();
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) ids.push((await send(alice, bob, '1.00')).data.id);
      const deposit = await bank.admin.post(`/accounts/${alice.account.id}/deposit`, { amount: '1.00' });
      ids.push(deposit.data.id);
      for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect([...ids].sort()).toEqual(ids);
    });

    it('takes the amount as a JSON number', async () => {
      const alice = await bank.customer('100.00');
      const bob = await bank.customer();
      const response = await send(alice, bob, 12.5);
      expect(response.statusCode).toBe(201);
      expect(response.data).toMatchObject({ amount: '12.50', description: null });
      expect(await balanceOf(alice)).toBe('87.50');
      expect(await balanceOf(bob)).toBe('12.50');
    });

    it('sends the whole balance, down to exactly zero', async () => {
      const alice = await bank.customer('33.33');
      const bob = await bank.customer();
      expect((await send(alice, bob, '33.33')).statusCode).toBe(201);
      expect(await balanceOf(alice)).toBe('0.00');
    });

    it('sends between two accounts of the same customer', async () => {
      const alice = await bank.customer('20.00');
      const savings = (await bank.admin.post(`/accounts/?user_id=${alice.user.id}`, { type: 'savings' })).data;
      const response = await send(alice, { account: savings }, '5.00');
      expect(response.statusCode).toBe(201);
      expect((await alice.get(`/accounts/${savings.id}`)).data.balance).toBe('5.00');
    });

    it('writes a balanced journal and a transfer.created audit entry', async () => {
      const alice = await bank.customer('10.00');
      const bob = await bank.customer();
      const response = await send(alice, bob, '3.00');
      const db = bank.database.handle.db;
      const entries = await db
        .selectFrom('journal_entries')
        .selectAll()
        .where('transaction_id', '=', response.data.id)
        .orderBy('amount')
        .execute();
      expect(entries.map((e) => [e.account_id, e.amount, e.balance_after])).toEqual([
        [alice.account.id, -300n, 700n],
        [bob.account.id, 300n, 300n],
      ]);
      const audit = await db
        .selectFrom('audit_log')
        .selectAll()
        .where('action', '=', 'transfer.created')
        .where('target_id', '=', response.data.id)
        .executeTakeFirstOrThrow();
      expect(audit).toMatchObject({ actor_id: alice.user.id, actor_role: 'customer', target_type: 'transaction' });
    });

    it('answers 404 account_not_found for an unknown receiver, and for a sender that is not the caller’s', async () => {
      const alice = await bank.customer('100.00');
      const bob = await bank.customer('100.00');
      const before = await countTransactions();

      expectProblem(await send(alice, { account: { account_number: NOBODY } }, '1.00'), 404, 'account_not_found');
      const stealing = await alice.post('/transactions/transfer', {
        from_account: bob.account.account_number,
        to_account: alice.account.account_number,
        amount: '1.00',
      });
      expectProblem(stealing, 404, 'account_not_found');
      const unknownSender = await alice.post('/transactions/transfer', {
        from_account: NOBODY,
        to_account: bob.account.account_number,
        amount: '1.00',
      });
      expectProblem(unknownSender, 404, 'account_not_found');
      // "Not yours" and "not there" answer alike, so a customer cannot probe which numbers exist.
      expect(stealing.data.detail).toBe(unknownSender.data.detail.replace(NOBODY, bob.account.account_number));

      expect(await balanceOf(alice)).toBe('100.00');
      expect(await balanceOf(bob)).toBe('100.00');
      expect(await countTransactions()).toBe(before);
    });

    it('answers 422 validation_error for the same account on both sides', async () => {
      const alice = await bank.customer('10.00');
      const response = await send(alice, alice, '1.00');
      expectProblem(response, 422, 'validation_error');
      expect(fieldsOf(response)).toContain('to_account');
      expect(await balanceOf(alice)).toBe('10.00');
    });

    it('answers 422 validation_error for a malformed account number', async () => {
      const alice = await bank.customer('10.00');
      const bob = await bank.customer();
      const badTo = await send(alice, { account: { account_number: breakLuhn(bob.account.account_number) } }, '1.00');
      expectProblem(badTo, 422, 'validation_error');
      expect(fieldsOf(badTo)).toContain('to_account');
      const badFrom = await alice.post('/transactions/transfer', {
        from_account: breakLuhn(alice.account.account_number),
        to_account: bob.account.account_number,
        amount: '1.00',
      });
      expectProblem(badFrom, 422, 'validation_error');
      expect(fieldsOf(badFrom)).toContain('from_account');
      for (const number of ['123456789', '12345678901', 'abcdefghij', '', 1234567890]) {
        expectProblem(await send(alice, { account: { account_number: number as string } }, '1.00'), 422, 'validation_error');
      }
      expect(await balanceOf(alice)).toBe('10.00');
    });

    it.each<unknown>(['0', '0.00', '-1', '1.001', 'abc', '', '1e2', 1e21, '1000000000000.00', 0, -1, 0.001, null, true, {}])(
      'answers 422 validation_error for the amount %j',
      async (amount) => {
        const alice = await bank.customer('10.00');
        const bob = await bank.customer();
        const response = await send(alice, bob, amount);
        expectProblem(response, 422, 'validation_error');
        expect(fieldsOf(response).join()).toMatch(/amount/);
        expect(await balanceOf(alice)).toBe('10.00');
      },
    );

    it('answers 422 for missing fields, an unknown field, a long description or no body', async () => {
      const alice = await bank.customer('10.00');
      const bob = await bank.customer();
      const missing = await alice.post('/transactions/transfer', {});
      expectProblem(missing, 422, 'validation_error');
      expect(fieldsOf(missing).sort()).toEqual(['amount', 'from_account', 'to_account']);
      const unknown = await send(alice, bob, '1.00', { currency: 'EUR' });
      expectProblem(unknown, 422, 'validation_error');
      expect(fieldsOf(unknown)).toContain('currency');
      expectProblem(await send(alice, bob, '1.00', { description: 'x'.repeat(501) }), 422, 'validation_error');
      expectProblem(await alice.post('/transactions/transfer'), 422, 'validation_error');
      expect(await balanceOf(alice)).toBe('10.00');
    });

    it('answers 422 insufficient_funds and changes nothing', async () => {
      const alice = await bank.customer('50.00');
      const bob = await bank.customer('1.00');
      const before = await countTransactions();
      expectProblem(await send(alice, bob, '50.01'), 422, 'insufficient_funds');
      const empty = await bank.customer();
      expectProblem(await send(empty, bob, '0.01'), 422, 'insufficient_funds');
      expect(await balanceOf(alice)).toBe('50.00');
      expect(await balanceOf(bob)).toBe('1.00');
      expect(await countTransactions()).toBe(before);
    });

    it('answers 422 daily_limit_exceeded once the day’s transfers would pass the limit', async () => {
      const alice = await bank.customer('500.00', { daily_limit: '100.00' });
      const bob = await bank.customer();
      expect((await send(alice, bob, '60.00')).statusCode).toBe(201);
      expectProblem(await send(alice, bob, '60.00'), 422, 'daily_limit_exceeded');
      expect(await balanceOf(alice)).toBe('440.00');
      // Exactly up to the limit is allowed; one cent beyond it is not.
      expect((await send(alice, bob, '40.00')).statusCode).toBe(201);
      expectProblem(await send(alice, bob, '0.01'), 422, 'daily_limit_exceeded');
      expect(await balanceOf(alice)).toBe('400.00');
      expect(await balanceOf(bob)).toBe('100.00');
    });

    it('counts only the transfers of the current UTC day, however many there were before', async () => {
      const alice = await bank.customer('500.00', { daily_limit: '100.00' });
      const bob = await bank.customer();
      expect((await send(alice, bob, '70.00')).statusCode).toBe(201);
      expect((await send(alice, bob, '30.00')).statusCode).toBe(201);
      expectProblem(await send(alice, bob, '0.01'), 422, 'daily_limit_exceeded');
      // The next UTC day, by the app's clock: a new limit.
      bank.clock.set(new Date(Date.now() + 24 * 60 * 60_000));
      try {
        expect((await send(alice, bob, '100.00')).statusCode).toBe(201);
        expectProblem(await send(alice, bob, '0.01'), 422, 'daily_limit_exceeded');
      } finally {
        bank.clock.reset();
      }
      // The per-day sums the limit reads (migration 0008) agree with the transfers themselves.
      const { rows } = await sql<{ day: string; kept: string; summed: string }>`
        SELECT d.day::text AS day, d.amount::text AS kept,
               (SELECT sum(t.amount) FROM transactions t
                 WHERE t.from_account_id = d.account_id AND t.type = 'transfer' AND t.status IN ('completed', 'pending_review')
                   AND (t.created_at AT TIME ZONE 'UTC')::date = d.day)::text AS summed
          FROM daily_outflows d WHERE d.account_id = ${alice.account.id} ORDER BY d.day`.execute(bank.database.handle.db);
      expect(rows.map((row) => [row.kept, row.summed])).toEqual([
        ['10000', '10000'],
        ['10000', '10000'],
      ]);
    });

    it('does not count teller withdrawals or incoming transfers against the daily limit', async () => {
      const alice = await bank.customer('500.00', { daily_limit: '100.00' });
      const bob = await bank.customer('500.00');
      expect((await bank.admin.post(`/accounts/${alice.account.id}/withdraw`, { amount: '150.00' })).statusCode).toBe(201);
      expect((await send(bob, alice, '200.00')).statusCode).toBe(201);
      expect((await send(alice, bob, '100.00')).statusCode).toBe(201);
    });

    it('answers 422 currency_mismatch between accounts of different currencies', async () => {
      const dollars = await bank.customer('100.00');
      const euros = await bank.customer('100.00', { currency: 'EUR' });
      expect(euros.account.currency).toBe('EUR');
      expectProblem(await send(dollars, euros, '1.00'), 422, 'currency_mismatch');
      expectProblem(await send(euros, dollars, '1.00'), 422, 'currency_mismatch');
      expect(await balanceOf(dollars)).toBe('100.00');
      expect(await balanceOf(euros)).toBe('100.00');

      const otherEuros = await bank.customer(undefined, { currency: 'EUR' });
      const response = await send(euros, otherEuros, '2.00');
      expect(response.statusCode).toBe(201);
      expect(response.data.currency).toBe('EUR');
    });

    it('answers 409 account_not_active when either side is frozen or closed', async () => {
      const db = bank.database.handle.db;
      const alice = await bank.customer('100.00');
      const bob = await bank.customer('100.00');
      // PATCH /accounts/{id} is not there yet; a status change is what it will make.
      const setStatus = (customer: Customer, status: 'active' | 'frozen' | 'closed') =>
        db.updateTable('accounts').set({ status }).where('id', '=', customer.account.id).execute();

      for (const status of ['frozen', 'closed'] as const) {
        await setStatus(bob, status);
        expectProblem(await send(alice, bob, '1.00'), 409, 'account_not_active');
        await setStatus(bob, 'active');
        await setStatus(alice, status);
        expectProblem(await send(alice, bob, '1.00'), 409, 'account_not_active');
        await setStatus(alice, 'active');
      }
      expect(await balanceOf(alice)).toBe('100.00');
      expect(await balanceOf(bob)).toBe('100.00');
      expect((await send(alice, bob, '1.00')).statusCode).toBe(201);
    });

    it('is for customers only: 403 for admin and auditor, 401 without a token', async () => {
      const alice = await bank.customer('10.00');
      const bob = await bank.customer();
      const body = { from_account: alice.account.account_number, to_account: bob.account.account_number, amount: '1.00' };
      expectProblem(await bank.admin.post('/transactions/transfer', body), 403, 'forbidden');
      expectProblem(await auditor.post('/transactions/transfer', body), 403, 'forbidden');
      const anonymous = await bank.anonymous.post('/transactions/transfer', body);
      expectProblem(anonymous, 401, 'unauthorized');
      expect(anonymous.headers['www-authenticate']).toBe('Bearer');
      expectProblem(await bank.anonymous.post('/transactions/transfer', body, { authorization: 'Bearer x.y.z' }), 401, 'unauthorized');
      expect(await balanceOf(alice)).toBe('10.00');
    });

    it('answers 400 problem+json for a malformed JSON body', async () => {
      const alice = await bank.customer('10.00');
      const response = await alice.post('/transactions/transfer', '{"from_account": "12', { 'content-type': 'application/json' });
      expectProblem(response, 400, 'bad_request');
    });
  });

  describe('the time of a transfer', () => {
    const postedAt = async (transactionId: string) =>
      (
        await bank.database.handle.db
          .selectFrom('journal_entries')
          .select('posted_at')
          .where('transaction_id', '=', transactionId)
          .execute()
      ).map((entry) => entry.posted_at.toISOString());

    it("is the app's clock: the transaction's created_at and its entries' posted_at", async () => {
      const alice = await bank.customer('100.00');
      const bob = await bank.customer();
      const later = new Date(Date.now() + 60 * 60_000);
      later.setUTCMilliseconds(123);
      bank.clock.set(later);
      try {
        const response = await send(alice, bob, '1.00');
        expect(response.statusCode, response.body).toBe(201);
        expect(response.data.created_at).toBe(later.toISOString());
        expect((await alice.get(`/transactions/${response.data.id}`)).data.created_at).toBe(later.toISOString());
        expect(await postedAt(response.data.id)).toEqual([later.toISOString(), later.toISOString()]);
      } finally {
        bank.clock.reset();
      }
    });

    it("never goes back for an account: a clock behind the account's last posting (another instance's) stamps that instant", async () => {
      const alice = await bank.customer('100.00');
      const bob = await bank.customer();
      const carol = await bank.customer();
      const ahead = new Date(Date.now() + 2 * 60 * 60_000);
      bank.clock.set(ahead);
      try {
        expect((await send(alice, bob, '1.00')).statusCode).toBe(201);
        // A clock a minute behind: bob's last posting is later, so the transfer takes that instant.
        bank.clock.set(new Date(ahead.getTime() - 60_000));
        const behind = await send(bob, carol, '1.00');
        expect(behind.statusCode, behind.body).toBe(201);
        expect(behind.data.created_at).toBe(ahead.toISOString());
        expect(await postedAt(behind.data.id)).toEqual([ahead.toISOString(), ahead.toISOString()]);
      } finally {
        bank.clock.reset();
      }
      // Bob's statement reads its entries in (posted_at, id) order: each one's balance_after follows from the one before.
      const day = (instant: Date) => instant.toISOString().slice(0, 10);
      const statement = (await bob.get(`/accounts/${bob.account.id}/statement?from=${day(new Date())}&to=${day(ahead)}`)).data;
      expect(statement.entries.map((entry: { balance_after: string }) => entry.balance_after)).toEqual(['1.00', '0.00']);
    });
  });

  describe('GET /transactions/{id}', () => {
    it('shows a transfer to its sender, its receiver and staff, and to no other customer', async () => {
      const alice = await bank.customer('10.00');
      const bob = await bank.customer();
      const carol = await bank.customer('10.00');
      const sent = await send(alice, bob, '2.50');
      const { transaction_id: _alias, ...transaction } = sent.data;

      for (const reader of [alice, bob, bank.admin, auditor]) {
        const response = await reader.get(`/transactions/${sent.data.id}`);
        expect(response.statusCode).toBe(200);
        expect(response.data).toEqual(transaction);
      }
      const hidden = await carol.get(`/transactions/${sent.data.id}`);
      const missing = await carol.get(`/transactions/${randomUUID()}`);
      expectProblem(hidden, 404, 'not_found');
      expectProblem(missing, 404, 'not_found');
      expect(hidden.data.detail).toBe(missing.data.detail);
    });

    it('answers 404 for an unknown id, 422 for a malformed one, 401 without a token', async () => {
      const alice = await bank.customer('10.00');
      const bob = await bank.customer();
      const sent = await send(alice, bob, '1.00');
      expectProblem(await bank.admin.get(`/transactions/${randomUUID()}`), 404, 'not_found');
      expectProblem(await bank.admin.get('/transactions/not-a-uuid'), 422, 'validation_error');
      const anonymous = await bank.anonymous.get(`/transactions/${sent.data.id}`);
      expectProblem(anonymous, 401, 'unauthorized');
      expect(anonymous.headers['www-authenticate']).toBe('Bearer');
    });
  });

  describe('request ids and problem details', () => {
    it("words a newcomer's usual mistakes in the field's own terms", async () => {
      const alice = await bank.customer('10.00');
      const missing = await alice.post('/transactions/transfer', { from_account: alice.account.account_number, to_account: NOBODY });
      expectProblem(missing, 422, 'validation_error');
      expect(missing.data.errors).toEqual([{ field: 'amount', message: 'is required' }]);
      const badDay = await alice.get(`/accounts/${alice.account.id}/statement?from=2026-13-01`);
      expectProblem(badDay, 422, 'validation_error');
      expect(badDay.data.errors).toEqual([{ field: 'from', message: 'must be a calendar day, YYYY-MM-DD (2026-12-01)' }]);
      const numberForId = await alice.get(`/accounts/${alice.account.account_number}`);
      expectProblem(numberForId, 422, 'validation_error');
      expect(numberForId.data.errors).toContainEqual({ field: 'id', message: 'must be an id (a UUID); an account number is not an id' });
    });

    it('echoes a client-supplied X-Request-Id, on success and on error', async () => {
      const alice = await bank.customer('10.00');
      const bob = await bank.customer();
      const ok = await send(alice, bob, '1.00');
      expect(ok.headers['x-request-id']).toEqual(expect.any(String));
      const echoed = await alice.post(
        '/transactions/transfer',
        { from_account: alice.account.account_number, to_account: bob.account.account_number, amount: '1.00' },
        { 'x-request-id': 'abc-123' },
      );
      expect(echoed.statusCode).toBe(201);
      expect(echoed.headers['x-request-id']).toBe('abc-123');
      const failed = await bank.anonymous.get(`/transactions/${randomUUID()}`, { 'x-request-id': 'abc-123' });
      expect(failed.statusCode).toBe(401);
      expect(failed.headers['x-request-id']).toBe('abc-123');
      expect((await bank.anonymous.get('/health', { 'x-request-id': 'abc-123' })).headers['x-request-id']).toBe('abc-123');
    });

    it('gives each request its own id when the client sends none', async () => {
      const first = await bank.anonymous.get('/health');
      const second = await bank.anonymous.get('/health');
      expect(first.headers['x-request-id']).toEqual(expect.any(String));
      expect(first.headers['x-request-id']).not.toBe(second.headers['x-request-id']);
    });

    it('answers an unknown route with a 404 problem', async () => {
      expectProblem(await bank.admin.get('/transactions/flagged/nothing/here'), 404, 'not_found');
    });

    it('put X-Request-Id on every response of this file', () => {
      expect(responses.length).toBeGreaterThan(100);
      for (const response of responses)
        expect(response.headers['x-request-id'], `${response.statusCode} ${response.body}`).toEqual(expect.any(String));
    });

    it('answered every error of this file as application/problem+json with type, title, status, detail and code', () => {
      const errors = responses.filter((response) => response.statusCode >= 400);
      expect(new Set(errors.map((response) => response.statusCode))).toEqual(new Set([400, 401, 403, 404, 409, 422]));
      for (const response of errors) {
        expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
        const body = JSON.parse(response.body);
        expect(body).toMatchObject({
          type: expect.any(String),
          title: expect.any(String),
          status: response.statusCode,
          detail: expect.any(String),
          code: expect.stringMatching(/^[a-z_]+$/),
        });
        if (body.code === 'validation_error')
          expect(body.errors).toEqual(expect.arrayContaining([{ field: expect.any(String), message: expect.any(String) }]));
      }
    });
  });

  it('conserves money: all balances sum to zero and each equals its journal', async () => {
    const db = bank.database.handle.db;
    const accounts = await db.selectFrom('accounts').select(['id', 'currency', 'balance']).execute();
    const entries = await db.selectFrom('journal_entries').select(['account_id', 'amount']).execute();
    const byCurrency = new Map<string, bigint>();
    for (const account of accounts) byCurrency.set(account.currency, (byCurrency.get(account.currency) ?? 0n) + account.balance);
    for (const [currency, sum] of byCurrency) expect([currency, sum]).toEqual([currency, 0n]);
    const journal = new Map<string, bigint>();
    for (const entry of entries) journal.set(entry.account_id, (journal.get(entry.account_id) ?? 0n) + entry.amount);
    for (const account of accounts) expect([account.id, account.balance]).toEqual([account.id, journal.get(account.id) ?? 0n]);
  });
});
