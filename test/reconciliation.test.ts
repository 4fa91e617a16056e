import { sql } from 'kysely';
import { beforeAll, describe, expect, it } from 'vitest';
import { testApp, type Customer, type TestApp } from './helpers/app.js';

const ENV = {
  RATE_LIMIT_TRANSFERS_PER_MINUTE: '100000',
  RISK_VELOCITY_COUNT: '0',
  RISK_NEW_ACCOUNT_AMOUNT: '0',
  RISK_NEW_PAYEE_AMOUNT: '0',
};

/** A bank that has seen deposits, withdrawals and transfers. */
async function busyBank(): Promise<{ bank: TestApp; customers: Customer[] }> {
  const bank = await testApp(ENV);
  const alice = await bank.customer('1000.00');
  const bob = await bank.customer('250.00');
  const carol = await bank.customer();
  const ok = (status: number) => expect(status).toBe(201);
  ok((await bank.admin.post(`/accounts/${carol.account.id}/deposit`, { amount: '99.99' })).statusCode);
  ok((await bank.admin.post(`/accounts/${alice.account.id}/withdraw`, { amount: '100.50' })).statusCode);
  ok(
    (
      await alice.post('/transactions/transfer', {
        from_account: alice.account.account_number,
        to_account: bob.account.account_number,
        amount: '200.01',
      })
    ).statusCode,
  );
  ok(
    (
      await bob.post('/transactions/transfer', {
        from_account: bob.account.account_number,
        to_account: carol.account.account_number,
        amount: '50',
      })
    ).statusCode,
  );
  ok(
    (
      await carol.post('/transactions/transfer', {
        from_account: carol.account.account_number,
        to_account: alice.account.account_number,
        amount: 0.99,
      })
    ).statusCode,
  );
  return { bank, customers: [alice, bob, carol] };
}

async function accountCount(bank: TestApp): Promise<{ all: number; internal: number }> {
  const rows = await bank.database.handle.db.selectFrom('accounts').select(['type']).execute();
  return { all: rows.length, internal: rows.filter((row) => row.type === 'internal').length };
}

describe('GET /reports/reconciliation', () => {
  let bank: TestApp;
  let customers: Customer[];
  beforeAll(async () => {
    ({ bank, customers } = await busyBank());
  });

  it('reports a busy but untouched ledger as reconciled, internal accounts included', async () => {
    const auditor = await bank.user('auditor');

    for (const staff of [bank.admin, auditor]) {
      const report = await staff.get('/reports/reconciliation');
      expect(report.statusCode).toBe(200);
      expect(report.data).toMatchObject({ ok: true, ledger_sum: '0.00', mismatches: [] });
      const counts = await accountCount(bank);
      // The three customer accounts and the bank's cash account.
      expect(counts.internal).toBeGreaterThanOrEqual(1);
      expect(report.data.accounts_checked).toBe(counts.all);
      expect(report.data.accounts_checked).toBe(customers.length + counts.internal);
    }

    const balances = await Promise.all(customers.map(async (c) => (await bank.admin.get(`/accounts/${c.account.id}`)).data.balance));
    expect(balances).toEqual(['700.48', '400.01', '149.00']);
  });

  it('is for staff only: 403 for a customer, 401 without a token', async () => {
    const asCustomer = await customers[0]!.get('/reports/reconciliation');
    expect(asCustomer.statusCode).toBe(403);
    expect(asCustomer.data.code).toBe('forbidden');
    const anonymous = await bank.anonymous.get('/reports/reconciliation');
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.data.code).toBe('unauthorized');
    expect(anonymous.headers['www-authenticate']).toMatch(/^Bearer/);
  });

  describe('on a ledger tampered with', () => {
    let tampered: TestApp;
    let victims: Customer[];
    beforeAll(async () => {
      ({ bank: tampered, customers: victims } = await busyBank());
    });

    it('detects a balance tampered with behind the ledger', async () => {
      const victim = victims[1]!;
      const before = await tampered.admin.get(`/accounts/${victim.account.id}`);
      expect(before.data.balance).toBe('400.01');

      await tampered.database.handle.db
        .updateTable('accounts')
        .set({ balance: sql<bigint>`balance + 1` })
        .where('id', '=', victim.account.id)
        .execute();

      const report = await tampered.admin.get('/reports/reconciliation');
      expect(report.statusCode).toBe(200);
      expect(report.data.ok).toBe(false);
      expect(report.data.ledger_sum).toBe('0.01');
      expect(report.data.mismatches).toEqual([{ account_id: victim.account.id, balance: '400.02', ledger_balance: '400.01' }]);
      expect(report.data.accounts_checked).toBe((await accountCount(tampered)).all);
    });
  });
});
