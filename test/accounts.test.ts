import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { isValidAccountNumber } from '../src/accounts/account-number.js';
import { testApp, type Client, type Customer, type Response, type TestApp } from './helpers/app.js';

const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;
const BAD_AMOUNTS: unknown[] = ['0', '0.00', '-1', '1.001', 'abc', '', ' 1', '1e3', 1e21, '1000000000000.00', 0, -5, 1.001, null, true];

function expectProblem(response: Response, status: number, code: string): void {
  expect(response.statusCode, response.body).toBe(status);
  expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(response.data).toMatchObject({ status, code, type: expect.any(String), title: expect.any(String), detail: expect.any(String) });
}

function fieldsOf(response: Response): string[] {
  return (response.data.errors ?? []).map((error: { field: string }) => error.field);
}

describe('accounts', () => {
  let bank: TestApp;
  let auditor: Client & { user: { id: string } };
  let adminId: string;

  const db = () => bank.database.handle.db;
  const open = (userId: string, body?: unknown) => bank.admin.post(`/accounts/?user_id=${userId}`, body);
  const registered = async () => (await bank.user('customer')).user.id;

  beforeAll(async () => {
    bank = await testApp();
    auditor = await bank.user('auditor');
    adminId = (await bank.admin.get('/auth/me')).data.id;
  });

  describe('POST /accounts/', () => {
    it('opens a checking account in the default currency with the default daily limit', async () => {
      const userId = await registered();
      const response = await open(userId, {});
      expect(response.statusCode).toBe(201);
      expect(response.data).toEqual({
        id: expect.any(String),
        account_number: expect.stringMatching(/^\d{10}$/),
        user_id: userId,
        type: 'checking',
        currency: 'USD',
        balance: '0.00',
        available_balance: '0.00',
        daily_limit: '20000.00',
        status: 'active',
        created_at: expect.stringMatching(ISO_UTC),
      });
    });

    it('opens an account with no request body at all', async () => {
      const response = await open(await registered());
      expect(response.statusCode, response.body).toBe(201);
      expect(response.data).toMatchObject({ type: 'checking', currency: 'USD', balance: '0.00' });
    });

    it('takes type, currency and daily_limit', async () => {
      const userId = await registered();
      const savings = await open(userId, { type: 'savings' });
      expect(savings.statusCode).toBe(201);
      expect(savings.data.type).toBe('savings');

      const euro = await open(userId, { currency: 'EUR', daily_limit: '500.5' });
      expect(euro.statusCode).toBe(201);
      expect(euro.data).toMatchObject({ currency: 'EUR', daily_limit: '500.50', type: 'checking' });

      const numeric = await open(userId, { daily_limit: 250 });
      expect(numeric.data.daily_limit).toBe('250.00');
    });

    it('takes an initial deposit as a string or as a JSON number', async () => {
      const userId = await registered();
      const text = await open(userId, { initial_deposit: '100.5' });
      expect(text.statusCode).toBe(201);
      expect(text.data).toMatchObject({ balance: '100.50', available_balance: '100.50' });
      const number = await open(userId, { initial_deposit: 99.99 });
      expect(number.statusCode).toBe(201);
      expect(number.data).toMatchObject({ balance: '99.99', available_balance: '99.99' });
      const max = await open(userId, { initial_deposit: '999999999999.99' });
      expect(max.data.balance).toBe('999999999999.99');
    });

    it('posts the initial deposit as a real, balanced ledger transaction from the bank’s cash account', async () => {
      const userId = await registered();
      const opened = await open(userId, { initial_deposit: '250.00', currency: 'GBP' });
      expect(opened.statusCode).toBe(201);

      const transactions = await db().selectFrom('transactions').selectAll().where('to_account_id', '=', opened.data.id).execute();
      expect(transactions).toHaveLength(1);
      const [deposit] = transactions;
      expect(deposit).toMatchObject({ type: 'deposit', status: 'completed', amount: 25000n, currency: 'GBP' });

      const cash = await db()
        .selectFrom('accounts')
        .selectAll()
        .where('system_code', '=', 'cash')
        .where('currency', '=', 'GBP')
        .executeTakeFirstOrThrow();
      expect(deposit!.from_account_id).toBe(cash.id);
      expect(cash.type).toBe('internal');
      expect(cash.balance).toBe(-25000n);

      const entries = await db()
        .selectFrom('journal_entries')
        .selectAll()
        .where('transaction_id', '=', deposit!.id)
        .orderBy('amount')
        .execute();
      expect(entries.map((e) => [e.account_id, e.amount, e.balance_after])).toEqual([
        [cash.id, -25000n, -25000n],
        [opened.data.id, 25000n, 25000n],
      ]);

      // Read back, it is a deposit from the bank's own side (null), not from a customer account.
      const view = await bank.admin.get(`/transactions/${deposit!.id}`);
      expect(view.data).toMatchObject({
        type: 'deposit',
        amount: '250.00',
        currency: 'GBP',
        from_account: null,
        to_account: opened.data.account_number,
      });
    });

    it('records account.created in the audit log', async () => {
      const userId = await registered();
      const opened = await open(userId, {});
      const entry = await db()
        .selectFrom('audit_log')
        .selectAll()
        .where('action', '=', 'account.created')
        .where('target_id', '=', opened.data.id)
        .executeTakeFirstOrThrow();
      expect(entry).toMatchObject({ actor_id: adminId, actor_role: 'admin', target_type: 'account' });
    });

    it('gives 10-digit, Luhn-valid, distinct account numbers', async () => {
      const userId = await registered();
      const numbers: string[] = [];
      for (let i = 0; i < 8; i++) numbers.push((await open(userId, {})).data.account_number);
      for (const number of numbers) {
        expect(number).toMatch(/^\d{10}$/);
        expect(isValidAccountNumber(number)).toBe(true);
      }
      expect(new Set(numbers).size).toBe(numbers.length);
    });

    it('answers 404 user_not_found for an unknown user', async () => {
      expectProblem(await open(randomUUID(), {}), 404, 'user_not_found');
    });

    it('answers 422 user_not_customer for an admin or an auditor', async () => {
      expectProblem(await open(adminId, {}), 422, 'user_not_customer');
      expectProblem(await open(auditor.user.id, { initial_deposit: '10.00' }), 422, 'user_not_customer');
      const accounts = await db().selectFrom('accounts').select('id').where('user_id', 'in', [adminId, auditor.user.id]).execute();
      expect(accounts).toEqual([]);
    });

    it('answers 422 for a missing or malformed user_id', async () => {
      const bad = await open('not-a-uuid', {});
      expectProblem(bad, 422, 'validation_error');
      expect(fieldsOf(bad).join()).toMatch(/user_id/);
      expectProblem(await bank.admin.post('/accounts/', {}), 422, 'validation_error');
    });

    it('answers 422 naming an unknown body field, and for a bad type or currency', async () => {
      const userId = await registered();
      const unknown = await open(userId, { overdraft: '100.00' });
      expectProblem(unknown, 422, 'validation_error');
      expect(fieldsOf(unknown)).toContain('overdraft');
      // Internal accounts belong to the bank; a client can never open one.
      expectProblem(await open(userId, { type: 'internal' }), 422, 'validation_error');
      expectProblem(await open(userId, { currency: 'eur' }), 422, 'validation_error');
      expectProblem(await open(userId, { currency: 'EURO' }), 422, 'validation_error');
      expectProblem(await open(userId, { status: 'frozen' }), 422, 'validation_error');
      const list = await bank.admin.get(`/accounts/?user_id=${userId}`);
      expect(list.data.items).toEqual([]);
    });

    it.each(BAD_AMOUNTS)('answers 422 for the amount %j and opens nothing', async (amount) => {
      const userId = await registered();
      const deposit = await open(userId, { initial_deposit: amount });
      expectProblem(deposit, 422, 'validation_error');
      expect(fieldsOf(deposit).join()).toMatch(/initial_deposit/);
      const limit = await open(userId, { daily_limit: amount });
      expectProblem(limit, 422, 'validation_error');
      expect(fieldsOf(limit).join()).toMatch(/daily_limit/);
      const accounts = await db().selectFrom('accounts').select('id').where('user_id', '=', userId).execute();
      expect(accounts).toEqual([]);
    });

    it('is for admins only', async () => {
      const customer = await bank.customer();
      expectProblem(await customer.post(`/accounts/?user_id=${customer.user.id}`, {}), 403, 'forbidden');
      expectProblem(await auditor.post(`/accounts/?user_id=${customer.user.id}`, {}), 403, 'forbidden');
      const anonymous = await bank.anonymous.post(`/accounts/?user_id=${customer.user.id}`, {});
      expectProblem(anonymous, 401, 'unauthorized');
      expect(anonymous.headers['www-authenticate']).toBe('Bearer');
    });
  });

  describe('GET /accounts/', () => {
    let alice: Customer;
    let bob: Customer;
    let aliceSecond: string;

    beforeAll(async () => {
      alice = await bank.customer('10.00');
      bob = await bank.customer('20.00');
      aliceSecond = (await open(alice.user.id, { type: 'savings' })).data.id;
    });

    it('shows a customer only its own accounts, whatever user_id it asks for', async () => {
      const own = await alice.get('/accounts/');
      expect(own.statusCode).toBe(200);
      expect(own.data.next_cursor).toBeNull();
      expect(own.data.items.map((a: { id: string }) => a.id).sort()).toEqual([alice.account.id, aliceSecond].sort());
      for (const account of own.data.items) expect(account.user_id).toBe(alice.user.id);

      const snooping = await alice.get(`/accounts/?user_id=${bob.user.id}`);
      expect(snooping.statusCode).toBe(200);
      expect(snooping.data.items.every((a: { user_id: string }) => a.user_id === alice.user.id)).toBe(true);
    });

    it('shows staff every account, and filters by user_id', async () => {
      for (const staff of [bank.admin, auditor]) {
        const all = await staff.get('/accounts/?limit=100');
        expect(all.statusCode).toBe(200);
        const ids = all.data.items.map((a: { id: string }) => a.id);
        expect(ids).toEqual(expect.arrayContaining([alice.account.id, aliceSecond, bob.account.id]));
        expect(new Set(all.data.items.map((a: { user_id: string }) => a.user_id)).size).toBeGreaterThan(2);

        const bobs = await staff.get(`/accounts/?user_id=${bob.user.id}`);
        expect(bobs.data.items).toEqual([expect.objectContaining({ id: bob.account.id, user_id: bob.user.id, balance: '20.00' })]);
      }
    });

    it('never lists the bank’s internal accounts', async () => {
      const internal = await db().selectFrom('accounts').select('id').where('type', '=', 'internal').execute();
      expect(internal.length).toBeGreaterThan(0);
      let cursor: string | null = null;
      const seen: string[] = [];
      do {
        const page: Response = await bank.admin.get(`/accounts/?limit=100${cursor ? `&cursor=${cursor}` : ''}`);
        seen.push(...page.data.items.map((a: { id: string }) => a.id));
        cursor = page.data.next_cursor;
      } while (cursor);
      for (const { id } of internal) expect(seen).not.toContain(id);
    });

    it('walks every page with limit=2, without duplicates or gaps', async () => {
      const userId = await registered();
      const opened: string[] = [];
      for (let i = 0; i < 5; i++) opened.push((await open(userId, {})).data.id);

      const sizes: number[] = [];
      const seen: string[] = [];
      let url = `/accounts/?user_id=${userId}&limit=2`;
      for (;;) {
        const page = await bank.admin.get(url);
        expect(page.statusCode).toBe(200);
        sizes.push(page.data.items.length);
        seen.push(...page.data.items.map((a: { id: string }) => a.id));
        if (page.data.next_cursor === null) break;
        expect(page.data.next_cursor).toEqual(expect.any(String));
        url = `/accounts/?user_id=${userId}&limit=2&cursor=${encodeURIComponent(page.data.next_cursor)}`;
      }
      expect(sizes).toEqual([2, 2, 1]);
      expect(new Set(seen).size).toBe(5);
      expect([...seen].sort()).toEqual([...opened].sort());

      // Exactly one page when the limit covers everything: no empty trailing page.
      const whole = await bank.admin.get(`/accounts/?user_id=${userId}&limit=5`);
      expect(whole.data.items).toHaveLength(5);
      expect(whole.data.next_cursor).toBeNull();
    });

    it('answers 422 for a limit outside 1..100 or a cursor it did not issue', async () => {
      for (const limit of ['0', '101', '-1', 'abc', '2.5']) {
        const response = await bank.admin.get(`/accounts/?limit=${limit}`);
        expectProblem(response, 422, 'validation_error');
        expect(fieldsOf(response).join()).toMatch(/limit/);
      }
      expect((await bank.admin.get('/accounts/?limit=1')).statusCode).toBe(200);
      expect((await bank.admin.get('/accounts/?limit=100')).statusCode).toBe(200);

      const forged = Buffer.from(JSON.stringify([1, 2])).toString('base64url');
      for (const cursor of ['garbage', '!!!', forged, 'x'.repeat(300)]) {
        const response = await bank.admin.get(`/accounts/?cursor=${cursor}`);
        expectProblem(response, 422, 'validation_error');
        expect(fieldsOf(response).join()).toMatch(/cursor/);
      }
      expectProblem(await bank.admin.get('/accounts/?user_id=nope'), 422, 'validation_error');
      expectProblem(await bank.admin.get('/accounts/?colour=red'), 422, 'validation_error');
    });

    it('needs a token', async () => {
      const response = await bank.anonymous.get('/accounts/');
      expectProblem(response, 401, 'unauthorized');
      expect(response.headers['www-authenticate']).toBe('Bearer');
    });
  });

  describe('GET /accounts/{id}', () => {
    it('shows an account to its owner and to staff, and to nobody else', async () => {
      const owner = await bank.customer('42.00');
      const stranger = await bank.customer();
      const mine = await owner.get(`/accounts/${owner.account.id}`);
      expect(mine.statusCode).toBe(200);
      expect(mine.data).toEqual({ ...owner.account, balance: '42.00', available_balance: '42.00' });
      expect((await bank.admin.get(`/accounts/${owner.account.id}`)).data.id).toBe(owner.account.id);
      expect((await auditor.get(`/accounts/${owner.account.id}`)).data.id).toBe(owner.account.id);

      const hidden = await stranger.get(`/accounts/${owner.account.id}`);
      const missing = await stranger.get(`/accounts/${randomUUID()}`);
      expectProblem(hidden, 404, 'not_found');
      expectProblem(missing, 404, 'not_found');
      // The same answer for "not yours" and "not there": nothing tells which accounts exist.
      expect(hidden.data.detail).toBe(missing.data.detail);
    });

    it('answers 404 for an unknown id or an internal account, 422 for a malformed id, 401 without a token', async () => {
      expectProblem(await bank.admin.get(`/accounts/${randomUUID()}`), 404, 'not_found');
      const cash = await db().selectFrom('accounts').select('id').where('system_code', '=', 'cash').executeTakeFirstOrThrow();
      expectProblem(await bank.admin.get(`/accounts/${cash.id}`), 404, 'not_found');
      expectProblem(await bank.admin.get('/accounts/12345'), 422, 'validation_error');
      expectProblem(await bank.anonymous.get(`/accounts/${cash.id}`), 401, 'unauthorized');
    });
  });

  describe('POST /accounts/{id}/deposit and /withdraw', () => {
    it('deposits: 201 with a deposit Transaction from the bank’s side', async () => {
      const customer = await bank.customer();
      const response = await bank.admin.post(`/accounts/${customer.account.id}/deposit`, {
        amount: '75.5',
        description: 'cash at the counter',
      });
      expect(response.statusCode).toBe(201);
      // Every field docs/api.md names for a Transaction; later features may add more.
      expect(response.data).toMatchObject({
        id: expect.any(String),
        type: 'deposit',
        status: 'completed',
        amount: '75.50',
        currency: 'USD',
        from_account: null,
        to_account: customer.account.account_number,
        description: 'cash at the counter',
        created_by: adminId,
        created_at: expect.stringMatching(ISO_UTC),
        review_reasons: [],
        reviewed_by: null,
        reviewed_at: null,
        review_note: null,
      });
      expect((await customer.get(`/accounts/${customer.account.id}`)).data.balance).toBe('75.50');
      const seen = await customer.get(`/transactions/${response.data.id}`);
      expect(seen.data).toEqual(response.data);

      const number = await bank.admin.post(`/accounts/${customer.account.id}/deposit`, { amount: 0.5 });
      expect(number.statusCode).toBe(201);
      expect(number.data).toMatchObject({ amount: '0.50', description: null });
      expect((await customer.get(`/accounts/${customer.account.id}`)).data.balance).toBe('76.00');
    });

    it('withdraws: 201 with a withdrawal Transaction to the bank’s side, down to exactly zero', async () => {
      const customer = await bank.customer('100.00');
      const response = await bank.admin.post(`/accounts/${customer.account.id}/withdraw`, { amount: '30.25' });
      expect(response.statusCode).toBe(201);
      expect(response.data).toMatchObject({
        type: 'withdrawal',
        status: 'completed',
        amount: '30.25',
        currency: 'USD',
        from_account: customer.account.account_number,
        to_account: null,
        created_by: adminId,
      });
      expect((await customer.get(`/accounts/${customer.account.id}`)).data).toMatchObject({ balance: '69.75', available_balance: '69.75' });
      expect((await bank.admin.post(`/accounts/${customer.account.id}/withdraw`, { amount: 69.75 })).statusCode).toBe(201);
      expect((await customer.get(`/accounts/${customer.account.id}`)).data.balance).toBe('0.00');
    });

    it('records teller operations in the audit log', async () => {
      const customer = await bank.customer();
      const deposit = await bank.admin.post(`/accounts/${customer.account.id}/deposit`, { amount: '5.00' });
      const withdrawal = await bank.admin.post(`/accounts/${customer.account.id}/withdraw`, { amount: '5.00' });
      const actions = await db()
        .selectFrom('audit_log')
        .select(['action', 'actor_id'])
        .where('target_id', 'in', [deposit.data.id, withdrawal.data.id])
        .orderBy('entry_no')
        .execute();
      expect(actions).toEqual([
        { action: 'account.deposited', actor_id: adminId },
        { action: 'account.withdrawn', actor_id: adminId },
      ]);
    });

    it('answers 422 insufficient_funds for a withdrawal beyond the balance, and changes nothing', async () => {
      const customer = await bank.customer('50.00');
      const entriesBefore = await db().selectFrom('journal_entries').select('id').where('account_id', '=', customer.account.id).execute();
      const response = await bank.admin.post(`/accounts/${customer.account.id}/withdraw`, { amount: '50.01' });
      expectProblem(response, 422, 'insufficient_funds');
      expect((await customer.get(`/accounts/${customer.account.id}`)).data).toMatchObject({ balance: '50.00', available_balance: '50.00' });
      const entriesAfter = await db().selectFrom('journal_entries').select('id').where('account_id', '=', customer.account.id).execute();
      expect(entriesAfter).toHaveLength(entriesBefore.length);
      const withdrawals = await db().selectFrom('transactions').select('id').where('from_account_id', '=', customer.account.id).execute();
      expect(withdrawals).toEqual([]);
    });

    it('is for admins only', async () => {
      const customer = await bank.customer('10.00');
      for (const operation of ['deposit', 'withdraw']) {
        const url = `/accounts/${customer.account.id}/${operation}`;
        expectProblem(await customer.post(url, { amount: '1.00' }), 403, 'forbidden');
        expectProblem(await auditor.post(url, { amount: '1.00' }), 403, 'forbidden');
        const anonymous = await bank.anonymous.post(url, { amount: '1.00' });
        expectProblem(anonymous, 401, 'unauthorized');
        expect(anonymous.headers['www-authenticate']).toBe('Bearer');
      }
      expect((await customer.get(`/accounts/${customer.account.id}`)).data.balance).toBe('10.00');
    });

    it('answers 404 for an unknown account or an internal one, 422 for a malformed id', async () => {
      const cash = await db().selectFrom('accounts').select('id').where('system_code', '=', 'cash').executeTakeFirstOrThrow();
      for (const operation of ['deposit', 'withdraw']) {
        expectProblem(await bank.admin.post(`/accounts/${randomUUID()}/${operation}`, { amount: '1.00' }), 404, 'not_found');
        expectProblem(await bank.admin.post(`/accounts/${cash.id}/${operation}`, { amount: '1.00' }), 404, 'not_found');
        expectProblem(await bank.admin.post(`/accounts/nope/${operation}`, { amount: '1.00' }), 422, 'validation_error');
      }
    });

    it.each(BAD_AMOUNTS)('answers 422 for the amount %j', async (amount) => {
      const customer = await bank.customer('10.00');
      for (const operation of ['deposit', 'withdraw']) {
        const response = await bank.admin.post(`/accounts/${customer.account.id}/${operation}`, { amount });
        expectProblem(response, 422, 'validation_error');
        expect(fieldsOf(response).join()).toMatch(/amount/);
      }
      expect((await customer.get(`/accounts/${customer.account.id}`)).data.balance).toBe('10.00');
    });

    it('answers 422 for a missing amount, an unknown field or no body', async () => {
      const customer = await bank.customer();
      const url = `/accounts/${customer.account.id}/deposit`;
      const missing = await bank.admin.post(url, {});
      expectProblem(missing, 422, 'validation_error');
      expect(fieldsOf(missing)).toContain('amount');
      expectProblem(await bank.admin.post(url), 422, 'validation_error');
      const unknown = await bank.admin.post(url, { amount: '1.00', currency: 'EUR' });
      expectProblem(unknown, 422, 'validation_error');
      expect(fieldsOf(unknown)).toContain('currency');
      expectProblem(await bank.admin.post(url, { amount: '1.00', description: 'x'.repeat(501) }), 422, 'validation_error');
    });

    it('answers 409 account_not_active for a frozen or closed account', async () => {
      const customer = await bank.customer('10.00');
      // PATCH /accounts/{id} is not there yet; a status change is what it will make.
      for (const status of ['frozen', 'closed'] as const) {
        await db().updateTable('accounts').set({ status }).where('id', '=', customer.account.id).execute();
        expectProblem(await bank.admin.post(`/accounts/${customer.account.id}/deposit`, { amount: '1.00' }), 409, 'account_not_active');
        expectProblem(await bank.admin.post(`/accounts/${customer.account.id}/withdraw`, { amount: '1.00' }), 409, 'account_not_active');
      }
      const row = await db().selectFrom('accounts').select('balance').where('id', '=', customer.account.id).executeTakeFirstOrThrow();
      expect(row.balance).toBe(1000n);
    });
  });

  it('conserves money: every currency sums to zero and each balance equals its journal', async () => {
    const accounts = await db().selectFrom('accounts').select(['id', 'currency', 'balance']).execute();
    const entries = await db().selectFrom('journal_entries').select(['account_id', 'amount']).execute();
    const byCurrency = new Map<string, bigint>();
    for (const account of accounts) byCurrency.set(account.currency, (byCurrency.get(account.currency) ?? 0n) + account.balance);
    for (const [currency, sum] of byCurrency) expect([currency, sum]).toEqual([currency, 0n]);
    const journal = new Map<string, bigint>();
    for (const entry of entries) journal.set(entry.account_id, (journal.get(entry.account_id) ?? 0n) + entry.amount);
    for (const account of accounts) expect([account.id, account.balance]).toEqual([account.id, journal.get(account.id) ?? 0n]);
  });
});
