import { randomUUID } from 'node:crypto';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { SystemAccount } from '../src/db/schema.js';
import { addMonths } from '../src/loans/schedule.js';
import { formatAmount, parseAmount } from '../src/money.js';
import { testApp, type Client, type Customer, type Response, type TestApp } from './helpers/app.js';

const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

function expectProblem(response: Response, status: number, code: string): void {
  expect(response.statusCode, response.body).toBe(status);
  expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(response.data).toMatchObject({ status, code });
}

function nextDay(date: string): string {
  return new Date(Date.parse(`${date}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10);
}

describe('loans', () => {
  let bank: TestApp;
  let auditor: Client & { user: { id: string } };

  beforeAll(async () => {
    bank = await testApp();
    auditor = await bank.user('auditor');
  });
  afterEach(() => bank.clock.reset());

  const db = () => bank.database.handle.db;
  const apply = (customer: Customer, body: Record<string, unknown> = {}) =>
    customer.post('/loans', { account_id: customer.account.id, principal: '10000.00', term_months: 12, ...body });
  const approve = (id: string, body: Record<string, unknown> = {}) => bank.admin.post(`/loans/${id}/approve`, body);
  const repay = (customer: Customer, id: string, body: Record<string, unknown>, headers?: Record<string, string>) =>
    customer.post(`/loans/${id}/repay`, body, headers);
  const balanceOf = async (customer: Customer, accountId = customer.account.id) =>
    (await customer.get(`/accounts/${accountId}`)).data.balance as string;
  const bankBalance = async (code: SystemAccount) => {
    const row = await db()
      .selectFrom('accounts')
      .select('balance')
      .where('system_code', '=', code)
      .where('currency', '=', 'USD')
      .executeTakeFirst();
    return row?.balance ?? 0n;
  };
  const transactionsOf = (type: 'loan_disbursement' | 'loan_repayment', accountId: string) =>
    db()
      .selectFrom('transactions')
      .selectAll()
      .where('type', '=', type)
      .where((eb) => eb.or([eb('from_account_id', '=', accountId), eb('to_account_id', '=', accountId)]))
      .execute();
  const expectReconciled = async () => {
    const report = await auditor.get('/reports/reconciliation');
    expect(report.statusCode).toBe(200);
    expect(report.data).toMatchObject({ ok: true, ledger_sum: '0.00', mismatches: [] });
  };
  /** A customer holding `deposit`, with an approved loan of `principal` over `termMonths`. */
  const borrower = async (deposit: string | undefined, principal: string, termMonths: number) => {
    const customer = await bank.customer(deposit);
    const applied = await apply(customer, { principal, term_months: termMonths });
    expect(applied.statusCode, applied.body).toBe(201);
    const approved = await approve(applied.data.id);
    expect(approved.statusCode, approved.body).toBe(200);
    return { customer, loan: approved.data };
  };

  describe('a loan’s whole life', () => {
    it('applies, is approved and disbursed, is repaid in parts and ends paid off, the ledger balanced throughout', async () => {
      const alice = await bank.customer('1000.00');
      const fundBefore = await bankBalance('loan_fund');
      const incomeBefore = await bankBalance('interest_income');

      const applied = await apply(alice, { purpose: 'a car' });
      expect(applied.statusCode, applied.body).toBe(201);
      expect(applied.data).toEqual({
        id: expect.any(String),
        user_id: alice.user.id,
        account_id: alice.account.id,
        principal: '10000.00',
        annual_rate: '12.00',
        term_months: 12,
        monthly_installment: '888.49',
        total_payable: '10661.86',
        outstanding_principal: '10000.00',
        status: 'pending',
        purpose: 'a car',
        created_at: expect.stringMatching(ISO_UTC),
        decided_by: null,
        decided_at: null,
        decision_note: null,
        schedule: [],
      });
      const id = applied.data.id as string;
      expect(await balanceOf(alice)).toBe('1000.00');

      const approved = await approve(id, { note: 'income verified' });
      expect(approved.statusCode, approved.body).toBe(200);
      expect(approved.data).toMatchObject({
        status: 'active',
        decided_by: expect.any(String),
        decided_at: expect.stringMatching(ISO_UTC),
        decision_note: 'income verified',
      });
      const disbursedOn = (approved.data.decided_at as string).slice(0, 10);
      const schedule = approved.data.schedule;
      expect(schedule).toHaveLength(12);
      expect(schedule[0]).toEqual({
        number: 1,
        due_date: addMonths(disbursedOn, 1),
        installment: '888.49',
        principal: '788.49',
        interest: '100.00',
        balance_after: '9211.51',
        paid: '0.00',
        status: 'due',
      });
      expect(schedule[11]).toMatchObject({
        number: 12,
        due_date: addMonths(disbursedOn, 12),
        installment: '888.47',
        balance_after: '0.00',
      });
      expect((await bank.admin.get(`/loans/${id}`)).data).toEqual(approved.data);

      // The principal came from the bank's loan fund, once.
      expect(await balanceOf(alice)).toBe('11000.00');
      expect(await bankBalance('loan_fund')).toBe(fundBefore - 1_000_000n);
      const disbursements = await alice.get(`/transactions/?account_id=${alice.account.id}&type=loan_disbursement`);
      expect(disbursements.data.items).toEqual([
        expect.objectContaining({
          type: 'loan_disbursement',
          status: 'completed',
          amount: '10000.00',
          from_account: null,
          to_account: alice.account.account_number,
        }),
      ]);
      await expectReconciled();

      // 50.00 pays only interest of the first installment: the principal owed does not move.
      const first = await repay(alice, id, { amount: '50.00' });
      expect(first.statusCode, first.body).toBe(201);
      expect(first.data.transaction).toMatchObject({
        type: 'loan_repayment',
        status: 'completed',
        amount: '50.00',
        from_account: alice.account.account_number,
        to_account: null,
      });
      expect(first.data.loan).toMatchObject({ status: 'active', outstanding_principal: '10000.00' });
      expect(first.data.loan.schedule[0]).toMatchObject({ paid: '50.00', status: 'due' });
      expect(await bankBalance('interest_income')).toBe(incomeBefore + 5_000n);
      expect(await bankBalance('loan_fund')).toBe(fundBefore - 1_000_000n);

      // 888.49 finishes the first installment (50.00 interest, 788.49 principal) and pays 50.00 of the second's interest.
      const second = await repay(alice, id, { amount: 888.49 });
      expect(second.statusCode, second.body).toBe(201);
      expect(second.data.loan.outstanding_principal).toBe('9211.51');
      expect(second.data.loan.schedule.slice(0, 3).map((row: { paid: string; status: string }) => [row.paid, row.status])).toEqual([
        ['888.49', 'paid'],
        ['50.00', 'due'],
        ['0.00', 'due'],
      ]);
      const entries = await db()
        .selectFrom('journal_entries as j')
        .innerJoin('accounts as a', 'a.id', 'j.account_id')
        .select(['a.system_code', 'j.amount'])
        .where('j.transaction_id', '=', second.data.transaction.id)
        .orderBy('j.amount')
        .execute();
      expect(entries).toEqual([
        { system_code: null, amount: -88_849n },
        { system_code: 'interest_income', amount: 10_000n },
        { system_code: 'loan_fund', amount: 78_849n },
      ]);
      await expectReconciled();

      // The rest of the schedule, to the cent, pays the loan off.
      const rest = await repay(alice, id, { amount: '9723.37' });
      expect(rest.statusCode, rest.body).toBe(201);
      expect(rest.data.loan).toMatchObject({ status: 'paid_off', outstanding_principal: '0.00' });
      for (const row of rest.data.loan.schedule) {
        expect(row.status).toBe('paid');
        expect(row.paid).toBe(row.installment);
      }
      expect(await balanceOf(alice)).toBe('338.14');
      expect(await bankBalance('loan_fund')).toBe(fundBefore);
      expect(await bankBalance('interest_income')).toBe(incomeBefore + 66_186n);
      await expectReconciled();

      expectProblem(await repay(alice, id, { amount: '0.01' }), 422, 'overpayment');
      expect((await alice.get('/loans?status=paid_off')).data.items.map((loan: { id: string }) => loan.id)).toEqual([id]);

      const audit = await db()
        .selectFrom('audit_log')
        .select(['action', 'actor_id', 'details'])
        .where('target_type', '=', 'loan')
        .where('target_id', '=', id)
        .orderBy('entry_no')
        .execute();
      expect(audit.map((entry) => entry.action)).toEqual(['loan.applied', 'loan.approved', 'loan.repaid', 'loan.repaid', 'loan.repaid']);
      expect(audit[0]).toMatchObject({
        actor_id: alice.user.id,
        details: { principal: '10000.00', term_months: 12, annual_rate: '12.00', monthly_installment: '888.49' },
      });
      expect(audit[1]!.details).toMatchObject({ principal: '10000.00', note: 'income verified', transaction_id: expect.any(String) });
      expect(audit[3]!.details).toMatchObject({
        amount: '888.49',
        principal: '788.49',
        interest: '100.00',
        paid_off: false,
        transaction_id: second.data.transaction.id,
      });
      expect(audit[4]!.details).toMatchObject({ amount: '9723.37', outstanding_after: '0.00', paid_off: true });
    });

    it('repays from another of the borrower’s accounts', async () => {
      const { customer, loan } = await borrower(undefined, '300.00', 3);
      const savings = (await bank.admin.post(`/accounts/?user_id=${customer.user.id}`, { type: 'savings', initial_deposit: '100.00' }))
        .data;
      const paid = await repay(customer, loan.id, { amount: '100.00', from_account_id: savings.id });
      expect(paid.statusCode, paid.body).toBe(201);
      expect(paid.data.transaction.from_account).toBe(savings.account_number);
      expect(await balanceOf(customer, savings.id)).toBe('0.00');
      expect(await balanceOf(customer)).toBe('300.00');
    });
  });

  describe('at a rate of 0 %', () => {
    let zeroRate: TestApp;
    beforeAll(async () => {
      zeroRate = await testApp({ LOAN_ANNUAL_RATE: '0' });
    });

    it('charges no interest, and a repayment posts two entries: nothing for interest income', async () => {
      const carol = await zeroRate.customer();
      const applied = await carol.post('/loans', { account_id: carol.account.id, principal: '1200.00', term_months: 12 });
      expect(applied.data).toMatchObject({ annual_rate: '0.00', monthly_installment: '100.00', total_payable: '1200.00' });
      const approved = await zeroRate.admin.post(`/loans/${applied.data.id}/approve`, {});
      expect(approved.data.schedule.map((row: { installment: string; interest: string }) => `${row.installment}/${row.interest}`)).toEqual(
        Array(12).fill('100.00/0.00'),
      );
      const paid = await carol.post(`/loans/${applied.data.id}/repay`, { amount: '1200.00' });
      expect(paid.statusCode, paid.body).toBe(201);
      expect(paid.data.loan.status).toBe('paid_off');
      const entries = await zeroRate.database.handle.db
        .selectFrom('journal_entries')
        .select('amount')
        .where('transaction_id', '=', paid.data.transaction.id)
        .execute();
      expect(entries.map((entry) => entry.amount).sort((a, b) => (a < b ? -1 : 1))).toEqual([-120_000n, 120_000n]);
    });
  });

  describe('POST /loans', () => {
    it('refuses a term outside 1 to 360 months, a bad principal and unknown fields', async () => {
      const dan = await bank.customer();
      for (const term of [0, 361, 1.5, '12']) expectProblem(await apply(dan, { term_months: term }), 422, 'validation_error');
      for (const principal of ['0', '-5', '1.001', 'abc', '1000000000000.00']) {
        const response = await apply(dan, { principal });
        expectProblem(response, 422, 'validation_error');
        expect(response.data.errors.map((e: { field: string }) => e.field)).toContain('principal');
      }
      expectProblem(await apply(dan, { rate: '1.00' }), 422, 'validation_error');
      expectProblem(await dan.post('/loans', { principal: '10.00', term_months: 1 }), 422, 'validation_error');
      expect((await apply(dan, { principal: '1.00', term_months: 1 })).statusCode).toBe(201);
      expect((await apply(dan, { principal: 250, term_months: 360 })).statusCode).toBe(201);
    });

    it('refuses a principal whose installment would round to 0.00', async () => {
      const dan = await bank.customer();
      const response = await apply(dan, { principal: '0.01', term_months: 360 });
      expectProblem(response, 422, 'validation_error');
      expect(response.data.errors).toEqual([{ field: 'principal', message: expect.any(String) }]);
    });

    it('needs one of the caller’s own accounts, active', async () => {
      const erin = await bank.customer();
      const frank = await bank.customer();
      expectProblem(await apply(erin, { account_id: frank.account.id }), 404, 'account_not_found');
      expectProblem(await apply(erin, { account_id: randomUUID() }), 404, 'account_not_found');
      await bank.admin.patch(`/accounts/${erin.account.id}`, { status: 'frozen' });
      expectProblem(await apply(erin), 409, 'account_not_active');
      expect(await db().selectFrom('loans').select('id').where('user_id', '=', erin.user.id).execute()).toEqual([]);
    });
  });

  describe('decisions', () => {
    it('rejects a pending loan: nothing moves, and no second decision is possible', async () => {
      const gina = await bank.customer();
      const applied = await apply(gina);
      expectProblem(await bank.admin.post(`/loans/${applied.data.id}/reject`, {}), 422, 'validation_error');
      const rejected = await bank.admin.post(`/loans/${applied.data.id}/reject`, { reason: 'income too low' });
      expect(rejected.statusCode, rejected.body).toBe(200);
      expect(rejected.data).toMatchObject({
        status: 'rejected',
        decision_note: 'income too low',
        decided_at: expect.stringMatching(ISO_UTC),
        schedule: [],
      });
      expect(rejected.data.decided_by).toBe((await bank.admin.get('/auth/me')).data.id);

      expectProblem(await approve(applied.data.id), 409, 'not_pending');
      expectProblem(await bank.admin.post(`/loans/${applied.data.id}/reject`, { reason: 'again' }), 409, 'not_pending');
      expectProblem(await repay(gina, applied.data.id, { amount: '1.00' }), 422, 'overpayment');
      expect(await balanceOf(gina)).toBe('0.00');
      expect(await transactionsOf('loan_disbursement', gina.account.id)).toEqual([]);
      const audit = await db()
        .selectFrom('audit_log')
        .select(['action', 'details'])
        .where('target_id', '=', applied.data.id)
        .where('action', '=', 'loan.rejected')
        .execute();
      expect(audit).toEqual([{ action: 'loan.rejected', details: { principal: '10000.00', reason: 'income too low' } }]);
    });

    it('answers 409 not_pending to a second approval, and disburses once', async () => {
      const { customer, loan } = await borrower(undefined, '500.00', 6);
      expectProblem(await approve(loan.id), 409, 'not_pending');
      expectProblem(await bank.admin.post(`/loans/${loan.id}/reject`, { reason: 'too late' }), 409, 'not_pending');
      expect(await balanceOf(customer)).toBe('500.00');
      expect(await transactionsOf('loan_disbursement', customer.account.id)).toHaveLength(1);
    });

    it('disburses exactly once when ten approvals race', async () => {
      const hana = await bank.customer();
      const applied = await apply(hana, { principal: '2500.00', term_months: 24 });
      const fundBefore = await bankBalance('loan_fund');
      const answers = await Promise.all(Array.from({ length: 10 }, () => approve(applied.data.id)));
      const statuses = answers.map((answer) => answer.statusCode).sort();
      expect(statuses).toEqual([200, ...Array(9).fill(409)]);
      for (const answer of answers.filter((a) => a.statusCode === 409)) expect(answer.data.code).toBe('not_pending');
      expect(await balanceOf(hana)).toBe('2500.00');
      expect(await bankBalance('loan_fund')).toBe(fundBefore - 250_000n);
      expect(await transactionsOf('loan_disbursement', hana.account.id)).toHaveLength(1);
      expect(await db().selectFrom('loan_installments').select('number').where('loan_id', '=', applied.data.id).execute()).toHaveLength(24);
      await expectReconciled();
    });

    it('does not approve into an account that is no longer active; the loan stays pending', async () => {
      const ivan = await bank.customer();
      const applied = await apply(ivan);
      await bank.admin.patch(`/accounts/${ivan.account.id}`, { status: 'frozen' });
      expectProblem(await approve(applied.data.id), 409, 'account_not_active');
      expect((await ivan.get(`/loans/${applied.data.id}`)).data.status).toBe('pending');
      await bank.admin.patch(`/accounts/${ivan.account.id}`, { status: 'active' });
      expect((await approve(applied.data.id)).statusCode).toBe(200);
    });

    it('answers 404 for an unknown loan', async () => {
      expectProblem(await approve(randomUUID()), 404, 'not_found');
      expectProblem(await bank.admin.post(`/loans/${randomUUID()}/reject`, { reason: 'no' }), 404, 'not_found');
      expectProblem(await bank.admin.get(`/loans/${randomUUID()}`), 404, 'not_found');
      expectProblem(await bank.admin.get('/loans/not-a-uuid'), 422, 'validation_error');
    });
  });

  describe('repayment', () => {
    it('answers 422 overpayment above the unpaid parts of the schedule, and changes nothing', async () => {
      const { customer, loan } = await borrower('1000.00', '1000.00', 2);
      // 1000.00 over 2 months at 1 % a month: 507.51 (10.00 interest), then 502.49 + 5.02 = 507.51.
      expect(loan.total_payable).toBe('1015.02');
      expectProblem(await repay(customer, loan.id, { amount: '1015.03' }), 422, 'overpayment');
      expect(await balanceOf(customer)).toBe('2000.00');
      expect((await repay(customer, loan.id, { amount: '15.00' })).statusCode).toBe(201);
      expectProblem(await repay(customer, loan.id, { amount: '1000.03' }), 422, 'overpayment');
      const payoff = await repay(customer, loan.id, { amount: '1000.02' });
      expect(payoff.data.loan.status).toBe('paid_off');
      expect(await balanceOf(customer)).toBe('984.98');
    });

    it('never pays more than the schedule when repayments race', async () => {
      const { customer, loan } = await borrower('1000.00', '1000.00', 2);
      const answers = await Promise.all(Array.from({ length: 5 }, () => repay(customer, loan.id, { amount: '300.00' })));
      // 1015.02 owed: three payments of 300.00 fit, the other two would overpay.
      expect(answers.map((answer) => answer.statusCode).sort()).toEqual([201, 201, 201, 422, 422]);
      for (const answer of answers.filter((a) => a.statusCode === 422)) expect(answer.data.code).toBe('overpayment');
      const now = (await customer.get(`/loans/${loan.id}`)).data;
      expect(now.schedule.map((row: { paid: string }) => row.paid)).toEqual(['507.51', '392.49']);
      expect(await balanceOf(customer)).toBe('1100.00');
      await expectReconciled();
    });

    it('answers 422 insufficient_funds and changes nothing', async () => {
      const { customer, loan } = await borrower(undefined, '600.00', 6);
      const savings = (await bank.admin.post(`/accounts/?user_id=${customer.user.id}`, { type: 'savings', initial_deposit: '5.00' })).data;
      const incomeBefore = await bankBalance('interest_income');
      const fundBefore = await bankBalance('loan_fund');
      expectProblem(await repay(customer, loan.id, { amount: '10.00', from_account_id: savings.id }), 422, 'insufficient_funds');
      expect(await balanceOf(customer, savings.id)).toBe('5.00');
      expect(await balanceOf(customer)).toBe('600.00');
      expect(await bankBalance('interest_income')).toBe(incomeBefore);
      expect(await bankBalance('loan_fund')).toBe(fundBefore);
      expect((await customer.get(`/loans/${loan.id}`)).data).toEqual(loan);
      expect(await db().selectFrom('loan_payments').select('id').where('loan_id', '=', loan.id).execute()).toEqual([]);
      expect(
        await db().selectFrom('audit_log').select('id').where('target_id', '=', loan.id).where('action', '=', 'loan.repaid').execute(),
      ).toEqual([]);
    });

    it('takes money only from the borrower’s own active accounts', async () => {
      const { customer, loan } = await borrower(undefined, '600.00', 6);
      const stranger = await bank.customer('100.00');
      expectProblem(await repay(customer, loan.id, { amount: '10.00', from_account_id: stranger.account.id }), 404, 'account_not_found');
      expectProblem(await repay(customer, loan.id, { amount: '10.00', from_account_id: randomUUID() }), 404, 'account_not_found');
      await bank.admin.patch(`/accounts/${customer.account.id}`, { status: 'frozen' });
      expectProblem(await repay(customer, loan.id, { amount: '10.00' }), 409, 'account_not_active');
      expect(await balanceOf(stranger)).toBe('100.00');
      expect(await balanceOf(customer)).toBe('600.00');
    });

    it('refuses a bad amount', async () => {
      const { customer, loan } = await borrower(undefined, '600.00', 6);
      for (const amount of ['0', '-1', '1.001', 'x']) expectProblem(await repay(customer, loan.id, { amount }), 422, 'validation_error');
      expectProblem(await repay(customer, loan.id, {}), 422, 'validation_error');
      expectProblem(await repay(customer, loan.id, { amount: '1.00', extra: true }), 422, 'validation_error');
    });

    it('moves money once for a repeated Idempotency-Key and replays the first answer', async () => {
      const { customer, loan } = await borrower(undefined, '1200.00', 12);
      const key = { 'idempotency-key': `repay-${randomUUID()}` };
      const first = await repay(customer, loan.id, { amount: '106.62' }, key);
      expect(first.statusCode, first.body).toBe(201);
      const again = await repay(customer, loan.id, { amount: '106.62' }, key);
      expect(again.statusCode).toBe(201);
      expect(again.headers['idempotent-replayed']).toBe('true');
      expect(again.data).toEqual(first.data);
      expect(await balanceOf(customer)).toBe('1093.38');
      expect(await transactionsOf('loan_repayment', customer.account.id)).toHaveLength(1);
      expectProblem(await repay(customer, loan.id, { amount: '1.00' }, key), 422, 'idempotency_key_reused');
    });
  });

  describe('visibility and roles', () => {
    it('hides another customer’s loan (404), shows staff every loan', async () => {
      const { customer: owner, loan } = await borrower('10.00', '100.00', 2);
      const other = await bank.customer('500.00');
      expectProblem(await other.get(`/loans/${loan.id}`), 404, 'not_found');
      expectProblem(await repay(other, loan.id, { amount: '1.00' }), 404, 'not_found');
      expect((await other.get('/loans')).data.items).toEqual([]);
      expect(await balanceOf(other)).toBe('500.00');
      expect((await owner.get(`/loans/${loan.id}`)).statusCode).toBe(200);
      expect((await auditor.get(`/loans/${loan.id}`)).data.id).toBe(loan.id);
      expect((await bank.admin.get(`/loans/${loan.id}`)).data.id).toBe(loan.id);
    });

    it('lets only customers apply and repay, and only admins decide (403)', async () => {
      const { loan } = await borrower(undefined, '100.00', 2);
      const pending = await apply(await bank.customer());
      const body = { account_id: randomUUID(), principal: '100.00', term_months: 2 };
      expectProblem(await bank.admin.post('/loans', body), 403, 'forbidden');
      expectProblem(await auditor.post('/loans', body), 403, 'forbidden');
      expectProblem(await bank.admin.post(`/loans/${loan.id}/repay`, { amount: '1.00' }), 403, 'forbidden');
      expectProblem(await auditor.post(`/loans/${loan.id}/repay`, { amount: '1.00' }), 403, 'forbidden');
      const customer = await bank.customer();
      expectProblem(await customer.post(`/loans/${pending.data.id}/approve`, {}), 403, 'forbidden');
      expectProblem(await customer.post(`/loans/${pending.data.id}/reject`, { reason: 'x' }), 403, 'forbidden');
      expectProblem(await auditor.post(`/loans/${pending.data.id}/approve`, {}), 403, 'forbidden');
      expectProblem(await bank.anonymous.get('/loans'), 401, 'unauthorized');
      expect((await bank.admin.get(`/loans/${pending.data.id}`)).data.status).toBe('pending');
    });

    it('lists newest first, filtered by status, a page at a time', async () => {
      const jill = await bank.customer();
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) ids.push((await apply(jill, { principal: `${100 + i}.00` })).data.id);
      await approve(ids[0]!);
      const firstPage = await jill.get('/loans?limit=2');
      expect(firstPage.data.items.map((loan: { id: string }) => loan.id)).toEqual([ids[2], ids[1]]);
      const secondPage = await jill.get(`/loans?limit=2&cursor=${firstPage.data.next_cursor}`);
      expect(secondPage.data).toMatchObject({ items: [expect.objectContaining({ id: ids[0], status: 'active' })], next_cursor: null });
      expect(secondPage.data.items[0].schedule).toHaveLength(12);
      expect((await jill.get('/loans?status=pending')).data.items.map((loan: { id: string }) => loan.id)).toEqual([ids[2], ids[1]]);
      const staffView = await auditor.get('/loans?status=pending&limit=100');
      expect(staffView.data.items.map((loan: { id: string }) => loan.id)).toEqual(expect.arrayContaining([ids[1], ids[2]]));
      expect(staffView.data.items.every((loan: { status: string }) => loan.status === 'pending')).toBe(true);
      expectProblem(await jill.get('/loans?status=overdue'), 422, 'validation_error');
      expectProblem(await jill.get('/loans?cursor=bogus'), 422, 'validation_error');
    });
  });

  describe('overdue installments', () => {
    it('turns an unpaid installment overdue the day after its due date, by the app’s clock', async () => {
      const { customer, loan } = await borrower(undefined, '1200.00', 12);
      const [first, second] = loan.schedule as Array<{ due_date: string; installment: string }>;
      const statuses = async () =>
        ((await customer.get(`/loans/${loan.id}`)).data.schedule as Array<{ status: string }>).map((row) => row.status);

      bank.clock.set(`${first!.due_date}T23:59:59.999Z`);
      expect((await statuses()).slice(0, 2)).toEqual(['due', 'due']);

      bank.clock.set(`${nextDay(first!.due_date)}T00:00:00Z`);
      expect((await statuses()).slice(0, 3)).toEqual(['overdue', 'due', 'due']);
      expect(
        (await bank.admin.get('/loans?status=active&limit=100')).data.items.find((l: { id: string }) => l.id === loan.id).schedule[0]
          .status,
      ).toBe('overdue');

      // A partial payment leaves it overdue; paying the rest of it makes it paid.
      const part = await repay(customer, loan.id, { amount: '6.00' });
      expect(part.data.loan.schedule[0]).toMatchObject({ paid: '6.00', status: 'overdue' });
      const rest = await repay(customer, loan.id, { amount: formatAmount(parseAmount(first!.installment) - 600n) });
      expect(rest.statusCode, rest.body).toBe(201);
      expect(rest.data.loan.schedule.slice(0, 2).map((row: { status: string }) => row.status)).toEqual(['paid', 'due']);

      bank.clock.set(`${nextDay(second!.due_date)}T12:00:00Z`);
      expect((await statuses()).slice(0, 3)).toEqual(['paid', 'overdue', 'due']);
    });
  });
});
