import { beforeAll, describe, expect, it } from 'vitest';
import { testApp, type Client, type Customer, type Response, type TestApp } from './helpers/app.js';

/** The risk rules stay out of the way: this file is about the account's own controls. */
const ENV = {
  RATE_LIMIT_TRANSFERS_PER_MINUTE: '100000',
  REVIEW_THRESHOLD: '999999999.00',
  RISK_NEW_PAYEE_AMOUNT: '0',
  RISK_NEW_ACCOUNT_AMOUNT: '0',
  RISK_VELOCITY_COUNT: '0',
};

function expectProblem(response: Response, status: number, code: string): void {
  expect(response.statusCode, response.body).toBe(status);
  expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(response.data.code).toBe(code);
}

function fieldsOf(response: Response): string[] {
  return (response.data.errors ?? []).map((error: { field: string }) => error.field);
}

describe('account controls: PATCH /accounts/{id}', () => {
  let bank: TestApp;
  let auditor: Client & { user: { id: string } };
  let adminId: string;

  const send = (from: Customer, to: Customer, amount: string) =>
    from.post('/transactions/transfer', { from_account: from.account.account_number, to_account: to.account.account_number, amount });
  const patch = (customer: Customer, body: unknown) => bank.admin.patch(`/accounts/${customer.account.id}`, body);
  const read = async (customer: Customer) => (await bank.admin.get(`/accounts/${customer.account.id}`)).data;
  const teller = (customer: Customer, operation: 'deposit' | 'withdraw', amount: string) =>
    bank.admin.post(`/accounts/${customer.account.id}/${operation}`, { amount });
  const audit = async (action: string, targetId: string) => {
    const response = await bank.admin.get(`/audit-logs?action=${action}&target_id=${targetId}`);
    expect(response.statusCode, response.body).toBe(200);
    return response.data.items as any[];
  };

  beforeAll(async () => {
    bank = await testApp(ENV);
    auditor = await bank.user('auditor');
    adminId = (await bank.admin.get('/auth/me')).data.id;
  });

  describe('freeze and unfreeze', () => {
    it('freezes: 200 with status frozen; the account neither sends nor receives, at the teller neither; money stays put', async () => {
      const alice = await bank.customer('100.00');
      const bob = await bank.customer('100.00');
      const frozen = await patch(alice, { status: 'frozen' });
      expect(frozen.statusCode, frozen.body).toBe(200);
      expect(frozen.data).toMatchObject({ id: alice.account.id, status: 'frozen', balance: '100.00', available_balance: '100.00' });
      // The owner still sees it, frozen.
      expect((await alice.get(`/accounts/${alice.account.id}`)).data.status).toBe('frozen');

      expectProblem(await send(alice, bob, '1.00'), 409, 'account_not_active');
      expectProblem(await send(bob, alice, '1.00'), 409, 'account_not_active');
      expectProblem(await teller(alice, 'deposit', '1.00'), 409, 'account_not_active');
      expectProblem(await teller(alice, 'withdraw', '1.00'), 409, 'account_not_active');
      expect((await read(alice)).balance).toBe('100.00');
      expect((await read(bob)).balance).toBe('100.00');
    });

    it('unfreezes: status active, and money moves again both ways', async () => {
      const alice = await bank.customer('100.00');
      const bob = await bank.customer('100.00');
      expect((await patch(alice, { status: 'frozen' })).statusCode).toBe(200);
      const unfrozen = await patch(alice, { status: 'active' });
      expect(unfrozen.statusCode, unfrozen.body).toBe(200);
      expect(unfrozen.data.status).toBe('active');
      expect((await send(alice, bob, '10.00')).statusCode).toBe(201);
      expect((await send(bob, alice, '5.00')).statusCode).toBe(201);
      expect((await teller(alice, 'deposit', '1.00')).statusCode).toBe(201);
      expect((await teller(alice, 'withdraw', '2.00')).statusCode).toBe(201);
      expect((await read(alice)).balance).toBe('94.00');
    });

    it('freezing twice is harmless', async () => {
      const alice = await bank.customer('1.00');
      expect((await patch(alice, { status: 'frozen' })).statusCode).toBe(200);
      const again = await patch(alice, { status: 'frozen' });
      expect(again.statusCode, again.body).toBe(200);
      expect(again.data.status).toBe('frozen');
    });

    it('records account.frozen and account.unfrozen in the audit log', async () => {
      const alice = await bank.customer('1.00');
      await patch(alice, { status: 'frozen' });
      await patch(alice, { status: 'active' });
      const frozen = await audit('account.frozen', alice.account.id);
      const unfrozen = await audit('account.unfrozen', alice.account.id);
      expect(frozen).toHaveLength(1);
      expect(unfrozen).toHaveLength(1);
      expect(frozen[0]).toMatchObject({ actor_id: adminId, actor_role: 'admin', target_type: 'account', target_id: alice.account.id });
      expect(frozen[0].details).toMatchObject({ from: 'active', to: 'frozen' });
      expect(unfrozen[0].details).toMatchObject({ from: 'frozen', to: 'active' });
    });
  });

  describe('daily_limit', () => {
    it('takes effect at once, down and up, and is recorded as account.limit_changed', async () => {
      const alice = await bank.customer('1000.00');
      const bob = await bank.customer();
      const lowered = await patch(alice, { daily_limit: '50.00' });
      expect(lowered.statusCode, lowered.body).toBe(200);
      expect(lowered.data.daily_limit).toBe('50.00');
      expectProblem(await send(alice, bob, '50.01'), 422, 'daily_limit_exceeded');
      expect((await send(alice, bob, '50.00')).statusCode).toBe(201);
      expectProblem(await send(alice, bob, '0.01'), 422, 'daily_limit_exceeded');

      const raised = await patch(alice, { daily_limit: 100 });
      expect(raised.statusCode, raised.body).toBe(200);
      expect(raised.data.daily_limit).toBe('100.00');
      expect((await send(alice, bob, '50.00')).statusCode).toBe(201);
      expectProblem(await send(alice, bob, '0.01'), 422, 'daily_limit_exceeded');
      expect((await read(alice)).daily_limit).toBe('100.00');

      const changes = await audit('account.limit_changed', alice.account.id);
      expect(changes).toHaveLength(2);
      const details = changes.map((entry) => entry.details).reverse(); // newest first
      expect(details).toEqual([
        expect.objectContaining({ from: '20000.00', to: '50.00' }),
        expect.objectContaining({ from: '50.00', to: '100.00' }),
      ]);
      expect(changes[0]).toMatchObject({ actor_id: adminId, target_type: 'account' });
    });

    it('changes status and limit in one request', async () => {
      const alice = await bank.customer('10.00');
      const both = await patch(alice, { status: 'frozen', daily_limit: '5.00' });
      expect(both.statusCode, both.body).toBe(200);
      expect(both.data).toMatchObject({ status: 'frozen', daily_limit: '5.00' });
      expect(await audit('account.frozen', alice.account.id)).toHaveLength(1);
      expect(await audit('account.limit_changed', alice.account.id)).toHaveLength(1);
    });

    it('answers 422 for a zero, negative, over-precise or non-numeric limit', async () => {
      const alice = await bank.customer('10.00');
      for (const daily_limit of ['0', '0.00', '-1.00', '1.001', 'ten', null, true, '1000000000000.00']) {
        const response = await patch(alice, { daily_limit });
        expectProblem(response, 422, 'validation_error');
      }
      expect((await read(alice)).daily_limit).toBe('20000.00');
    });
  });

  describe('close', () => {
    it('answers 409 balance_not_zero for an account with money, and changes nothing', async () => {
      const alice = await bank.customer('0.01');
      const response = await patch(alice, { status: 'closed' });
      expectProblem(response, 409, 'balance_not_zero');
      expect((await read(alice)).status).toBe('active');
      expect(await audit('account.closed', alice.account.id)).toEqual([]);
    });

    it('closes an account withdrawn to zero: 200 and account.closed in the audit log', async () => {
      const alice = await bank.customer('25.00');
      expect((await teller(alice, 'withdraw', '25.00')).statusCode).toBe(201);
      const closed = await patch(alice, { status: 'closed' });
      expect(closed.statusCode, closed.body).toBe(200);
      expect(closed.data).toMatchObject({ status: 'closed', balance: '0.00', available_balance: '0.00' });
      const entries = await audit('account.closed', alice.account.id);
      expect(entries).toHaveLength(1);
      expect(entries[0]).toMatchObject({ actor_id: adminId, target_type: 'account' });
      expect(entries[0].details).toMatchObject({ from: 'active', to: 'closed' });
    });

    it('closes a frozen account at zero balance', async () => {
      const alice = await bank.customer();
      expect((await patch(alice, { status: 'frozen' })).statusCode).toBe(200);
      const closed = await patch(alice, { status: 'closed' });
      expect(closed.statusCode, closed.body).toBe(200);
      expect((await audit('account.closed', alice.account.id))[0].details).toMatchObject({ from: 'frozen', to: 'closed' });
    });

    it('keeps a closed account closed: any PATCH answers 409 account_closed; it neither sends nor receives', async () => {
      const alice = await bank.customer();
      const bob = await bank.customer('10.00');
      expect((await patch(alice, { status: 'closed' })).statusCode).toBe(200);
      for (const body of [
        { status: 'active' },
        { status: 'frozen' },
        { status: 'closed' },
        { daily_limit: '10.00' },
        { status: 'active', daily_limit: '1.00' },
      ]) {
        expectProblem(await patch(alice, body), 409, 'account_closed');
      }
      const after = await read(alice);
      expect(after).toMatchObject({ status: 'closed', daily_limit: '20000.00' });
      expectProblem(await send(bob, alice, '1.00'), 409, 'account_not_active');
      expectProblem(await teller(alice, 'deposit', '1.00'), 409, 'account_not_active');
      expectProblem(await teller(alice, 'withdraw', '1.00'), 409, 'account_not_active');
      expect(await audit('account.closed', alice.account.id)).toHaveLength(1);
      expect(await audit('account.unfrozen', alice.account.id)).toEqual([]);
      expect(await audit('account.limit_changed', alice.account.id)).toEqual([]);
    });
  });

  describe('validation and access', () => {
    it('answers 422 for an unknown field, balance, user_id, id, a bad status or an empty body', async () => {
      const alice = await bank.customer('10.00');
      const other = await bank.customer();
      const cases: Array<[unknown, string | null]> = [
        [{ balance: '1000000.00' }, 'balance'],
        [{ user_id: other.user.id }, 'user_id'],
        [{ status: 'frozen', nickname: 'x' }, 'nickname'],
        [{ held: '0.00' }, 'held'],
        [{ currency: 'EUR' }, 'currency'],
        [{ status: 'deleted' }, null],
        [{ status: 'FROZEN' }, null],
        [{}, null],
      ];
      for (const [body, field] of cases) {
        const response = await patch(alice, body);
        expectProblem(response, 422, 'validation_error');
        if (field) expect(fieldsOf(response).join(' '), response.body).toContain(field);
      }
      expect(await read(alice)).toMatchObject({
        status: 'active',
        balance: '10.00',
        user_id: alice.user.id,
        currency: 'USD',
        daily_limit: '20000.00',
      });
    });

    it('answers 404 for an unknown account and 422 for a malformed id', async () => {
      expectProblem(await bank.admin.patch('/accounts/00000000-0000-4000-8000-000000000000', { status: 'frozen' }), 404, 'not_found');
      expectProblem(await bank.admin.patch('/accounts/12345', { status: 'frozen' }), 422, 'validation_error');
    });

    it('answers 404 for a bank-internal account', async () => {
      await bank.customer('1.00');
      const internal = await bank.database.handle.db
        .selectFrom('accounts')
        .select('id')
        .where('type', '=', 'internal')
        .executeTakeFirstOrThrow();
      expectProblem(await bank.admin.patch(`/accounts/${internal.id}`, { status: 'frozen' }), 404, 'not_found');
    });

    it('is for admins only: 403 for the owner, another customer and an auditor; 401 without a token', async () => {
      const alice = await bank.customer('10.00');
      const mallory = await bank.customer();
      for (const caller of [alice, mallory, auditor]) {
        expectProblem(await caller.patch(`/accounts/${alice.account.id}`, { status: 'frozen' }), 403, 'forbidden');
        expectProblem(await caller.patch(`/accounts/${alice.account.id}`, { daily_limit: '1000000.00' }), 403, 'forbidden');
      }
      expectProblem(await bank.anonymous.patch(`/accounts/${alice.account.id}`, { status: 'frozen' }), 401, 'unauthorized');
      expect(await read(alice)).toMatchObject({ status: 'active', daily_limit: '20000.00' });
    });
  });

  it('conserves money after all of the above', async () => {
    const report = await bank.admin.get('/reports/reconciliation');
    expect(report.statusCode).toBe(200);
    expect(report.data).toMatchObject({ ok: true, ledger_sum: '0.00', mismatches: [], hold_mismatches: [] });
  });
});
